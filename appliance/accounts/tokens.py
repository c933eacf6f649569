"""API tokens: long random secrets for programs, shown once, stored as a SHA-256 digest.

A token is looked up by its digest with one indexed query (never the slow
password hash, which would cost every request tens of milliseconds). Its
scope is ``read`` (nothing may be changed with it) or ``write``. ``last_used_at``
is written at most once a minute, so a busy script does not turn every read
into a write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from typing import Any

import peewee

from appliance.accounts.users import get_user
from appliance.actors import ActorLike, is_admin
from appliance.audit import record_event
from appliance.clock import as_stored, iso
from appliance.errors import NotFound, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import ApiToken, Collection, User

SCOPES = ("read", "write")
TOKEN_PREFIX = "oat_"
MAX_EXPIRY_DAYS = 3650
LAST_USED_EVERY = dt.timedelta(minutes=1)
# The MCP tools (names fixed by API.md, "AI agents"); a token's tool allow-list names some of them.
MCP_READ_TOOLS = (
    "whoami",
    "list_collections",
    "describe_collection",
    "search_records",
    "get_record",
    "count_records",
    "get_record_history",
    "get_pending",
)
MCP_WRITE_TOOLS = ("create_record", "update_record", "delete_record")
MCP_TOOLS = MCP_READ_TOOLS + MCP_WRITE_TOOLS


def digest_of(secret: str) -> str:
    """The stored form of a token secret."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_token_inputs(name: Any, scope: Any, expires_days: Any) -> tuple[str, str, int]:
    """The cleaned ``(name, scope, expires_days)``; raises :class:`ValidationFailed` naming each bad one."""
    fields: dict[str, str] = {}
    if not isinstance(name, str) or not name.strip():
        fields["name"] = "Give the token a name, e.g. the script that uses it."
    elif len(name.strip()) > 100:
        fields["name"] = "Use at most 100 characters."
    if scope not in SCOPES:
        fields["scope"] = "Choose read or write."
    if isinstance(expires_days, bool) or not isinstance(expires_days, int) or not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        fields["expires_days"] = f"Use a whole number of days from 1 to {MAX_EXPIRY_DAYS}."
    if fields:
        raise ValidationFailed(fields)
    return name.strip(), scope, expires_days


def _name_list(raw: Any, field: str, known: set[str], what: str, fields: dict[str, str]) -> list[str] | None:
    """A list of names (or comma-separated text) cleaned and checked against ``known``; ``None`` stays ``None``."""
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        fields[field] = f"Give a list of {what} names."
        return None
    names = list(dict.fromkeys(i.strip() for i in items if i.strip()))
    unknown = [n for n in names if n not in known]
    if unknown:
        fields[field] = f"Unknown {what}: {', '.join(n[:50] for n in unknown[:5])}."
    elif not names:
        fields[field] = f"Name at least one {what}, or leave it out for all of them."
    return names


def _known_collections(user: User) -> set[str]:
    """The collections ``user`` may learn of (a role with some permission on it; admins: all)."""
    known = set()
    for row in Collection.select(Collection.name, Collection.permissions):
        try:
            grants = json.loads(row.permissions or "{}").get(user.role)
        except (ValueError, AttributeError):
            grants = None
        if is_admin(user) or (isinstance(grants, list) and grants):
            known.add(row.name)
    return known


def check_mcp_options(user: User, scope: str, mcp: Any, tools: Any, collections: Any, approval: Any) -> dict[str, Any]:
    """The token columns of MCP options (``mcp``, ``mcp_tools``, ``mcp_collections``, ``mcp_approval``).

    Raises :class:`ValidationFailed` naming ``mcp_tools`` (an unknown tool, or a write tool on a read
    token), ``mcp_collections`` (a collection the user does not know) or an option given without ``mcp``.
    """
    fields: dict[str, str] = {}
    for key, value in (("mcp", mcp), ("mcp_approval", approval)):
        if not isinstance(value, bool):
            fields[key] = "Use true or false."
    if fields:
        raise ValidationFailed(fields)
    if not mcp:
        for key, value in (("mcp_tools", tools), ("mcp_collections", collections), ("mcp_approval", approval)):
            if value not in (None, False):
                fields[key] = "Only a token with MCP access (mcp) takes this option."
        if fields:
            raise ValidationFailed(fields)
        return {"mcp": False, "mcp_tools": None, "mcp_collections": None, "mcp_approval": False}
    tool_names = _name_list(tools, "mcp_tools", set(MCP_TOOLS), "tool", fields)
    if tool_names and scope == "read" and "mcp_tools" not in fields:
        writes = [t for t in tool_names if t in MCP_WRITE_TOOLS]
        if writes:
            fields["mcp_tools"] = f"A read token cannot call {', '.join(writes)}; choose scope write."
    collection_names = _name_list(collections, "mcp_collections", _known_collections(user), "collection", fields)
    if fields:
        raise ValidationFailed(fields)
    return {
        "mcp": True,
        "mcp_tools": None if tool_names is None else json.dumps(tool_names),
        "mcp_collections": None if collection_names is None else json.dumps(collection_names),
        "mcp_approval": approval,
    }


