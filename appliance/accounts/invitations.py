"""Invitations: an admin adds a user by email; the invitee chooses their own password through a one-time link.

An invited user exists at once, *active with no usable password*: their
password hash is that of a random secret nobody ever sees, so a sign-in costs
what any other does and fails, and the admin never handles a password. The
link (72 hours, once) is mailed by :mod:`appliance.jobs.account_mail`, or
shown to the admin to pass on when no SMTP server is set. Inviting the same
address again while the invitation is unused replaces the link (and takes the
new name and role). Audited as ``user.invited`` and ``invitation.used``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from appliance.accounts import passwords
from appliance.accounts.account_links import (
    INVITE,
    apply_password,
    create_link,
    find_link,
    has_pending_invitation,
    prepare_password,
)
from appliance.accounts.user_changes import insert_user, prepare_user, update_user
from appliance.accounts.users import find_user_by_email, get_user
from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import as_stored
from appliance.errors import Conflict
from appliance.storage.db import database
from appliance.storage.models import AccountLink, User


@dataclass(frozen=True)
class Invitation:
    """An invitation just made: the user, the link's expiry and its secret (to mail or show once)."""

    user: User
    expires_at: dt.datetime
    secret: str
    again: bool  # an earlier unused invitation of this user was replaced


def invite_user(
    email: Any,
    name: Any,
    role: Any,
    *,
    actor: ActorLike | str | None = None,
    address: str | None = None,
    now: dt.datetime | None = None,
) -> Invitation:
    """Add the user ``email`` without a usable password and make their invitation link.

    Raises :class:`ValidationFailed` naming every bad field (email, name,
    role), :class:`Conflict` on ``email`` when the address belongs to a user
    who is not a pending invitee (a disabled pending invitee included: enable
    them first).
    """
    now = as_stored(now)
    # Checked (and the throw-away password hashed) before the write transaction: the hash is slow.
    new = prepare_user(email, name, role, passwords.generate_password())
    existing = find_user_by_email(new.email)
    if existing is not None:
        return _invite_again(existing, new.name, new.role, actor=actor, address=address, now=now)
    with database.atomic():
        user = insert_user(new, actor=actor, address=address)
        link, secret = create_link(user, INVITE, now)
        record_event(
            "user.invited", actor=actor, target=user.email, address=address, details={"role": user.role}, now=now
        )
    return Invitation(user, link.expires_at, secret, again=False)


def _invite_again(
    user: User, name: str, role: str, *, actor: ActorLike | str | None, address: str | None, now: dt.datetime
) -> Invitation:
    taken = Conflict(
        "A user with this email already exists.",
        fields={"email": "This email already has an account; send them a password reset link instead."},
    )
    if not has_pending_invitation(user):
        raise taken
    if not user.active:
        raise Conflict(
            "This invited user is disabled.", fields={"email": "This invited user is disabled; enable them first."}
        )
    with database.atomic():
        changes = {key: value for key, value in (("name", name), ("role", role)) if getattr(user, key) != value}
        if changes:
            user = update_user(user.id, changes, actor=actor, address=address)
        link, secret = create_link(user, INVITE, now)
        record_event(
            "user.invited",
            actor=actor,
            target=user.email,
            address=address,
            details={"role": user.role, "again": True},
            now=now,
        )
    return Invitation(user, link.expires_at, secret, again=True)


def check_invitation(secret: Any, now: dt.datetime | None = None) -> User:
    """The invited user of a live invitation link; raises :class:`LinkNotUsable` saying why it does not work."""
    return get_user(find_link(secret, INVITE, now).user_id)


def accept_invitation(
    secret: Any, password: Any, *, address: str | None = None, now: dt.datetime | None = None
) -> User:
    """Give the invited user the password they chose and spend the link; returns the user (signed in next).

    Raises :class:`LinkNotUsable` for a dead link, :class:`ValidationFailed`
    on ``password`` when the policy refuses it (the link stays usable then).
    """
    now = as_stored(now)
    link, user, password_hash = prepare_password(secret, INVITE, password, now)
    with database.atomic():
        apply_password(link, user, password_hash, now)
        record_event("invitation.used", actor=user, target=user.email, address=address, now=now)
    return get_user(user.id)


def invitation_expiry(user: User) -> dt.datetime | None:
    """When the user's live invitation link expires, or ``None`` when there is none."""
    link = (
        AccountLink.select()
        .where(
            (AccountLink.user == user.id)
            & (AccountLink.kind == INVITE)
            & AccountLink.used_at.is_null()
            & AccountLink.voided_at.is_null()
        )
        .order_by(AccountLink.created_at.desc())
        .first()
    )
    return link.expires_at if link else None
