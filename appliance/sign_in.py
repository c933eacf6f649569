"""Signing in with an email and a password: the one path for the pages, the API and scripts.

A wrong email and a wrong password get the same answer in the same time (an
unknown email still pays for one password verification). Every success,
failure and lock-out is an audit event. Throttling is in :mod:`appliance.throttle`.
"""

from __future__ import annotations

import datetime as dt

from appliance import passwords
from appliance.audit import record_event
from appliance.clock import as_stored, iso
from appliance.db import database
from appliance.errors import NotAuthenticated, Throttled, ValidationFailed
from appliance.throttle import ThrottleRules, account_key, check_throttle, clear_account_failures, register_failure
from appliance.users import User, find_user_by_email

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
    missing (not counted as a failure), :class:`Throttled` while the account or the address is locked (the
    password is then not even checked), else :class:`NotAuthenticated` with
    one message for every kind of failure (unknown email, wrong password,
    disabled user). A success re-hashes the password when the hashing
    parameters changed.
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
    try:
        check_throttle(key, address, now)
    except Throttled as exc:
        with database.atomic():
            record_event(
                "sign_in.failed",
                actor=find_user_by_email(key),
                target=key,
                address=address,
                details={"reason": f"{exc.extra.get('reason')}_locked", "via": via},
                now=now,
            )
        raise
    # A password longer than any allowed one cannot match; cutting it keeps the hash cost bounded.
    typed = password[: passwords.MAX_LENGTH + 1]
    user = find_user_by_email(key)
    if user is not None:
        matches = passwords.verify_password(user.password_hash, typed)
    else:
        passwords.spend_verify_time(typed)
        matches = False
    if matches and user is not None and user.active:
        new_hash = passwords.hash_password(typed) if passwords.needs_rehash(user.password_hash) else None
        with database.atomic():
            changes: dict = {User.last_sign_in_at: now}
            if new_hash:
                changes[User.password_hash] = new_hash
            User.update(changes).where(User.id == user.id).execute()
            clear_account_failures(key)
            record_event(
                "sign_in.success",
                actor=user,
                target=key,
                address=address,
                details={"via": via, "rehashed": bool(new_hash)},
                now=now,
            )
        return User.get_by_id(user.id)
    reason = "unknown_email" if user is None else ("disabled" if matches else "wrong_password")
    with database.atomic():
        locks = register_failure(key, address, rules, now)
        record_event(
            "sign_in.failed", actor=user, target=key, address=address, details={"reason": reason, "via": via}, now=now
        )
        if "account" in locks:
            record_event(
                "sign_in.locked",
                actor=user,
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
    raise NotAuthenticated(WRONG_CREDENTIALS)
