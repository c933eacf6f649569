"""Sign-in throttling, shared by every worker process through the database.

Failed sign-ins are counted per account (the email as typed, lower case,
whether or not such a user exists, so a lock-out tells nothing about which
emails are real) and per client address. When the failures within the window
reach the limit, the account is locked (or the address blocked) for the
lock-out time. Failures are rare writes, so they belong in the database
(DESIGN.md), where every worker sees them.

An attempt is counted *before* its password is checked: :func:`start_attempt`
checks the locks, counts the recent failures and the attempts still in
flight, and inserts a pending row, all in one short write transaction. So
parallel guesses cannot all pass the check before any of them is counted: at
most ``account_failures`` passwords of an account are ever checked per
window. :func:`fail_attempt` turns the pending rows into failures (and locks
when the limit is reached); :func:`succeed_attempt` removes them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import as_stored, iso
from appliance.errors import Throttled
from appliance.storage.db import database
from appliance.storage.models import SignInFailure, SignInLock
from appliance.text import email_key

ACCOUNT = "account"
ADDRESS = "address"


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
    return email_key(email)[:320] if isinstance(email, str) else ""


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


# Answered when the limit is taken up by attempts still being checked: they end within seconds.
IN_FLIGHT_RETRY_SECONDS = 5


@dataclass(frozen=True)
class Attempt:
    """A counted attempt: the ids of its pending rows (one per account, one per address)."""

    email: str
    address: str | None
    row_ids: tuple[int, ...]


def _recent(kind: str, key: str, window: dt.timedelta, now: dt.datetime, *, pending_too: bool) -> int:
    query = SignInFailure.select().where(
        (SignInFailure.kind == kind) & (SignInFailure.key == key) & (SignInFailure.at > now - window)
    )
    if not pending_too:
        query = query.where(SignInFailure.pending == False)  # noqa: E712
    return query.count()


def start_attempt(email: object, address: str | None, rules: ThrottleRules, now: dt.datetime | None = None) -> Attempt:
    """Count one attempt before its password is checked; returns it for :func:`fail_attempt` / :func:`succeed_attempt`.

    Raises :class:`Throttled` (nothing written) while the account or the address
    is locked, or while the failures and the attempts in flight already reach
    the limit. Runs in its own short write transaction (nested in the caller's
    when there is one).
    """
    now = as_stored(now)
    keys = (
        (ACCOUNT, account_key(email), rules.account_failures),
        (ADDRESS, _address_key(address), rules.address_failures),
    )
    with database.atomic():
        check_throttle(email, address, now)
        for kind, key, limit in keys:
            if _recent(kind, key, rules.window, now, pending_too=True) >= limit:
                raise Throttled(
                    "Too many sign-in attempts at once; try again in a few seconds.",
                    retry_after=IN_FLIGHT_RETRY_SECONDS,
                    reason=kind,
                )
        ids = tuple(SignInFailure.create(kind=kind, key=key, at=now, pending=True).id for kind, key, _ in keys)
    return Attempt(account_key(email), address, ids)


def fail_attempt(attempt: Attempt, rules: ThrottleRules, now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """The attempt's password was wrong: count it as a failure; returns the locks it started ``{kind: until}``.

    Call inside a transaction. A lock replaces the failures that caused it.
    """
    now = as_stored(now)
    SignInFailure.update(pending=False, at=now).where(SignInFailure.id.in_(attempt.row_ids)).execute()
    started: dict[str, dt.datetime] = {}
    for kind, key, limit in (
        (ACCOUNT, attempt.email, rules.account_failures),
        (ADDRESS, _address_key(attempt.address), rules.address_failures),
    ):
        if _recent(kind, key, rules.window, now, pending_too=False) >= limit:
            started[kind] = _lock(kind, key, now + rules.lockout)
    return started


def succeed_attempt(attempt: Attempt) -> None:
    """The attempt's password was right: it is no failure, and the account's failures are forgotten.

    Attempts of the account still in flight keep their rows (they still count).
    Call inside a transaction.
    """
    SignInFailure.delete().where(SignInFailure.id.in_(attempt.row_ids)).execute()
    SignInFailure.delete().where(
        (SignInFailure.kind == ACCOUNT) & (SignInFailure.key == attempt.email) & (SignInFailure.pending == False)  # noqa: E712
    ).execute()


def start_audited_attempt(
    key: str,
    address: str | None,
    rules: ThrottleRules,
    *,
    actor: ActorLike | None,
    action: str,
    details: dict[str, Any],
    now: dt.datetime,
) -> Attempt:
    """:func:`start_attempt`, auditing a refusal (``action``, reason ``<kind>_locked``)
    in the same transaction; raises :class:`Throttled` after that transaction committed."""
    refusal: Throttled | None = None
    with database.atomic():
        try:
            return start_attempt(key, address, rules, now)
        except Throttled as exc:
            refusal = exc
            reason = f"{exc.extra.get('reason')}_locked"
            record_event(
                action, actor=actor, target=key, address=address, details={**details, "reason": reason}, now=now
            )
    raise refusal


def record_locks(
    locks: dict[str, dt.datetime], key: str, address: str | None, actor: ActorLike | None, now: dt.datetime
) -> None:
    """Audit the locks a failure started (inside the failure's transaction)."""
    if "account" in locks:
        record_event(
            "sign_in.locked",
            actor=actor,
            target=key,
            address=address,
            details={"until": iso(locks["account"]), "kind": "account"},
            now=now,
        )
    if "address" in locks:
        record_event(
            "sign_in.locked",
            target=address or "unknown",
            address=address,
            details={"until": iso(locks["address"]), "kind": "address"},
            now=now,
        )


def drop_attempt(attempt: Attempt) -> None:
    """Forget an attempt that was refused after all (a lock started while its password was checked)."""
    SignInFailure.delete().where(SignInFailure.id.in_(attempt.row_ids)).execute()


def _lock(kind: str, key: str, until: dt.datetime) -> dt.datetime:
    SignInLock.delete().where((SignInLock.kind == kind) & (SignInLock.key == key)).execute()
    SignInLock.create(kind=kind, key=key, locked_until=until)
    SignInFailure.delete().where(
        (SignInFailure.kind == kind) & (SignInFailure.key == key) & (SignInFailure.pending == False)  # noqa: E712
    ).execute()
    return until


def clear_account_failures(email: object) -> None:
    """Forget the failures of an account after a successful sign-in (the address keeps its count)."""
    key = account_key(email)
    SignInFailure.delete().where((SignInFailure.kind == ACCOUNT) & (SignInFailure.key == key)).execute()


def unlock_account(email: object) -> bool:
    """Lift an account's lock and forget its failures (an admin's help); whether a lock was lifted."""
    key = account_key(email)
    clear_account_failures(key)
    return bool(SignInLock.delete().where((SignInLock.kind == ACCOUNT) & (SignInLock.key == key)).execute())


def locked_accounts(emails: Iterable[str], now: dt.datetime | None = None) -> set[str]:
    """Which of ``emails`` (as stored, lower case) have a live account lock: one query for a page of users."""
    keys = {account_key(email) for email in emails}
    if not keys:
        return set()
    live = SignInLock.select(SignInLock.key).where(
        (SignInLock.kind == ACCOUNT) & SignInLock.key.in_(sorted(keys)) & (SignInLock.locked_until > as_stored(now))
    )
    return {lock.key for lock in live}


def prune_throttle(rules: ThrottleRules, now: dt.datetime | None = None) -> int:
    """Delete failures older than the window and ended locks; returns how many rows went."""
    now = as_stored(now)
    gone = int(SignInFailure.delete().where(SignInFailure.at <= now - rules.window).execute())
    gone += int(SignInLock.delete().where(SignInLock.locked_until <= now).execute())
    return gone
