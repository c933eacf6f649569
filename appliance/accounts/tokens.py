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
import secrets
from typing import Any

import peewee

from appliance.accounts.users import get_user
from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import as_stored, iso
from appliance.errors import NotFound, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import ApiToken, User

SCOPES = ("read", "write")
TOKEN_PREFIX = "oat_"
MAX_EXPIRY_DAYS = 3650
LAST_USED_EVERY = dt.timedelta(minutes=1)


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


def create_token(
    user_id: Any,
    name: Any,
    *,
    scope: Any = "write",
    expires_days: Any = 90,
    actor: ActorLike | str | None = None,
    address: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Make a token for the user; returns ``(token, secret)``. The secret is never stored nor shown again.

    Raises :class:`NotFound` for an unknown user, :class:`ValidationFailed`
    on ``name``, ``scope`` or ``expires_days``.
    """
    name, scope, expires_days = check_token_inputs(name, scope, expires_days)
    now = as_stored(now)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with database.atomic():
        user = get_user(user_id)
        token = ApiToken.create(
            user=user,
            name=name,
            digest=digest_of(secret),
            prefix=secret[: len(TOKEN_PREFIX) + 4],
            scope=scope,
            created_at=now,
            expires_at=now + dt.timedelta(days=expires_days),
        )
        record_event(
            "token.created",
            actor=actor or user,
            target=f"token:{token.id}",
            address=address,
            details={"user": user.email, "name": name, "scope": scope, "expires_at": iso(token.expires_at)},
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


def serialize_token(token: ApiToken) -> dict[str, Any]:
    """A token as lists show it: never the secret nor its digest."""
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "scope": token.scope,
        "user": token.user.email,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at),
    }
