"""The second step of a sign-in, and turning two-factor off: a code checked under the sign-in throttle.

A wrong code is a failed sign-in of the account: it counts towards the same
lock-out as a wrong password (:mod:`appliance.accounts.throttle`), is counted
before it is checked, and is audited (``sign_in.otp_failed``,
``totp.disable_failed``). A right password alone never clears the
account's failures when two-factor is on, so guessing codes behind a known
password still ends in a lock-out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from appliance.accounts import totp
from appliance.accounts.throttle import (
    ThrottleRules,
    check_throttle,
    drop_attempt,
    fail_attempt,
    record_locks,
    start_audited_attempt,
    succeed_attempt,
)
from appliance.accounts.users import get_user
from appliance.audit import record_event
from appliance.clock import as_stored
from appliance.errors import Conflict, NotAuthenticated, Throttled, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import User

WRONG_CODE = "This code is not right, or it was used already; try the next code from your app."
CODE_MISSING = "Enter the 6-digit code from your authenticator app, or one of your recovery codes."


def _typed(code: object, field: str) -> str:
    if not isinstance(code, str) or not "".join(code.split()):
        raise ValidationFailed({field: CODE_MISSING})  # nothing was tried: not a failure
    return "".join(code.split())[:64]


def _check(
    user: User,
    code: str,
    secret_key: bytes,
    *,
    address: str | None,
    rules: ThrottleRules,
    failed_action: str,
    details: dict[str, Any],
    now: dt.datetime,
) -> tuple[totp.CodeKind | None, Throttled | None, Any]:
    """Count an attempt, check the code; ``(kind, refusal, attempt)``. A wrong code is recorded as a
    failure (and may lock the account) in its own committed transaction."""
    attempt = start_audited_attempt(
        user.email, address, rules, actor=user, action=failed_action, details=details, now=now
    )
    with database.atomic():
        try:
            check_throttle(user.email, address, now)  # a lock may have started while this was in flight
        except Throttled as exc:
            drop_attempt(attempt)
            reason = f"{exc.extra.get('reason')}_locked"
            record_event(
                failed_action, actor=user, target=user.email, address=address, details={**details, "reason": reason}
            )
            return None, exc, attempt
        kind = totp.consume_code(user, code, secret_key, now)
        if kind is None:
            locks = fail_attempt(attempt, rules, now)
            record_event(
                failed_action,
                actor=user,
                target=user.email,
                address=address,
                details={**details, "reason": "wrong_code"},
                now=now,
            )
            record_locks(locks, user.email, address, user, now)
    return kind, None, attempt


def verify_second_factor(
    user_id: int,
    code: object,
    secret_key: bytes,
    *,
    address: str | None,
    rules: ThrottleRules,
    via: str = "page",
    field: str = "code",
    now: dt.datetime | None = None,
) -> User:
    """The second step of a sign-in whose password was right: the user, once ``code`` (a current
    6-digit code, or an unused recovery code) is accepted. Sets ``last_sign_in_at``; audited
    ``sign_in.success`` with ``second_factor``.

    Raises :class:`ValidationFailed` on ``field`` for no code (not counted),
    :class:`Throttled` while the account or address is locked, else
    :class:`NotAuthenticated` for a wrong, replayed or used code (counted towards the lock-out).
    """
    typed = _typed(code, field)
    at = as_stored(now)
    user = get_user(user_id)
    if not user.active:
        raise NotAuthenticated("Email or password is incorrect.")
    details = {"via": via}
    kind, refusal, attempt = _check(
        user,
        typed,
        secret_key,
        address=address,
        rules=rules,
        failed_action="sign_in.otp_failed",
        details=details,
        now=at,
    )
    if refusal is not None:
        raise refusal
    if kind is None:
        raise NotAuthenticated(WRONG_CODE, fields={field: WRONG_CODE})
    with database.atomic():
        succeed_attempt(attempt)
        User.update(last_sign_in_at=at).where(User.id == user.id).execute()
        record_event(
            "sign_in.success",
            actor=user,
            target=user.email,
            address=address,
            details={**details, "second_factor": kind},
            now=at,
        )
    return get_user(user.id)


def disable_totp(
    user_id: int,
    code: object,
    secret_key: bytes,
    *,
    address: str | None,
    rules: ThrottleRules,
    now: dt.datetime | None = None,
) -> User:
    """The user's own "turn two-factor off", which needs a current code (or a recovery code); returns the user.

    Throttled like a sign-in. Raises :class:`ValidationFailed` on ``code`` (missing, wrong or used; a
    wrong one counts), :class:`Throttled`, :class:`Conflict` when two-factor is not on. Audited
    ``totp.disabled``.
    """
    typed = _typed(code, "code")
    at = as_stored(now)
    user = get_user(user_id)
    if not totp.totp_enabled(user.id):
        raise Conflict("Two-factor sign-in is not on.")
    details = {"via": "disable"}
    kind, refusal, attempt = _check(
        user,
        typed,
        secret_key,
        address=address,
        rules=rules,
        failed_action="totp.disable_failed",
        details=details,
        now=at,
    )
    if refusal is not None:
        raise refusal
    if kind is None:
        raise ValidationFailed({"code": WRONG_CODE})
    with database.atomic():
        succeed_attempt(attempt)
        totp.remove_totp(user)
        record_event("totp.disabled", actor=user, target=user.email, address=address, details={"code": kind}, now=at)
    return get_user(user.id)
