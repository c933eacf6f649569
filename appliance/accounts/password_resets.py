"""Password resets through a one-time link (valid 1 hour): asked for by the user, or made by an admin.

"Forgot your password?" never tells whether an address has an account: the
answer is the same, the throttle counts the typed email whether or not it is
a user's, and the mail (when there is one to send) goes out after the answer
(:mod:`appliance.jobs.account_mail`). Requests are throttled per typed email
and per client address in ``link_request``, which every worker shares.

Setting the new password through the link ends every session of the user
(the browser that used the link is signed in afresh), lifts a sign-in
lock-out, and keeps the user's API tokens: they are separate credentials.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from appliance.accounts.account_links import RESET, apply_password, create_link, find_link, prepare_password
from appliance.accounts.throttle import account_key, unlock_account
from appliance.accounts.users import find_user_by_email, get_user, normalize_email
from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import as_stored
from appliance.errors import Conflict, Throttled
from appliance.storage.db import database
from appliance.storage.models import AccountLink, LinkRequest, User

EMAIL = "email"
ADDRESS = "address"
ANSWER = "If that address has an account, a link to choose a new password is on its way. It works for 1 hour."


@dataclass(frozen=True)
class ResetRules:
    """How many reset requests one typed email, and one client address, may make within ``window``."""

    per_email: int = 3
    per_address: int = 10
    window: dt.timedelta = dt.timedelta(hours=1)


@dataclass(frozen=True)
class ResetLink:
    """A reset link just made: for whom, until when, and its secret (to mail or show once)."""

    user: User
    expires_at: dt.datetime
    secret: str


def _count_request(email_key: str, address: str | None, rules: ResetRules, now: dt.datetime) -> None:
    """Count one request, or raise :class:`Throttled` (nothing counted) when either limit is reached."""
    since = now - rules.window
    LinkRequest.delete().where(LinkRequest.at <= since).execute()
    keys = ((EMAIL, email_key, rules.per_email), (ADDRESS, (address or "unknown")[:320], rules.per_address))
    for kind, key, limit in keys:
        recent = LinkRequest.select(LinkRequest.at).where(
            (LinkRequest.kind == kind) & (LinkRequest.key == key) & (LinkRequest.at > since)
        )
        if recent.count() >= limit:
            oldest = recent.order_by(LinkRequest.at).first()
            seconds = max(1, math.ceil(((oldest.at if oldest else now) + rules.window - now).total_seconds()))
            raise Throttled(
                f"Too many requests for a new password; try again in {math.ceil(seconds / 60)} minutes.",
                retry_after=seconds,
            )
    for kind, key, _limit in keys:
        LinkRequest.create(kind=kind, key=key, at=now)


def request_password_reset(
    email: Any, *, address: str | None = None, rules: ResetRules | None = None, now: dt.datetime | None = None
) -> ResetLink | None:
    """Make a reset link for the active user with ``email``; ``None`` when there is none (say :data:`ANSWER`
    either way).

    Raises :class:`ValidationFailed` on ``email`` for text that is no email
    address at all, :class:`Throttled` when the email or the address asked too
    often; both whether or not the address has an account. Audited as
    ``password_reset.requested`` (``details.account`` says whether a link was made).
    """
    rules = rules or ResetRules()
    now = as_stored(now)
    stored = normalize_email(email)
    refusal: Throttled | None = None
    with database.atomic():
        try:
            _count_request(account_key(stored), address, rules, now)
        except Throttled as exc:
            refusal = exc
        user = find_user_by_email(stored)
        made: ResetLink | None = None
        if refusal is None and user is not None and user.active:
            link, secret = create_link(user, RESET, now)
            made = ResetLink(user, link.expires_at, secret)
        record_event(
            "password_reset.requested",
            actor=user if made else None,
            target=stored,
            address=address,
            details={"account": made is not None, **({"refused": "throttled"} if refusal else {})},
            now=now,
        )
    if refusal is not None:
        raise refusal
    return made


def create_reset_link(
    user_id: Any, *, actor: ActorLike | str | None = None, address: str | None = None, now: dt.datetime | None = None
) -> ResetLink:
    """An admin's reset link for user ``user_id``, to mail or pass on instead of a password.

    Raises :class:`NotFound`, :class:`Conflict` for a disabled user. Audited as ``password_reset.link_created``.
    """
    now = as_stored(now)
    with database.atomic():
        user = get_user(user_id)
        if not user.active:
            raise Conflict("This user is disabled; enable them before sending a reset link.")
        link, secret = create_link(user, RESET, now)
        record_event("password_reset.link_created", actor=actor, target=user.email, address=address, now=now)
    return ResetLink(user, link.expires_at, secret)


def check_reset_link(secret: Any, now: dt.datetime | None = None) -> User:
    """The user of a live reset link; raises :class:`LinkNotUsable` saying why it does not work."""
    return get_user(find_link(secret, RESET, now).user_id)


def complete_password_reset(
    secret: Any, password: Any, *, address: str | None = None, now: dt.datetime | None = None
) -> User:
    """Set the password chosen through a live reset link and spend the link; returns the user.

    Ends every session of the user and lifts their sign-in lock-out; API
    tokens stay. Raises :class:`LinkNotUsable` for a dead link,
    :class:`ValidationFailed` on ``password`` (the link stays usable then).
    """
    now = as_stored(now)
    link, user, password_hash = prepare_password(secret, RESET, password, now)
    with database.atomic():
        ended = apply_password(link, user, password_hash, now)
        lifted = unlock_account(user.email)
        record_event(
            "password_reset.completed",
            actor=user,
            target=user.email,
            address=address,
            details={"sessions_ended": ended, "unlocked": lifted},
            now=now,
        )
    return get_user(user.id)


def live_reset_links(user_id: int, now: dt.datetime | None = None) -> int:
    """How many live reset links the user has (the admin page says so)."""
    now = as_stored(now)
    return (
        AccountLink.select()
        .where(
            (AccountLink.user == user_id)
            & (AccountLink.kind == RESET)
            & AccountLink.used_at.is_null()
            & AccountLink.voided_at.is_null()
            & (AccountLink.expires_at > now)
        )
        .count()
    )
