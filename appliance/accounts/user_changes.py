"""Changing users: adding them, editing them, their passwords, signing them out everywhere, removing them.

Every write runs in one transaction with its audit event; a refused change
changes nothing. The last active admin can be neither disabled, demoted nor
deleted.

Browser sessions are rows of ``user_session`` (the services are in
:mod:`appliance.accounts.sessions`): a role change, disabling, a password
change and "sign out everywhere" delete the user's rows in the same
transaction, which ends those sessions at once in every worker. They also
move ``session_version`` on, which the console shows; the rows are the truth.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from appliance.accounts import passwords
from appliance.accounts.account_links import void_user_links
from appliance.accounts.roles import role_exists
from appliance.accounts.sessions import end_user_sessions
from appliance.accounts.throttle import (
    ThrottleRules,
    fail_attempt,
    record_locks,
    start_audited_attempt,
    succeed_attempt,
    unlock_account,
)
from appliance.accounts.tokens import revoke_user_tokens
from appliance.accounts.users import count_active_admins, find_user_by_email, get_user, normalize_email
from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import as_stored, utcnow
from appliance.errors import BadRequest, Conflict, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import User

NAME_MAX = 200
EDITABLE_FIELDS = ("email", "name", "role", "active")


def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "Enter a name."
    if len(name.strip()) > NAME_MAX:
        return f"Use at most {NAME_MAX} characters."
    return None


def _role_problem(role: Any) -> str | None:
    if not isinstance(role, str) or not role_exists(role):
        return "Choose one of the roles."
    return None


def _collect(fields: dict[str, str], check: Callable[[], str]) -> str | None:
    """Run ``check``; a :class:`ValidationFailed` it raises adds its messages to ``fields``."""
    try:
        return check()
    except ValidationFailed as exc:
        fields.update(exc.fields)
        return None


def _guard_last_admin(verb: str) -> None:
    """Inside a transaction, after the change: refuse it when no active admin would be left."""
    if count_active_admins() == 0:
        raise Conflict(f"The last active admin cannot be {verb}; make another user an admin first.")


# --- writing --------------------------------------------------------------------


@dataclass(frozen=True)
class NewUser:
    """A user checked and with their password hashed, ready for :func:`insert_user` (no lock held yet)."""

    email: str
    name: str
    role: str
    password_hash: str
    must_change_password: bool = False


def prepare_user(email: Any, name: Any, role: Any, password: Any, *, must_change_password: bool = False) -> NewUser:
    """Check a new user's fields and hash the password (slow: do it before any write transaction).

    Raises :class:`ValidationFailed` naming every bad field (email, name, role, password).
    """
    fields: dict[str, str] = {}
    stored_email = _collect(fields, lambda: normalize_email(email))
    if problem := _name_problem(name):
        fields["name"] = problem
    if problem := _role_problem(role):
        fields["role"] = problem
    if problem := passwords.policy_problem(password, stored_email or (email if isinstance(email, str) else None)):
        fields["password"] = problem
    if fields or stored_email is None:
        raise ValidationFailed(fields)
    return NewUser(stored_email, name.strip(), role, passwords.hash_password(password), must_change_password)


def insert_user(new: NewUser, *, actor: ActorLike | str | None = None, address: str | None = None) -> User:
    """Write a prepared user and its audit event; call inside a transaction.

    Raises :class:`Conflict` on ``email`` when the address is taken.
    """
    if find_user_by_email(new.email) is not None:
        raise Conflict("A user with this email already exists.", fields={"email": "This email is taken."})
    try:
        with database.atomic():
            user = User.create(
                email=new.email,
                name=new.name,
                role=new.role,
                active=True,
                password_hash=new.password_hash,
                must_change_password=new.must_change_password,
                created_at=utcnow(),
            )
    except peewee.IntegrityError:
        raise Conflict("A user with this email already exists.", fields={"email": "This email is taken."}) from None
    record_event("user.created", actor=actor, target=new.email, address=address, details={"role": new.role})
    return user


def create_user(
    email: Any,
    name: Any,
    role: Any,
    password: Any,
    *,
    actor: ActorLike | str | None = None,
    address: str | None = None,
    must_change_password: bool = False,
) -> User:
    """Add a user and return it.

    Raises :class:`ValidationFailed` naming every bad field (email, name,
    role, password), :class:`Conflict` on ``email`` when the address is taken.
    """
    new = prepare_user(email, name, role, password, must_change_password=must_change_password)
    with database.atomic():
        return insert_user(new, actor=actor, address=address)


def _parse_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate the fields of an update; returns them cleaned. Raises BadRequest / ValidationFailed."""
    if not isinstance(changes, dict):
        raise BadRequest("Send an object of the fields to change.")
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise BadRequest(
            f"Unknown or read-only field(s): {', '.join(unknown)}; editable: {', '.join(EDITABLE_FIELDS)}."
        )
    clean: dict[str, Any] = {}
    fields: dict[str, str] = {}
    if "email" in changes:
        clean["email"] = _collect(fields, lambda: normalize_email(changes["email"]))
    if "name" in changes:
        if problem := _name_problem(changes["name"]):
            fields["name"] = problem
        else:
            clean["name"] = changes["name"].strip()
    if "role" in changes:
        if problem := _role_problem(changes["role"]):
            fields["role"] = problem
        else:
            clean["role"] = changes["role"]
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            fields["active"] = "Use true or false."
        else:
            clean["active"] = changes["active"]
    if fields:
        raise ValidationFailed(fields)
    return clean


