"""The first-run link: ``/setup/<token>`` creates the first admin, once, within an hour.

``appliance serve`` asks for a link while no active admin exists; a new link
replaces any unused one. The link dies when it is used, when it expires, and
as soon as any admin exists (``appliance users create ... --role admin``
does the same job headless).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from appliance.accounts.tokens import digest_of
from appliance.accounts.user_changes import insert_user, prepare_user
from appliance.accounts.users import has_active_admin
from appliance.actors import ADMIN_ROLE
from appliance.audit import record_event
from appliance.clock import as_stored
from appliance.errors import NotFound
from appliance.storage.db import database
from appliance.storage.models import SetupLink, User

VALID_FOR = dt.timedelta(hours=1)


def needs_setup() -> bool:
    """Whether the instance still has no active admin."""
    return not has_active_admin()


def create_setup_link(now: dt.datetime | None = None) -> str | None:
    """A new one-time secret for ``/setup/<secret>``, or ``None`` when an admin already exists.

    Unused older links stop working.
    """
    now = as_stored(now)
    secret = secrets.token_urlsafe(24)
    with database.atomic():
        if not needs_setup():
            return None
        SetupLink.delete().where(SetupLink.used_at.is_null()).execute()
        SetupLink.create(digest=digest_of(secret), created_at=now, expires_at=now + VALID_FOR)
    return secret


def check_setup_link(secret: Any, now: dt.datetime | None = None) -> None:
    """Raise :class:`NotFound` unless ``secret`` is a live link and no admin exists yet."""
    now = as_stored(now)
    if not isinstance(secret, str) or len(secret) > 200 or not needs_setup():
        raise NotFound("This set-up link is not valid (any more).")
    link = SetupLink.get_or_none(
        (SetupLink.digest == digest_of(secret)) & SetupLink.used_at.is_null() & (SetupLink.expires_at > now)
    )
    if link is None:
        raise NotFound("This set-up link is not valid (any more).")


def complete_setup(
    secret: Any, email: Any, name: Any, password: Any, *, address: str | None = None, now: dt.datetime | None = None
) -> User:
    """Create the first admin through a live link and spend the link; returns the admin.

    Raises :class:`NotFound` for a dead link, :class:`ValidationFailed` /
    :class:`Conflict` for bad account fields (the link stays usable then).
    """
    now = as_stored(now)
    check_setup_link(secret, now)
    # Checked and hashed before the write transaction: the hash is slow, and the write lock is everyone's.
    new_admin = prepare_user(email, name, ADMIN_ROLE, password)
    with database.atomic():
        spent = (
            SetupLink.update(used_at=now)
            .where((SetupLink.digest == digest_of(secret)) & SetupLink.used_at.is_null() & (SetupLink.expires_at > now))
            .execute()
        )
        if not spent or not needs_setup():
            raise NotFound("This set-up link is not valid (any more).")
        user = insert_user(new_admin, actor="setup", address=address)
        # The set-up page signs the new admin in at once.
        User.update(last_sign_in_at=now).where(User.id == user.id).execute()
        record_event("setup.completed", actor=user, target=user.email, address=address, now=now)
    return User.get_by_id(user.id)