def create_token(
    user_id: Any,
    name: Any,
    *,
    scope: Any = "write",
    expires_days: Any = 90,
    mcp: Any = False,
    mcp_tools: Any = None,
    mcp_collections: Any = None,
    mcp_approval: Any = False,
    actor: ActorLike | str | None = None,
    address: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Make a token for the user; returns ``(token, secret)``. The secret is never stored nor shown again.

    ``mcp`` makes it usable at ``/mcp``; ``mcp_tools`` and ``mcp_collections`` (lists of names,
    ``None`` for all) narrow what an agent may call and see; ``mcp_approval`` holds its writes for
    an admin. Raises :class:`NotFound` for an unknown user, :class:`ValidationFailed`
    on ``name``, ``scope``, ``expires_days`` or the MCP options (see :func:`check_mcp_options`).
    """
    name, scope, expires_days = check_token_inputs(name, scope, expires_days)
    now = as_stored(now)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with database.atomic():
        user = get_user(user_id)
        options = check_mcp_options(user, scope, mcp, mcp_tools, mcp_collections, mcp_approval)
        token = ApiToken.create(
            user=user,
            name=name,
            digest=digest_of(secret),
            prefix=secret[: len(TOKEN_PREFIX) + 4],
            scope=scope,
            created_at=now,
            expires_at=now + dt.timedelta(days=expires_days),
            **options,
        )
        details: dict[str, Any] = {
            "user": user.email,
            "name": name,
            "scope": scope,
            "expires_at": iso(token.expires_at),
        }
        if options["mcp"]:
            details["mcp"] = mcp_options(token)
        record_event(
            "token.created",
            actor=actor or user,
            target=f"token:{token.id}",
            address=address,
            details=details,
            now=now,
        )
    return token, secret


def authenticate_token(secret: Any, now: dt.datetime | None = None) -> ApiToken | None:
    """The live token whose secret this is, with its user loaded; ``None`` for an unknown,
    expired or revoked token or a disabled user. One indexed query, plus at most one write a minute."""
    if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    now = as_stored(now)
    token: ApiToken | None = (
        ApiToken.select(ApiToken, User).join(User).where(ApiToken.digest == digest_of(secret)).first()
    )
    if token is None or token.expires_at <= now or not token.user.active:
        return None
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_EVERY:
        stale = ApiToken.last_used_at.is_null() | (ApiToken.last_used_at <= now - LAST_USED_EVERY)
        ApiToken.update(last_used_at=now).where((ApiToken.id == token.id) & stale).execute()
        token.last_used_at = now
    return token


def list_tokens(user_id: Any = None) -> peewee.ModelSelect[ApiToken]:
    """Tokens (of one user, or everyone's), newest first, each with its user loaded."""
    query = ApiToken.select(ApiToken, User).join(User)
    if user_id is not None:
        query = query.where(ApiToken.user == get_user(user_id).id)
    return query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc())


def revoke_token(token_id: Any, *, actor: ActorLike | str | None = None, address: str | None = None) -> None:
    """Delete a token at once. A user who is not an admin may revoke only their own.

    ``actor`` ``None`` or a label (the CLI) may revoke any token. Raises
    :class:`NotFound` for an unknown token or one the actor may not see.
    """
    try:
        key = int(token_id)
    except (TypeError, ValueError):
        raise NotFound(f"No token with id {token_id!r}.") from None
    with database.atomic():
        token = ApiToken.select(ApiToken, User).join(User).where(ApiToken.id == key).first()
        if token is None or (isinstance(actor, User) and not actor.is_admin and token.user_id != actor.id):
            raise NotFound(f"No token with id {key}.")
        token.delete_instance()
        record_event(
            "token.revoked",
            actor=actor,
            target=f"token:{key}",
            address=address,
            details={"user": token.user.email, "name": token.name},
        )


def revoke_user_tokens(
    user: User, *, reason: str, actor: ActorLike | str | None = None, address: str | None = None
) -> int:
    """Delete every API token of ``user``; returns how many. Audited as ``token.revoked_all`` (when any
    were) with the ``reason``. Call inside the transaction of the change that ends them (a password
    reset or change), so the tokens go exactly when it commits."""
    count = int(ApiToken.delete().where(ApiToken.user == user.id).execute())
    if count:
        record_event(
            "token.revoked_all",
            actor=actor,
            target=user.email,
            address=address,
            details={"user": user.email, "tokens": count, "reason": reason},
        )
    return count


def prune_tokens(now: dt.datetime | None = None) -> int:
    """Delete expired tokens; returns how many."""
    return int(ApiToken.delete().where(ApiToken.expires_at <= as_stored(now)).execute())


def mcp_options(token: ApiToken) -> dict[str, Any]:
    """A token's MCP options: ``{"tools", "collections", "approval"}`` (lists, or ``None`` for all)."""

    def names(text: str | None) -> list[str] | None:
        return None if text is None else list(json.loads(text))

    return {
        "tools": names(token.mcp_tools),
        "collections": names(token.mcp_collections),
        "approval": bool(token.mcp_approval),
    }


def serialize_token(token: ApiToken) -> dict[str, Any]:
    """A token as lists show it: never the secret nor its digest. ``mcp`` is ``null`` for a token
    without MCP access, else its options (:func:`mcp_options`)."""
    return {
        "mcp": mcp_options(token) if token.mcp else None,
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "scope": token.scope,
        "user": token.user.email,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at),
    }
