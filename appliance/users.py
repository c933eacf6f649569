"""Users: who may sign in, with which role.

Emails are validated with email-validator and stored lower case, so they
compare case-insensitively. Every write runs in one transaction with its
audit event; a refused change changes nothing. The last active admin can be
neither disabled, demoted nor deleted.

``session_version`` ends sessions: every browser session remembers the
version it was made with, and a session whose version is no longer the
user's is refused. A role change, disabling, a password change and "sign out
everywhere" all move it on.
"""

from __future__ import annotations

from typing import Any

import peewee
from email_validator import EmailNotValidError, validate_email

from appliance import passwords
from appliance.audit import record_event
from appliance.clock import iso, utcnow
from appliance.db import BaseModel, database
from appliance.errors import BadRequest, Conflict, NotFound, ValidationFailed
from appliance.roles import ADMIN, role_exists

NAME_MAX = 200
EDITABLE_FIELDS = ("email", "name", "role", "active")


class User(BaseModel):
    email = peewee.CharField(max_length=320, unique=True)
    name = peewee.CharField(max_length=200)
    role = peewee.CharField(max_length=40, column_name="role")
    active = peewee.BooleanField(default=True, index=True)
    password_hash = peewee.CharField(max_length=255)
    must_change_password = peewee.BooleanField(default=False)
    session_version = peewee.IntegerField(default=1)
    created_at = peewee.DateTimeField(default=utcnow)
    last_sign_in_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN and self.active

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}{'' if self.active else ' disabled'}>"


# --- validation ---------------------------------------------------------------


def normalize_email(email: Any) -> str:
    """The stored (lower-case) form of ``email``; raises :class:`ValidationFailed` on ``email``."""
    if not isinstance(email, str) or not email.strip():
        raise ValidationFailed({"email": "Enter an email address."})
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed({"email": f"Enter a valid email address ({exc})."}) from None
    return result.normalized.lower()


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


def _collect(fields: dict[str, str], check: Any) -> Any:
    """Run ``check``; a :class:`ValidationFailed` it raises adds its messages to ``fields``."""
    try:
        return check()
    except ValidationFailed as exc:
        fields.update(exc.fields)
        return None


def _active_admins() -> int:
    return User.select().where((User.role == ADMIN) & (User.active == True)).count()  # noqa: E712


def _guard_last_admin(verb: str) -> None:
    """Inside a transaction, after the change: refuse it when no active admin would be left."""
    if _active_admins() == 0:
        raise Conflict(f"The last active admin cannot be {verb}; make another user an admin first.")


# --- reading --------------------------------------------------------------------


def get_user(user_id: Any) -> User:
    """The user with ``user_id``; raises :class:`NotFound`."""
    try:
        key = int(user_id)
    except (TypeError, ValueError):
        raise NotFound(f"No user with id {user_id!r}.") from None
    user = User.get_or_none(User.id == key)
    if user is None:
        raise NotFound(f"No user with id {key}.")
    return user


def find_user_by_email(email: str) -> User | None:
    """The user whose email is ``email`` (any case, surrounding spaces ignored), or ``None``."""
    if not isinstance(email, str) or not email.strip():
        return None
    return User.get_or_none(User.email == email.strip().lower())


def get_user_by_email(email: str) -> User:
    """Like :func:`find_user_by_email`, raising :class:`NotFound` instead of answering ``None``."""
    user = find_user_by_email(email)
    if user is None:
        raise NotFound(f"No user with the email {email.strip() if isinstance(email, str) else email!r}.")
    return user


def list_users(*, search: str | None = None, role: str | None = None, active: bool | None = None) -> peewee.ModelSelect:
    """Users matching the filters, by email (a query, ready for paging).

    ``search`` matches part of the email or the name, any case.
    """
    query = User.select()
    if search and search.strip():
        term = search.strip().lower()
        query = query.where(User.email.contains(term) | peewee.fn.LOWER(User.name).contains(term))
    if role:
        query = query.where(User.role == role)
    if active is not None:
        query = query.where(User.active == active)
    return query.order_by(User.email)


def has_active_admin() -> bool:
    """Whether at least one active admin exists (a new instance has none)."""
    return _active_admins() > 0


def serialize_user(user: User) -> dict[str, Any]:
    """The user as the API shows it: never the hash."""
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "active": user.active,
        "created_at": iso(user.created_at),
        "last_sign_in_at": iso(user.last_sign_in_at),
        "must_change_password": user.must_change_password,
    }


# --- writing --------------------------------------------------------------------


def create_user(
    email: Any,
    name: Any,
    role: Any,
    password: Any,
    *,
    actor: Any = None,
    address: str | None = None,
    must_change_password: bool = False,
) -> User:
    """Add a user and return it.

    Raises :class:`ValidationFailed` naming every bad field (email, name,
    role, password), :class:`Conflict` on ``email`` when the address is taken.
    """
    fields: dict[str, str] = {}
    stored_email = _collect(fields, lambda: normalize_email(email))
    if problem := _name_problem(name):
        fields["name"] = problem
    if problem := _role_problem(role):
        fields["role"] = problem
    if problem := passwords.policy_problem(password, stored_email or (email if isinstance(email, str) else None)):
        fields["password"] = problem
    if fields:
        raise ValidationFailed(fields)
    password_hash = passwords.hash_password(password)  # slow: before the write lock is taken
    try:
        with database.atomic():
            if find_user_by_email(stored_email) is not None:
                raise Conflict("A user with this email already exists.", fields={"email": "This email is taken."})
            user = User.create(
                email=stored_email,
                name=name.strip(),
                role=role,
                active=True,
                password_hash=password_hash,
                must_change_password=must_change_password,
                created_at=utcnow(),
            )
            record_event("user.created", actor=actor, target=stored_email, address=address, details={"role": role})
    except peewee.IntegrityError:
        raise Conflict("A user with this email already exists.", fields={"email": "This email is taken."}) from None
    return user


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


