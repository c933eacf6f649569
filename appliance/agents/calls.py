"""Running an AI agent's tool call: scoping, limits, the records services as the token's user, audit.

:func:`call_tool` is the one way in, whatever the transport (``/mcp`` over
HTTP, ``appliance mcp`` relaying to it, tests in memory). It checks, in this
order: the token has MCP access, its scope allows the tool (a read token
calls no write tool), its tool allow-list, then (inside each tool) its
collection allow-list, and the user's role through the services themselves:
a collection outside the token's list is answered exactly like one that does
not exist. Every call, refused or not, is one audit event ``mcp.<tool>``
with ``{"via": "mcp", "token", "client"}``; records written carry the same
in their history (the actor is an :class:`AgentActor`).

A refusal or a validation error is a *tool* result (``is_error``) carrying
the API's error shape, fields named, never a protocol error. Answers are
capped at :data:`MAX_ANSWER_BYTES` of JSON: a listing is cut short (and says
so), anything else too big is refused.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from appliance.accounts.tokens import mcp_options
from appliance.agents import approvals
from appliance.agents.limits import Limits, count_call, issue_confirmation, use_confirmation
from appliance.agents.tools import DEFAULT_PAGE_SIZE, TOOLS, TOOLS_BY_NAME, ToolSpec
from appliance.audit import record_event
from appliance.clock import as_stored, iso
from appliance.collections.access import (
    access_scope,
    get_visible_collection,
    list_collections,
    require_access,
    serialize_collection,
    visible_record_count,
)
from appliance.collections.definitions import CollectionDef
from appliance.collections.types import FIELD_TYPES
from appliance.errors import ApplianceError, NotFound, PermissionDenied, TooLarge, ValidationFailed
from appliance.records.delete import delete_record
from appliance.records.history import list_history
from appliance.records.query import RESERVED, list_records
from appliance.records.read import check_record_scope, get_record
from appliance.records.write import create_record, update_record
from appliance.storage.db import database
from appliance.storage.models import ApiToken, User

MAX_ANSWER_BYTES = 256 * 1024  # the largest structuredContent (as JSON) one call answers
_ACTIONS = ("view", "create", "update", "delete")


@dataclass(frozen=True)
class AgentActor:
    """The token's user as the services see it, plus how it acts (``details``: via, token, client)."""

    id: int | None
    role: str
    email: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Caller:
    """Who calls: the live token (its user loaded), the client's name if it sent one, its address."""

    token: ApiToken
    client: str | None = None
    address: str | None = None

    @property
    def user(self) -> User:
        user: User = self.token.user
        return user

    @property
    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"via": "mcp", "token": self.token.id}
        if self.client:
            out["client"] = self.client
        return out

    @property
    def actor(self) -> AgentActor:
        return AgentActor(self.user.id, self.user.role, self.user.email, self.details)


@dataclass(frozen=True)
class Outcome:
    """A tool's answer: the ``structuredContent`` and whether it is an error result."""

    structured: dict[str, Any]
    is_error: bool = False

    @property
    def text(self) -> str:
        """The text copy of the answer (JSON: record contents stay data)."""
        return json.dumps(self.structured, ensure_ascii=False, default=str)


def load_caller(token_id: int, client: str | None = None, address: str | None = None) -> Caller | None:
    """The caller for an authenticated token id, re-read now; ``None`` if it is gone, expired,
    without MCP access, or its user is disabled."""
    token = ApiToken.select(ApiToken, User).join(User).where(ApiToken.id == token_id).first()
    if token is None or not token.mcp or token.expires_at <= as_stored(None) or not token.user.active:
        return None
    return Caller(token, (client or None) and str(client)[:200], address)


def allowed_tools(token: ApiToken) -> list[ToolSpec]:
    """The tools this token may call, in order: what ``tools/list`` shows it."""
    names = mcp_options(token)["tools"]
    return [
        spec for spec in TOOLS if (token.scope == "write" or not spec.write) and (names is None or spec.name in names)
    ]


def _audit(caller: Caller, name: str, arguments: Mapping[str, Any], outcome: Outcome) -> None:
    details: dict[str, Any] = {**caller.details, "client": caller.client, "outcome": "ok"}
    collection = arguments.get("collection")
    if isinstance(collection, str):
        details["collection"] = collection[:50]
    if isinstance(arguments.get("id"), int):
        details["id"] = arguments["id"]
    if outcome.is_error:
        details["outcome"] = "error"
        details["error"] = outcome.structured["error"]["code"]
    with database.atomic():
        record_event(
            f"mcp.{name if name in TOOLS_BY_NAME else 'unknown_tool'}",
            actor=caller.user,
            target=f"token:{caller.token.id}",
            address=caller.address,
            details=details,
        )


def error_outcome(exc: ApplianceError) -> Outcome:
    """An error result in the API's shape; a bad parameter (``parameter``) is named as a field."""
    body = exc.to_dict()["error"]
    parameter = body.pop("parameter", None)
    if isinstance(parameter, str) and "fields" not in body:
        body["fields"] = {parameter: exc.message}
    return Outcome({"error": body}, is_error=True)


