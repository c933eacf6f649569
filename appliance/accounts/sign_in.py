"""Signing in with an email and a password: the one path for the pages, the API and scripts.

A wrong email and a wrong password get the same answer in the same time (an
unknown email still pays for one password verification). Every success,
failure and lock-out is an audit event. Throttling is in :mod:`appliance.accounts.throttle`:
an attempt is counted before its password is checked, so parallel guesses
cannot outrun the lock-out.

With two-factor on, a right password is only the first step
(:func:`check_password` answers that a code is needed, and the password step
neither counts as a success nor clears the account's failures); the code is
checked by :func:`appliance.accounts.second_factor.verify_second_factor`.
:func:`sign_in` does both steps at once for the API (``otp`` beside the password).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from appliance.accounts import passwords, totp
from appliance.accounts.second_factor import verify_second_factor
from appliance.accounts.throttle import (
    Attempt,
    ThrottleRules,
    account_key,
    check_throttle,
    drop_attempt,
    fail_attempt,
    record_locks,
    start_audited_attempt,
    succeed_attempt,
)
from appliance.accounts.users import find_user_by_email
from appliance.audit import record_event
from appliance.clock import as_stored
from appliance.errors import NotAuthenticated, OtpRequired, Throttled, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import User

WRONG_CREDENTIALS = "Email or password is incorrect."


def sign_in(
    email: object,
    password: object,
    *,
    address: str | None,
    rules: ThrottleRules,
    via: str = "page",
    now: dt.datetime | None = None,
    otp: object = None,
    secret_key: bytes | None = None,
) -> User:
    """The user whose email and password (and, with two-factor on, ``otp``) these are.

    As :func:`check_password`; with two-factor on, raises :class:`OtpRequired`
    (401) without ``otp``, and checks it with ``secret_key`` (the instance's)
    as :func:`~appliance.accounts.second_factor.verify_second_factor` does.
    """
    user, needs_code = check_password(email, password, address=address, rules=rules, via=via, now=now)
    if not needs_code:
        return user
    if otp is None or secret_key is None:
        raise OtpRequired(
            "Two-factor sign-in is on for this account: send the 6-digit code from the app (or a recovery code) "
            "as 'otp'."
        )
    return verify_second_factor(user.id, otp, secret_key, address=address, rules=rules, via=via, field="otp", now=now)


def check_password(
    email: object,
    password: object,
    *,
    address: str | None,
    rules: ThrottleRules,
    via: str = "page",
    now: dt.datetime | None = None,
) -> tuple[User, bool]:
    """The user whose email and password these are, and whether a second factor is still needed;
    records the attempt.

    Raises :class:`ValidationFailed` when the email or the password is
    missing (not counted as a failure), :class:`Throttled` while the account
    or the address is locked or its limit is taken up by attempts still being
    checked (the password is then not even checked), else
    :class:`NotAuthenticated` with one message for every kind of failure
    (unknown email, wrong password, disabled user). A right password is still
    refused when a lock started while it was being checked. A success
    re-hashes the password when the hashing parameters changed. With two-factor
    on, a right password is audited ``sign_in.password_ok`` (not a success yet).
    """
    fields = {}
    if not isinstance(email, str) or not email.strip():
        fields["email"] = "Enter your email address."
    if not isinstance(password, str) or not password:
        fields["password"] = "Enter your password."
    if fields:
        raise ValidationFailed(fields)  # nothing was tried: not a failed sign-in
    now = as_stored(now)
    key = account_key(email)
    user = find_user_by_email(key)
    attempt = start_audited_attempt(
        key, address, rules, actor=user, action="sign_in.failed", details={"via": via}, now=now
    )
    try:
        return _finish_password_attempt(attempt, key, user, password, address=address, rules=rules, via=via, now=now)
    except (NotAuthenticated, Throttled):
        raise
    except BaseException:
        # Anything else (a database error, a hasher that cannot take the text) must not leave the attempt
        # pending: a pending attempt counts against the lock-out until its window ends, so a handful of such
        # requests would lock the account with no failure ever audited. It was never judged: not counted.
        with contextlib.suppress(Exception), database.atomic():
            drop_attempt(attempt)
            record_event("sign_in.error", actor=user, target=key, address=address, details={"via": via}, now=now)
        raise


def _finish_password_attempt(
    attempt: Attempt,
    key: str,
    user: User | None,
    password: object,
    *,
    address: str | None,
    rules: ThrottleRules,
    via: str,
    now: dt.datetime,
) -> tuple[User, bool]:
    """The password check of :func:`check_password` once its attempt is counted; see there."""
    # A password longer than any allowed one cannot match; cutting it keeps the hash cost bounded.
    typed = password[: passwords.MAX_LENGTH + 1] if isinstance(password, str) else ""
    if user is not None:
        matches = passwords.verify_password(user.password_hash, typed)
    else:
        passwords.spend_verify_time(typed)
        matches = False
    if matches and user is not None and user.active:
        new_hash = passwords.hash_password(typed) if passwords.needs_rehash(user.password_hash) else None
        refusal: Throttled | None = None
        with database.atomic():
            try:
                # Parallel failures may have locked the account while this password was checked.
                check_throttle(key, address, now)
            except Throttled as exc:
                refusal = exc
                drop_attempt(attempt)
                record_event(
                    "sign_in.failed",
                    actor=user,
                    target=key,
                    address=address,
                    details={"reason": f"{exc.extra.get('reason')}_locked", "via": via},
                    now=now,
                )
            else:
                needs_code = totp.totp_enabled(user.id)
                changes: dict[Any, Any] = {} if needs_code else {User.last_sign_in_at: now}
                if new_hash:
                    changes[User.password_hash] = new_hash
                if changes:
                    User.update(changes).where(User.id == user.id).execute()
                if needs_code:
                    # Not a success yet: the account's failures stay until the code is right too.
                    drop_attempt(attempt)
                else:
                    succeed_attempt(attempt)
                record_event(
                    "sign_in.password_ok" if needs_code else "sign_in.success",
                    actor=user,
                    target=key,
                    address=address,
                    details={"via": via, "rehashed": bool(new_hash)},
                    now=now,
                )
        if refusal is not None:
            raise refusal
        return User.get_by_id(user.id), needs_code
    reason = "unknown_email" if user is None else ("disabled" if matches else "wrong_password")
    with database.atomic():
        locks = fail_attempt(attempt, rules, now)
        record_event(
            "sign_in.failed", actor=user, target=key, address=address, details={"reason": reason, "via": via}, now=now
        )
        record_locks(locks, key, address, user, now)
    raise NotAuthenticated(WRONG_CREDENTIALS)