def update_user(
    user_id: Any,
    changes: dict[str, Any],
    *,
    actor: ActorLike | str | None = None,
    address: str | None = None,
    password: Any = None,
    must_change_password: bool | None = None,
    revoke_tokens: bool = True,
) -> User:
    """Change some of ``email``, ``name``, ``role``, ``active``, and optionally reset the password, all in one
    transaction; returns the updated user.

    With ``password`` the user gets that password (checked against the policy
    and the user's new email) and must choose another at the next sign-in
    unless ``must_change_password`` is ``False``. A role change, disabling or
    a new password ends the user's sessions; a new password the user must
    change also deletes their API tokens (audited ``token.revoked_all``) unless
    ``revoke_tokens`` is ``False`` (the admin's choice). Raises :class:`NotFound`,
    :class:`BadRequest` for unknown fields (or ``must_change_password``
    without a password), :class:`ValidationFailed`, :class:`Conflict` for a
    taken email or when the change would leave no active admin. A refused
    change changes nothing.
    """
    clean = _parse_changes(changes)
    password_hash = None
    if password is None:
        if must_change_password is not None:
            raise BadRequest("'must_change_password' goes with a new 'password'.")
    else:
        if not isinstance(must_change_password, bool | None):
            raise BadRequest("'must_change_password' must be true or false.")
        email = clean.get("email") or get_user(user_id).email
        passwords.check_password_policy(password, email)
        password_hash = passwords.hash_password(password)  # slow: before the write lock is taken
    with database.atomic():
        user = get_user(user_id)
        diff = {key: [getattr(user, key), value] for key, value in clean.items() if getattr(user, key) != value}
        if not diff and password_hash is None:
            return user
        if "email" in diff and find_user_by_email(clean["email"]) is not None:
            raise Conflict("A user with this email already exists.", fields={"email": "This email is taken."})
        was_admin = user.is_admin
        for key, (_old, new) in diff.items():
            setattr(user, key, new)
        if password_hash is not None:
            user.password_hash = password_hash
            user.must_change_password = must_change_password is not False
        if "role" in diff or "active" in diff or password_hash is not None:
            user.session_version += 1
            end_user_sessions(user.id)
        if "active" in diff and not user.active:
            void_user_links(user.id)  # an invitation or reset link must not outlive the account's disabling
        if password_hash is not None and user.must_change_password and revoke_tokens:
            # The account is being taken back: a token made before the reset must not keep writing.
            revoke_user_tokens(user, reason="password_reset", actor=actor, address=address)
        try:
            user.save()
        except peewee.IntegrityError:
            raise Conflict("A user with this email already exists.", fields={"email": "This email is taken."}) from None
        if was_admin and not user.is_admin:
            _guard_last_admin("disabled" if "active" in diff else "demoted")
        if diff:
            if "active" in diff:
                action = "user.enabled" if user.active else "user.disabled"
            elif "role" in diff:
                action = "user.role_changed"
            else:
                action = "user.updated"
            record_event(action, actor=actor, target=user.email, address=address, details={"changes": diff})
        if password_hash is not None:
            record_event(
                "user.password_reset",
                actor=actor,
                target=user.email,
                address=address,
                details={"must_change": user.must_change_password, "tokens_revoked": bool(revoke_tokens)},
            )
    return user


def disable_user(user_id: Any, *, actor: ActorLike | str | None = None, address: str | None = None) -> User:
    """Stop the user signing in and end their sessions (tokens stop working too)."""
    return update_user(user_id, {"active": False}, actor=actor, address=address)


def enable_user(user_id: Any, *, actor: ActorLike | str | None = None, address: str | None = None) -> User:
    """Let a disabled user sign in again."""
    return update_user(user_id, {"active": True}, actor=actor, address=address)


