"""Sign-in throttling, shared by every worker process through the database.

Failed sign-ins are counted per account (the email as typed, lower case,
whether or not such a user exists, so a lock-out tells nothing about which
emails are real) and per client address. When the failures within the window
reach the limit, the account is locked (or the address blocked) for the
lock-out time. Failures are rare writes, so they belong in the database
(DESIGN.md), where every worker sees them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import peewee

from appliance.clock import as_stored
from appliance.db import BaseModel
from appliance.errors import Throttled

ACCOUNT = "account"
ADDRESS = "address"


class SignInFailure(BaseModel):
    kind = peewee.CharField(max_length=10)
    key = peewee.CharField(max_length=320)
    at = peewee.DateTimeField()

    class Meta:
        table_name = "sign_in_failure"


class SignInLock(BaseModel):
    kind = peewee.CharField(max_length=10)
    key = peewee.CharField(max_length=320)
    locked_until = peewee.DateTimeField()

    class Meta:
        table_name = "sign_in_lock"


@dataclass(frozen=True)
class ThrottleRules:
    """How many failures within ``window`` lock an account or block an address, and for how long."""

    account_failures: int = 5
    address_failures: int = 20
    window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: object) -> ThrottleRules:
        return cls(
            account_failures=settings.sign_in_max_failures,  # type: ignore[attr-defined]
            address_failures=settings.sign_in_address_max_failures,  # type: ignore[attr-defined]
            window=dt.timedelta(minutes=settings.sign_in_window_minutes),  # type: ignore[attr-defined]
            lockout=dt.timedelta(minutes=settings.sign_in_lockout_minutes),  # type: ignore[attr-defined]
        )


def account_key(email: object) -> str:
    """The throttling key of a typed email: trimmed, lower case, bounded."""
    return email.strip().lower()[:320] if isinstance(email, str) else ""


def _address_key(address: str | None) -> str:
    return (address or "unknown")[:320]


def lock_until(kind: str, key: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the live lock on ``(kind, key)`` ends, or ``None`` when there is none."""
    now = as_stored(now)
    lock = SignInLock.get_or_none((SignInLock.kind == kind) & (SignInLock.key == key) & (SignInLock.locked_until > now))
    return lock.locked_until if lock else None


def check_throttle(email: object, address: str | None, now: dt.datetime | None = None) -> None:
    """Raise :class:`Throttled` (with ``retry_after`` seconds) while the account or the address is locked."""
    now = as_stored(now)
    for kind, key, message in (
        (ACCOUNT, account_key(email), "Too many failed sign-ins for this account; try again in {minutes} minutes."),
        (ADDRESS, _address_key(address), "Too many failed sign-ins from this address; try again in {minutes} minutes."),
    ):
        until = lock_until(kind, key, now)
        if until is not None:
            seconds = max(1, math.ceil((until - now).total_seconds()))
            raise Throttled(message.format(minutes=math.ceil(seconds / 60)), retry_after=seconds, reason=kind)


def register_failure(
    email: object, address: str | None, rules: ThrottleRules, now: dt.datetime | None = None
) -> dict[str, dt.datetime]:
    """Count one failed sign-in; returns the locks it started, as ``{kind: locked_until}``.

    Call inside a transaction. A lock replaces the failures that caused it,
    so the count starts afresh when the lock ends.
    """
    now = as_stored(now)
    started: dict[str, dt.datetime] = {}
    for kind, key, limit in (
        (ACCOUNT, account_key(email), rules.account_failures),
        (ADDRESS, _address_key(address), rules.address_failures),
    ):
        SignInFailure.create(kind=kind, key=key, at=now)
        recent = (
            SignInFailure.select()
            .where((SignInFailure.kind == kind) & (SignInFailure.key == key) & (SignInFailure.at > now - rules.window))
            .count()
        )
        if recent >= limit:
            until = now + rules.lockout
            SignInLock.delete().where((SignInLock.kind == kind) & (SignInLock.key == key)).execute()
            SignInLock.create(kind=kind, key=key, locked_until=until)
            SignInFailure.delete().where((SignInFailure.kind == kind) & (SignInFailure.key == key)).execute()
            started[kind] = until
    return started


def clear_account_failures(email: object) -> None:
    """Forget the failures of an account after a successful sign-in (the address keeps its count)."""
    key = account_key(email)
    SignInFailure.delete().where((SignInFailure.kind == ACCOUNT) & (SignInFailure.key == key)).execute()


def unlock_account(email: object) -> bool:
    """Lift an account's lock and forget its failures (an admin's help); whether a lock was lifted."""
    key = account_key(email)
    clear_account_failures(key)
    return bool(SignInLock.delete().where((SignInLock.kind == ACCOUNT) & (SignInLock.key == key)).execute())


def prune_throttle(rules: ThrottleRules, now: dt.datetime | None = None) -> int:
    """Delete failures older than the window and ended locks; returns how many rows went."""
    now = as_stored(now)
    gone = SignInFailure.delete().where(SignInFailure.at <= now - rules.window).execute()
    gone += SignInLock.delete().where(SignInLock.locked_until <= now).execute()
    return gone