def update_user(user_id: Any, changes: dict[str, Any], *, actor: Any = None, address: str | None = None) -> User:
    """Change some of ``email``, ``name``, ``role``, ``active``; returns the updated user.

    A role change or disabling ends the user's sessions. Raises
    :class:`NotFound`, :class:`BadRequest` for unknown fields,
    :class:`ValidationFailed`, :class:`Conflict` for a taken email or when
    the change would leave no active admin.
    """
    clean = _parse_changes(changes)
    with database.atomic():
        user = get_user(user_id)
        diff = {key: [getattr(user, key), value] for key, value in clean.items() if getattr(user, key) != value}
        if not diff:
            return user
        if "email" in diff and find_user_by_email(clean["email"]) is not None:
            raise Conflict("A user with this email already exists.", fields={"email": "This email is taken."})
        was_admin = user.is_admin
        for key, (_old, new) in diff.items():
            setattr(user, key, new)
        if "role" in diff or "active" in diff:
            user.session_version += 1
        try:
            user.save()
        except peewee.IntegrityError:
            raise Conflict("A user with this email already exists.", fields={"email": "This email is taken."}) from None
        if was_admin and not user.is_admin:
            _guard_last_admin("disabled" if "active" in diff else "demoted")
        if "active" in diff:
            action = "user.enabled" if user.active else "user.disabled"
        elif "role" in diff:
            action = "user.role_changed"
        else:
            action = "user.updated"
        record_event(action, actor=actor, target=user.email, address=address, details={"changes": diff})
    return user


def disable_user(user_id: Any, *, actor: Any = None, address: str | None = None) -> User:
    """Stop the user signing in and end their sessions (tokens stop working too)."""
    return update_user(user_id, {"active": False}, actor=actor, address=address)


def enable_user(user_id: Any, *, actor: Any = None, address: str | None = None) -> User:
    """Let a disabled user sign in again."""
    return update_user(user_id, {"active": True}, actor=actor, address=address)


def set_password(
    user_id: Any,
    password: Any,
    *,
    actor: Any = None,
    address: str | None = None,
    must_change: bool = False,
) -> User:
    """Give the user a new password (an admin's reset or the CLI) and end their sessions.

    With ``must_change`` the user has to choose a new one at the next sign-in.
    Raises :class:`NotFound`, or :class:`ValidationFailed` on ``password``.
    """
    user = get_user(user_id)
    passwords.check_password_policy(password, user.email)
    password_hash = passwords.hash_password(password)
    with database.atomic():
        updated = (
            User.update(
                password_hash=password_hash,
                must_change_password=must_change,
                session_version=User.session_version + 1,
            )
            .where(User.id == user.id)
            .execute()
        )
        if not updated:
            raise NotFound(f"No user with id {user.id}.")
        record_event(
            "user.password_reset",
            actor=actor,
            target=user.email,
            address=address,
            details={"must_change": must_change},
        )
    return get_user(user.id)


def change_password(user_id: Any, current_password: Any, new_password: Any, *, address: str | None = None) -> User:
    """The user's own change: checks the current password, applies the policy to the new one.

    Ends every session of the user (the caller signs the current browser in
    again with the returned user's new session version). Raises
    :class:`ValidationFailed` on ``current_password`` or ``new_password``.
    """
    user = get_user(user_id)
    if not isinstance(current_password, str) or not passwords.verify_password(user.password_hash, current_password):
        raise ValidationFailed({"current_password": "This is not your current password."})
    passwords.check_password_policy(new_password, user.email, field="new_password")
    if new_password == current_password:
        raise ValidationFailed({"new_password": "Choose a password different from the current one."})
    password_hash = passwords.hash_password(new_password)
    with database.atomic():
        User.update(
            password_hash=password_hash, must_change_password=False, session_version=User.session_version + 1
        ).where(User.id == user.id).execute()
        record_event("user.password_changed", actor=user, target=user.email, address=address)
    return get_user(user.id)


def sign_out_everywhere(user_id: Any, *, actor: Any = None, address: str | None = None) -> User:
    """End every browser session of the user at once, in every worker; returns the updated user."""
    with database.atomic():
        user = get_user(user_id)
        User.update(session_version=User.session_version + 1).where(User.id == user.id).execute()
        record_event("user.signed_out_everywhere", actor=actor or user, target=user.email, address=address)
    return get_user(user.id)


def delete_user(user_id: Any, *, actor: Any = None, address: str | None = None) -> None:
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
            user.delete_instance()
            if user.is_admin:
                _guard_last_admin("deleted")
            record_event("user.deleted", actor=actor, target=email, address=address, details={"role": user.role})
    except peewee.IntegrityError:
        raise Conflict("Other records still refer to this user; disable the user instead.") from None