def _check_arguments(spec: ToolSpec, arguments: Mapping[str, Any]) -> None:
    """Raise :class:`ValidationFailed` naming each argument that does not fit the tool's input schema."""
    fields: dict[str, str] = {}
    for error in Draft202012Validator(spec.input_schema).iter_errors(dict(arguments)):
        if error.validator == "required":
            missing = [n for n in error.validator_value if n not in arguments]
            for name in missing:
                fields.setdefault(name, "This argument is required.")
        elif error.validator == "additionalProperties" and not error.path:
            for name in sorted(set(arguments) - set(spec.input_schema.get("properties", {}))):
                fields.setdefault(name[:60], "This tool takes no such argument.")
        else:
            name = ".".join(str(p) for p in error.path) or "arguments"
            fields.setdefault(name, error.message[:200])
    if fields:
        raise ValidationFailed(fields)


def _collection(caller: Caller, name: str) -> CollectionDef:
    """The collection, if the token's list has it and the user may see it; else :class:`NotFound` (the same
    answer for a collection outside the token's list as for one that does not exist)."""
    allowed = mcp_options(caller.token)["collections"]
    if allowed is not None and name not in allowed:
        raise NotFound(f"No collection called {name!r}.")
    return get_visible_collection(name, caller.actor)


def _may(collection: CollectionDef, caller: Caller) -> dict[str, str | None]:
    may: dict[str, str | None] = {action: access_scope(collection, caller.actor, action) for action in _ACTIONS}
    if caller.token.scope != "write":
        may.update(create=None, update=None, delete=None)
    return may


