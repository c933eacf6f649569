"""Users: who may sign in, with which role — finding them, listing them, and showing them.

Emails are stored lower case (:func:`normalize_email`), so they compare
case-insensitively. Adding, changing and removing users is in
:mod:`appliance.accounts.user_changes`.
"""

from __future__ import annotations

from typing import Any

import peewee
from email_validator import EmailNotValidError, validate_email

from appliance.accounts.roles import role_exists
from appliance.actors import ADMIN_ROLE
from appliance.clock import iso
from appliance.errors import BadRequest, NotFound, ValidationFailed
from appliance.storage.models import User
from appliance.text import email_key, mixed_scripts


def normalize_email(email: object) -> str:
    """The stored (lower-case) form of ``email``; raises :class:`ValidationFailed` on ``email``."""
    if not isinstance(email, str) or not email.strip():
        raise ValidationFailed({"email": "Enter an email address."})
    typed = email_key(email)
    mixed = mixed_scripts(typed)
    if mixed:
        raise ValidationFailed(
            {"email": f"This address mixes letters of several alphabets ({', '.join(mixed)}); type it in one."}
        )
    try:
        result = validate_email(typed, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed({"email": f"Enter a valid email address ({exc})."}) from None
    return email_key(result.normalized)


def count_active_admins() -> int:
    """How many active admins there are."""
    return User.select().where((User.role == ADMIN_ROLE) & (User.active == True)).count()  # noqa: E712


def get_user(user_id: int | str) -> User:
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
    return User.get_or_none(User.email == email_key(email))


def get_user_by_email(email: str) -> User:
    """Like :func:`find_user_by_email`, raising :class:`NotFound` instead of answering ``None``."""
    user = find_user_by_email(email)
    if user is None:
        raise NotFound(f"No user with the email {email.strip() if isinstance(email, str) else email!r}.")
    return user


def list_users(
    *, search: str | None = None, role: str | None = None, active: bool | None = None
) -> peewee.ModelSelect[User]:
    """Users matching the filters, by email (a query, ready for paging).

    ``search`` matches part of the email or the name, any case. An unknown
    ``role`` is a :class:`BadRequest` (a filter is never ignored).
    """
    if role and not role_exists(role):
        raise BadRequest(f"There is no role called {role[:40]!r}.", parameter="role")
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
    return count_active_admins() > 0


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
