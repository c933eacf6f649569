"""Writes of AI agents held for an admin's approval ("writes need approval" tokens).

:func:`hold_write` stores an agent's ``create_record``/``update_record``/
``delete_record`` call as *pending* and changes no record. An admin then
decides with :func:`decide_pending`: a rejection only marks it; an approval
applies the write exactly once, as the token's user, through the same records
services the REST API uses (roles, own-records rules, field rules,
validation, history and audit apply unchanged). A write the user may no
longer do is marked *failed* with the service's error. The agent asks for
the outcome with :func:`get_pending`, which knows only its own token's ids.

Arguments are stored as the agent sent them, and shown only as data. The
argument names are the MCP tools' own: ``collection``, ``values`` (create and
update) and ``id`` (update and delete; ``record_id`` is accepted too);
anything else, such as a delete's ``confirm`` handle, is ignored when the
write is applied.

Exactly once: the decision is a conditional ``UPDATE ... WHERE status =
'pending'`` inside the write transaction that also applies the write, so of
two concurrent approvals one applies and the other gets :class:`Conflict`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.actors import ActorLike, is_admin
from appliance.audit import record_event
from appliance.clock import iso, utcnow
from appliance.errors import ApplianceError, BadRequest, Conflict, NotFound, PermissionDenied, TooLarge
from appliance.records.delete import delete_record
from appliance.records.write import create_record, update_record
from appliance.storage.db import database, write_transaction
from appliance.storage.models import ApiToken, PendingWrite, User

WRITE_TOOLS = ("create_record", "update_record", "delete_record")
STATUSES = ("pending", "applied", "rejected", "failed")
MAX_ARGUMENTS_BYTES = 256 * 1024
HELD_MESSAGE = "Held for an admin's approval; ask get_pending with this id for the outcome."


@dataclass(frozen=True)
class ApprovedAgent:
    """The token's user applying an approved write: records and audit show it came through MCP
    (``details``: via, token, client, the pending id and who approved it)."""

    id: int | None
    role: str
    email: str
    details: Mapping[str, Any] = field(default_factory=dict)


def _key(pending_id: Any) -> int:
    if isinstance(pending_id, bool) or not isinstance(pending_id, int | str):
        raise NotFound(f"No pending write with id {pending_id!r}.")
    try:
        return int(pending_id)
    except ValueError:
        raise NotFound(f"No pending write with id {pending_id!r}.") from None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def hold_write(token_id: int, user_id: int, tool: str, arguments: dict[str, Any], client: str | None) -> dict[str, Any]:
    """Store an agent's write as pending (no record changes) and audit ``mcp.write_held``.

    Returns ``{"pending_id", "status": "pending", "message"}``. Raises
    :class:`BadRequest` for a tool that is not a write or arguments that are
    not a JSON object, :class:`TooLarge` for arguments over 256 KiB,
    :class:`NotFound` for an unknown token or user.
    """
    if tool not in WRITE_TOOLS:
        raise BadRequest(f"Only {', '.join(WRITE_TOOLS)} can be held for approval, not {tool!r}.")
    if not isinstance(arguments, dict):
        raise BadRequest("The arguments of a write must be a JSON object.")
    try:
        text = json.dumps(arguments, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise BadRequest("The arguments of a write must be plain JSON values.") from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_ARGUMENTS_BYTES:
        raise TooLarge(f"The arguments of a write may be at most {MAX_ARGUMENTS_BYTES // 1024} KiB.")
    collection = arguments.get("collection")
    with write_transaction():
        token = ApiToken.get_or_none((ApiToken.id == token_id) & (ApiToken.user == user_id))
        user = User.get_or_none(User.id == user_id)
        if token is None or user is None:
            raise NotFound(f"No token {token_id} of user {user_id}.")
        row = PendingWrite.create(
            token_id=token.id,
            token_name=token.name,
            user_id=user.id,
            user_email=user.email,
            client=(client or None) and str(client)[:200],
            tool=tool,
            collection=collection[:50] if isinstance(collection, str) else "",
            arguments=text,
            status="pending",
            created_at=utcnow(),
        )
        record_event(
            "mcp.write_held",
            actor=user,
            target=f"pending:{row.id}",
            details={"via": "mcp", "token": token.id, "tool": tool, "collection": row.collection, "client": row.client},
        )
    return {"pending_id": row.id, "status": "pending", "message": HELD_MESSAGE}


def serialize_pending(row: PendingWrite, *, full: bool = False) -> dict[str, Any]:
    """A pending write as the agent sees it; ``full`` adds who asked, through which token and client, and when."""
    out: dict[str, Any] = {"id": row.id, "tool": row.tool, "arguments": _loads(row.arguments), "status": row.status}
    if row.result is not None:
        out["result"] = _loads(row.result)
    if row.error is not None:
        out["error"] = _loads(row.error)
    if row.decided_at is not None:
        out["decided_by"] = row.decided_by
        out["decided_at"] = iso(row.decided_at)
    if full:
        out.update(
            collection=row.collection,
            token_id=row.token_id,
            token_name=row.token_name,
            user_id=row.user_id,
            user=row.user_email,
            client=row.client,
            created_at=iso(row.created_at),
        )
    return out


def get_pending(pending_id: int, token_id: int) -> dict[str, Any]:
    """The held write and its outcome; :class:`NotFound` for an unknown id or one held for another token."""
    key = _key(pending_id)
    row = PendingWrite.get_or_none((PendingWrite.id == key) & (PendingWrite.token_id == token_id))
    if row is None:
        raise NotFound(f"No pending write with id {key}.")
    return serialize_pending(row)


def list_pending(status: str | None = None, *, limit: int = 200) -> list[dict[str, Any]]:
    """Held writes (of one status, or all), newest first, at most ``limit``, each with who asked and how.

    Raises :class:`BadRequest` for an unknown status."""
    query = PendingWrite.select()
    if status is not None:
        if status not in STATUSES:
            raise BadRequest(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
        query = query.where(PendingWrite.status == status)
    rows = query.order_by(PendingWrite.id.desc()).limit(max(1, min(int(limit), 1000)))
    return [serialize_pending(row, full=True) for row in rows]


def count_pending() -> int:
    """How many writes wait for a decision (for a badge in the nav or the console)."""
    return int(PendingWrite.select().where(PendingWrite.status == "pending").count())


def _record_id(arguments: dict[str, Any]) -> int:
    value = arguments.get("id", arguments.get("record_id"))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("The write names no valid record id.", fields={"id": "Give the record's id, a whole number."})
    return value


def _values(arguments: dict[str, Any]) -> dict[str, Any]:
    values = arguments.get("values")
    if not isinstance(values, dict):
        raise BadRequest("The write has no values.", fields={"values": "Give the field values as an object."})
    return values


def _apply(row: PendingWrite, approver: ActorLike, address: str | None) -> dict[str, Any]:
    """Apply the held write as the token's user; raises the records services' errors."""
    token = ApiToken.get_or_none(ApiToken.id == row.token_id)
    if token is None:
        raise PermissionDenied("The token that asked for this write has been revoked.")
    user = User.get_or_none(User.id == row.user_id)
    if user is None or not user.active:
        raise PermissionDenied("The user of the token that asked for this write is disabled or deleted.")
    if token.scope != "write":
        raise PermissionDenied("The token that asked for this write may only read.")
    allowed = _loads(token.mcp_collections)
    arguments = _loads(row.arguments)
    collection = arguments.get("collection")
    if not isinstance(collection, str) or not collection:
        raise BadRequest("The write names no collection.", fields={"collection": "Give the collection's name."})
    if isinstance(allowed, list) and collection not in allowed:
        raise NotFound(f"No collection {collection!r}.")
    details: dict[str, Any] = {"via": "mcp", "token": token.id, "pending": row.id}
    if row.client:
        details["client"] = row.client
    details["approved_by"] = str(getattr(approver, "email", "") or "admin")
    actor = ApprovedAgent(user.id, user.role, user.email, details)
    if row.tool == "create_record":
        return {"record": create_record(collection, _values(arguments), actor, address=address)}
    if row.tool == "update_record":
        record_id = _record_id(arguments)
        return {"record": update_record(collection, record_id, _values(arguments), actor, address=address)}
    record_id = _record_id(arguments)
    delete_record(collection, record_id, actor, address=address)
    return {"deleted": True, "collection": collection, "id": record_id}


def decide_pending(pending_id: int, approve: bool, actor: ActorLike, address: str | None = None) -> dict[str, Any]:
    """Approve (apply once, as the token's user) or reject a held write; returns it as :func:`serialize_pending`
    with ``full``.

    Only an admin decides (:class:`PermissionDenied` otherwise). :class:`NotFound`
    for an unknown id, :class:`Conflict` when it was decided already (also
    by a concurrent approval). A write the user may no longer do (or whose
    arguments do not hold) ends ``failed`` with the error's ``code``,
    ``message`` and ``fields``; nothing of it is written. Audited as
    ``mcp.write_approved`` or ``mcp.write_rejected``. Stored files a write leaves unreferenced are not
    removed here (that would happen before this transaction commits): the ``cleanup`` job removes them.
    """
    if not is_admin(actor) or (isinstance(actor, User) and not actor.active):
        raise PermissionDenied("Only an admin may approve or reject an agent's write.")
    key = _key(pending_id)
    now = utcnow()
    decided_by = str(getattr(actor, "email", "") or "admin")[:320]
    with write_transaction():
        claimed = (
            PendingWrite.update(
                status="applied" if approve else "rejected",
                decided_at=now,
                decided_by_id=getattr(actor, "id", None),
                decided_by=decided_by,
            )
            .where((PendingWrite.id == key) & (PendingWrite.status == "pending"))
            .execute()
        )
        row = PendingWrite.get_or_none(PendingWrite.id == key)
        if row is None:
            raise NotFound(f"No pending write with id {key}.")
        if claimed != 1:
            raise Conflict(f"This write was decided already: it is {row.status}.", current=row.status)
        if approve:
            try:
                with database.atomic():  # a savepoint: a refused write leaves nothing of itself behind
                    result = _apply(row, actor, address)
            except ApplianceError as exc:
                error: dict[str, Any] = {"code": exc.code, "message": exc.message}
                if exc.fields:
                    error["fields"] = exc.fields
                row.status, row.error = "failed", json.dumps(error, default=str)
            else:
                row.result = json.dumps(result, default=str)
            PendingWrite.update(status=row.status, result=row.result, error=row.error).where(
                PendingWrite.id == key
            ).execute()
        record_event(
            "mcp.write_approved" if approve else "mcp.write_rejected",
            actor=actor,
            target=f"pending:{key}",
            address=address,
            details={
                "via": "mcp",
                "token": row.token_id,
                "tool": row.tool,
                "collection": row.collection,
                "user": row.user_email,
                "outcome": row.status,
            },
        )
    return serialize_pending(row, full=True)
