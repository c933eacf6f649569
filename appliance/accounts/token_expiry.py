"""API tokens about to expire: which ones, and the one alert the admins get about them.

A token page flags a token :data:`EXPIRY_WARNING` (14 days) before it
expires; the daily clean-up job sends the admins one alert listing every
token that expires within that time. The alert's key is made of the tokens'
ids and expiry dates, so the same set is reported once, not every day; a new
token joining the list makes a new alert.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import peewee

from appliance.clock import as_stored
from appliance.storage.models import ApiToken, User

EXPIRY_WARNING = dt.timedelta(days=14)


def tokens_expiring_soon(now: dt.datetime | None = None, within: dt.timedelta = EXPIRY_WARNING) -> list[ApiToken]:
    """Live tokens of active users that expire within ``within``, soonest first, each with its user."""
    now = as_stored(now)
    query: peewee.ModelSelect[ApiToken] = (
        ApiToken.select(ApiToken, User)
        .join(User)
        .where((ApiToken.expires_at > now) & (ApiToken.expires_at <= now + within) & User.active)
        .order_by(ApiToken.expires_at, ApiToken.id)
    )
    return list(query)


def expiry_alert(tokens: list[ApiToken]) -> tuple[str, str, str] | None:
    """``(key, subject, message)`` of the alert about ``tokens``, or ``None`` when there are none."""
    if not tokens:
        return None
    fingerprint = ",".join(f"{t.id}@{as_stored(t.expires_at):%Y%m%d}" for t in tokens)
    key = "tokens-expiring:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    subject = f"{len(tokens)} API token(s) expire within {EXPIRY_WARNING.days} days"
    lines = [
        f"These API tokens expire within {EXPIRY_WARNING.days} days. A program using one stops working then;",
        "its owner makes a new token on their account page (/account) and gives it to the program.",
        "",
    ]
    lines += [
        f"- {t.name} ({t.prefix}…) of {t.user.email}: expires {as_stored(t.expires_at):%Y-%m-%d %H:%M} UTC"
        for t in tokens
    ]
    return key, subject, "\n".join(lines)
