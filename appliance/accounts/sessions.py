"""Browser sessions: one ``user_session`` row per signed-in browser, the truth about who is signed in.

The cookie (signed by the web layer) carries only a random key; the row
stores its SHA-256 digest, the user, when it was made and last seen, when it
expires, and the browser's address and user agent. Each request loads the
session and its user with one indexed query (a join). Signing out deletes the
row, so a copy of the cookie dies with it; "sign out everywhere", a password
change, a role change and disabling delete every row of the user
(:func:`end_user_sessions`, called by :mod:`appliance.accounts.user_changes`).

Time-outs live in the row: ``expires_at`` is the earlier of the idle end
(last seen + idle time-out) and the absolute end (made + absolute time-out).
``last_seen_at`` (and with it the idle end) is written at most once a minute,
so a busy browser does not turn every read into a write.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from appliance.accounts.tokens import digest_of
from appliance.clock import as_stored
from appliance.storage.db import database
from appliance.storage.models import User, UserSession

SEEN_EVERY = dt.timedelta(minutes=1)
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Timeouts:
    """How long a session may sit idle, and how long it may live at all."""

    idle: dt.timedelta
    absolute: dt.timedelta

    @classmethod
    def from_settings(cls, settings: object) -> Timeouts:
        return cls(
            idle=dt.timedelta(minutes=settings.session_idle_minutes),  # type: ignore[attr-defined]
            absolute=dt.timedelta(hours=settings.session_absolute_hours),  # type: ignore[attr-defined]
        )


def _expiry(created_at: dt.datetime, seen_at: dt.datetime, timeouts: Timeouts) -> dt.datetime:
    return min(seen_at + timeouts.idle, created_at + timeouts.absolute)


def start_session(
    user: User,
    timeouts: Timeouts,
    *,
    address: str | None = None,
    user_agent: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """Record a new session of ``user``; returns its key (for the cookie only, never stored)."""
    now = as_stored(now)
    key = secrets.token_urlsafe(32)
    with database.atomic():
        UserSession.create(
            digest=digest_of(key),
            user=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=_expiry(now, now, timeouts),
            address=(address or None) and address[:100],
            user_agent=(user_agent or "")[:300],
        )
    return key


def authenticate_session(key: object, timeouts: Timeouts, now: dt.datetime | None = None) -> UserSession | None:
    """The live session whose key this is, with its user loaded (``session.user``); ``None`` for an
    unknown, ended or expired session or a disabled user. One indexed query, plus at most one write a minute."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        return None
    now = as_stored(now)
    row: UserSession | None = (
        UserSession.select(UserSession, User).join(User).where(UserSession.digest == digest_of(key)).first()
    )
    if row is None or row.expires_at <= now or not row.user.active:
        return None
    if row.last_seen_at <= now - SEEN_EVERY:
        expires_at = _expiry(row.created_at, now, timeouts)
        UserSession.update(last_seen_at=now, expires_at=expires_at).where(
            (UserSession.id == row.id) & (UserSession.last_seen_at <= now - SEEN_EVERY)
        ).execute()
        row.last_seen_at, row.expires_at = now, expires_at
    return row


def end_session(key: object) -> bool:
    """Delete the session whose key this is (signing out); whether there was one."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        return False
    with database.atomic():
        return bool(UserSession.delete().where(UserSession.digest == digest_of(key)).execute())


def end_user_sessions(user_id: int) -> int:
    """Delete every session of the user (call inside the transaction of the change that ends them); how many."""
    return int(UserSession.delete().where(UserSession.user == user_id).execute())


def delete_expired_sessions(now: dt.datetime | None = None) -> int:
    """Delete the sessions that have expired (the scheduler's clean-up job); returns how many."""
    with database.atomic():
        return int(UserSession.delete().where(UserSession.expires_at <= as_stored(now)).execute())


ONLINE_WINDOW_MINUTES = 5


def count_users_online(now: dt.datetime | None = None, window_minutes: int = ONLINE_WINDOW_MINUTES) -> int:
    """How many distinct active users have a live browser session seen in the last ``window_minutes``.

    API tokens do not count: a token is a script or an integration, not a person at a screen (and one
    used by a nightly export would show its owner "online" at 3 a.m.). ``last_seen_at`` is written at
    most once a minute (:data:`SEEN_EVERY`), so a window under two minutes would miss active users.
    """
    now = as_stored(now)
    since = now - dt.timedelta(minutes=window_minutes)
    return (
        UserSession.select(UserSession.user)
        .join(User)
        .where((UserSession.last_seen_at >= since) & (UserSession.expires_at > now) & User.active)
        .distinct()
        .count()
    )