def set_password(
    user_id: Any,
    password: Any,
    *,
    actor: ActorLike | str | None = None,
    address: str | None = None,
    must_change: bool = False,
    revoke_tokens: bool = True,
) -> User:
    """Give the user a new password (an admin's reset or the CLI) and end their sessions.

    With ``must_change`` the user has to choose a new one at the next sign-in,
    and their API tokens are deleted unless ``revoke_tokens`` is ``False``.
    Raises :class:`NotFound`, or :class:`ValidationFailed` on ``password``.
    """
    return update_user(
        user_id,
        {},
        actor=actor,
        address=address,
        password=password,
        must_change_password=bool(must_change),
        revoke_tokens=revoke_tokens,
    )


def change_password(
    user_id: Any,
    current_password: Any,
    new_password: Any,
    *,
    address: str | None = None,
    rules: ThrottleRules | None = None,
    now: dt.datetime | None = None,
) -> User:
    """The user's own change: checks the current password, applies the policy to the new one.

    The check of the current password is throttled like a sign-in of the
    account (it counts towards the same lock-out), and a wrong one is audited
    (``user.password_change_failed``). Ends every session of the user (the
    caller signs the current browser in again); their API tokens keep working
    (they are separate credentials, and the office's scripts depend on them). Raises :class:`ValidationFailed`
    on ``current_password`` or ``new_password``, :class:`Throttled` while the
    account or the address is locked.
    """
    rules = rules or ThrottleRules()
    at = as_stored(now)
    user = get_user(user_id)
    # The policy first: a form refused for its new password checks (and counts) nothing.
    passwords.check_password_policy(new_password, user.email, field="new_password")
    if not isinstance(current_password, str) or not current_password:
        raise ValidationFailed({"current_password": "Enter your current password."})
    details = {"via": "password_change"}
    attempt = start_audited_attempt(
        user.email, address, rules, actor=user, action="user.password_change_failed", details=details, now=at
    )
    if not passwords.verify_password(user.password_hash, current_password[: passwords.MAX_LENGTH + 1]):
        with database.atomic():
            locks = fail_attempt(attempt, rules, at)
            record_event(
                "user.password_change_failed",
                actor=user,
                target=user.email,
                address=address,
                details={**details, "reason": "wrong_current_password"},
                now=at,
            )
            record_locks(locks, user.email, address, user, at)
        raise ValidationFailed({"current_password": "This is not your current password."})
    if new_password == current_password:
        with database.atomic():
            succeed_attempt(attempt)
        raise ValidationFailed({"new_password": "Choose a password different from the current one."})
    password_hash = passwords.hash_password(new_password)
    with database.atomic():
        succeed_attempt(attempt)
        User.update(
            password_hash=password_hash, must_change_password=False, session_version=User.session_version + 1
        ).where(User.id == user.id).execute()
        end_user_sessions(user.id)
        record_event(
            "user.password_changed",
            actor=user,
            target=user.email,
            address=address,
            details={"tokens_kept": True},
            now=at,
        )
    return get_user(user.id)


def sign_out_everywhere(user_id: Any, *, actor: ActorLike | str | None = None, address: str | None = None) -> User:
    """End every browser session of the user at once, in every worker; returns the updated user."""
    with database.atomic():
        user = get_user(user_id)
        User.update(session_version=User.session_version + 1).where(User.id == user.id).execute()
        ended = end_user_sessions(user.id)
        record_event(
            "user.signed_out_everywhere",
            actor=actor or user,
            target=user.email,
            address=address,
            details={"sessions": ended},
        )
    return get_user(user.id)


def unlock_user(user_id: Any, *, actor: ActorLike | str | None = None, address: str | None = None) -> User:
    """Lift the user's sign-in lock-out and forget their failed sign-ins (an admin's help); returns the user.

    Audited as ``user.unlocked`` (``details.lifted`` says whether a lock was
    live). The lock of a client address stays. Raises :class:`NotFound`.
    """
    with database.atomic():
        user = get_user(user_id)
        lifted = unlock_account(user.email)
        record_event("user.unlocked", actor=actor, target=user.email, address=address, details={"lifted": lifted})
    return user


def delete_user(user_id: Any, *, actor: ActorLike | str | None = None, address: str | None = None) -> None:
    """Remove the user and their API tokens; their audit events stay, with the email as actor.

    Raises :class:`NotFound`, or :class:`Conflict` for the last active admin
    or a user whom other records still point to.
    """
    try:
        with database.atomic():
            user = get_user(user_id)
            email = user.email
            if getattr(actor, "id", None) == user.id:
                actor = user.email  # the event cannot point at the row it deletes
            end_user_sessions(user.id)
            user.delete_instance()
            if user.is_admin:
                _guard_last_admin("deleted")
            record_event("user.deleted", actor=actor, target=email, address=address, details={"role": user.role})
    except peewee.IntegrityError:
        raise Conflict("Other records still refer to this user; disable the user instead.") from None
