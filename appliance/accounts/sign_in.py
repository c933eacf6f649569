"""Signing in with an email and a password: the one path for the pages, the API and scripts.

A wrong email and a wrong password get the same answer in the same time (an
unknown email still pays for one password verification). Every success,
failure and lock-out is an audit event. Throttling is in :mod:`appliance.accounts.throttle`:
an attempt is counted before its password is checked, so parallel guesses
cannot outrun the lock-out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from appliance.accounts import passwords
from appliance.accounts.throttle import (
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
from appliance.errors import NotAuthenticated, Throttled, ValidationFailed
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
) -> User:
    """The user whose email and password these are; records the attempt.

    Raises :class:`ValidationFailed` when the email or the password is
    missing (not counted as a failure), :class:`Throttled` while the account
    or the address is locked or its limit is taken up by attempts still being
    checked (the password is then not even checked), else
    :class:`NotAuthenticated` with one message for every kind of failure
    (unknown email, wrong password, disabled user). A right password is still
    refused when a lock started while it was being checked. A success
    re-hashes the password when the hashing parameters changed.
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
                changes: dict[Any, Any] = {User.last_sign_in_at: now}
                if new_hash:
                    changes[User.password_hash] = new_hash
                User.update(changes).where(User.id == user.id).execute()
                succeed_attempt(attempt)
                record_event(
                    "sign_in.success",
                    actor=user,
                    target=key,
                    address=address,
                    details={"via": via, "rehashed": bool(new_hash)},
                    now=now,
                )
        if refusal is not None:
            raise refusal
        return User.get_by_id(user.id)
    reason = "unknown_email" if user is None else ("disabled" if matches else "wrong_password")
    with database.atomic():
        locks = fail_attempt(attempt, rules, now)
        record_event(
            "sign_in.failed", actor=user, target=key, address=address, details={"reason": reason, "via": via}, now=now
        )
        record_locks(locks, key, address, user, now)
    raise NotAuthenticated(WRONG_CREDENTIALS)