def _listing_params(arguments: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in (arguments.get("filters") or {}).items():
        if key in RESERVED:
            raise ValidationFailed({f"filters.{key}": f"'{key}' is not a filter; give it as its own argument."})
        params[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if arguments.get("search"):
        params["search"] = arguments["search"]
    if arguments.get("ordering"):
        params["ordering"] = arguments["ordering"]
    return params


def _whoami(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    user, token = caller.user, caller.token
    options = mcp_options(token)
    return {
        "user": {"id": user.id, "email": user.email, "name": user.name, "role": user.role},
        "token": {
            "id": token.id,
            "name": token.name,
            "scope": token.scope,
            "expires_at": iso(token.expires_at),
            "tools": [spec.name for spec in allowed_tools(token)],
            "collections": options["collections"],
            "writes_need_approval": options["approval"],
        },
    }


def _list_collections(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    allowed = mcp_options(caller.token)["collections"]
    actor = caller.actor
    return {
        "collections": [
            {
                "name": c.name,
                "label": c.label,
                "record_count": visible_record_count(c, actor),
                "may": _may(c, caller),
            }
            for c in list_collections(actor)
            if allowed is None or c.name in allowed
        ]
    }


def _describe_collection(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    collection = _collection(caller, arguments["collection"])
    out = serialize_collection(collection, caller.actor)
    out.pop("permissions", None)  # other roles' grants are not the agent's business; "may" says its own
    for item in out.get("fields", []):
        kind = FIELD_TYPES.get(item.get("type", ""))
        if kind is not None:
            item["operators"] = ["eq", *(op for op in kind.operators if op != "eq")]
    out["may"] = _may(collection, caller)
    return out


def _search_records(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    collection = _collection(caller, arguments["collection"])
    params = _listing_params(arguments)
    params["page"] = arguments.get("page", 1)
    params["page_size"] = arguments.get("page_size", DEFAULT_PAGE_SIZE)
    return list_records(collection, caller.actor, params)


def _get_record(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    collection = _collection(caller, arguments["collection"])
    return {"record": get_record(collection.name, arguments["id"], caller.actor)}


def _count_records(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    collection = _collection(caller, arguments["collection"])
    params = {**_listing_params(arguments), "page_size": 1}
    return {"collection": collection.name, "count": list_records(collection, caller.actor, params)["total_items"]}


def _get_record_history(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    collection = _collection(caller, arguments["collection"])
    params = {"page": arguments.get("page", 1), "page_size": arguments.get("page_size", DEFAULT_PAGE_SIZE)}
    return list_history(collection, arguments["id"], caller.actor, params)


def _held(caller: Caller, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pending answer when this token's writes need approval (the write is held, not made), else ``None``."""
    if not caller.token.mcp_approval:
        return None
    return approvals.hold_write(caller.token.id, caller.user.id, tool, dict(arguments), caller.client)


def _create_record(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    collection = _collection(caller, arguments["collection"])
    require_access(collection, caller.actor, "create")  # refused now, not after an admin approved it
    held = _held(caller, "create_record", arguments)
    if held is not None:
        return held
    record = create_record(
        collection.name, arguments["values"], caller.actor, files_dir=files_dir, address=caller.address
    )
    return {"record": record}


def _update_record(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    collection = _collection(caller, arguments["collection"])
    before = get_record(collection.name, arguments["id"], caller.actor)  # NotFound for a record it cannot see
    check_record_scope(require_access(collection, caller.actor, "update"), before, caller.actor, "change")
    held = _held(caller, "update_record", arguments)
    if held is not None:
        return held
    record = update_record(
        collection.name, arguments["id"], arguments["values"], caller.actor, files_dir=files_dir, address=caller.address
    )
    return {"record": record}


def _delete_record(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    collection = _collection(caller, arguments["collection"])
    record_id = arguments["id"]
    record = get_record(collection.name, record_id, caller.actor)
    check_record_scope(require_access(collection, caller.actor, "delete"), record, caller.actor, "delete")
    bound = {"tool": "delete_record", "collection": collection.name, "id": record_id}
    handle = arguments.get("confirm")
    if handle is None:
        handle, expires_at = issue_confirmation(caller.token.id, bound)
        return {
            "status": "confirm_needed",
            "record": record,
            "confirm": handle,
            "expires_at": iso(expires_at) or "",
            "message": "Nothing was deleted. To delete this record, call delete_record again with the same "
            "collection and id and this confirm handle (valid 5 minutes, once).",
        }
    if not use_confirmation(caller.token.id, handle, bound):
        raise ValidationFailed(
            {
                "confirm": "This handle is unknown, used, expired or for another record; call without confirm for a new one."
            }
        )
    held = _held(caller, "delete_record", {"collection": collection.name, "id": record_id})
    if held is not None:
        return held
    delete_record(collection.name, record_id, caller.actor, files_dir=files_dir, address=caller.address)
    return {"status": "deleted", "collection": collection.name, "id": record_id}


def _get_pending(caller: Caller, arguments: Mapping[str, Any], files_dir: Path | None) -> dict[str, Any]:
    return approvals.get_pending(arguments["pending_id"], caller.token.id)


_HANDLERS: dict[str, Callable[[Caller, Mapping[str, Any], Path | None], dict[str, Any]]] = {
    "whoami": _whoami,
    "list_collections": _list_collections,
    "describe_collection": _describe_collection,
    "search_records": _search_records,
    "get_record": _get_record,
    "count_records": _count_records,
    "get_record_history": _get_record_history,
    "create_record": _create_record,
    "update_record": _update_record,
    "delete_record": _delete_record,
    "get_pending": _get_pending,
}


def _capped(structured: dict[str, Any]) -> dict[str, Any]:
    """``structured`` within :data:`MAX_ANSWER_BYTES`: a listing loses items from its end (and says
    ``truncated``); anything else too big raises :class:`TooLarge`."""

    def size(value: Any) -> int:
        return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))

    if size(structured) <= MAX_ANSWER_BYTES:
        return structured
    items = structured.get("items")
    if isinstance(items, list):
        kept = list(items)
        while kept and size({**structured, "items": kept}) > MAX_ANSWER_BYTES - 200:
            kept = kept[: len(kept) // 2] if len(kept) > 8 else kept[:-1]
        if kept or size({**structured, "items": []}) <= MAX_ANSWER_BYTES:
            return {
                **structured,
                "items": kept,
                "truncated": True,
                "message": f"Only {len(kept)} of this page's items fit in one answer; ask for a smaller page_size.",
            }
    raise TooLarge(f"The answer is larger than {MAX_ANSWER_BYTES // 1024} KiB; ask for less.")


def call_tool(
    caller: Caller,
    name: str,
    arguments: Mapping[str, Any] | None,
    *,
    limits: Limits,
    files_dir: Path | None = None,
    now: dt.datetime | None = None,
) -> Outcome:
    """Run the tool ``name`` for ``caller``; returns its outcome (an error outcome for anything refused).

    Call it with the database connection open; every call writes its audit
    event (and its count for the limits) whatever the outcome.
    """
    arguments = dict(arguments or {})
    try:
        spec = TOOLS_BY_NAME.get(name)
        if not caller.token.mcp:
            raise PermissionDenied("This API token has no MCP access.")
        if spec is None:
            raise NotFound(f"There is no tool called {str(name)[:60]!r}; tools/list says which there are.")
        if spec.write and caller.token.scope != "write":
            raise PermissionDenied(f"This token is read-only; it cannot call {name}.")
        if spec not in allowed_tools(caller.token):
            raise PermissionDenied(f"This token may not call {name}.")
        _check_arguments(spec, arguments)  # page_size over MAX_PAGE_SIZE included: the schema says so
        # A delete's preview changes nothing; its confirmed call is the write.
        is_write = spec.write and (name != "delete_record" or "confirm" in arguments)
        count_call(caller.token.id, write=is_write, limits=limits, now=now)
        outcome = Outcome(_capped(_HANDLERS[name](caller, arguments, files_dir)))
    except ApplianceError as exc:
        outcome = error_outcome(exc)
    _audit(caller, name, arguments, outcome)
    return outcome
