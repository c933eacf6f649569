"""One-time links to an account: invitations (valid 72 hours) and password resets (valid 1 hour).

The shape of the first-run set-up link (:mod:`appliance.accounts.setup_links`)
for one user: a random secret goes out (by mail, or to an admin who passes it
on), only its SHA-256 digest is stored, and it works once. A new link of a kind
voids the user's older unused ones of that kind; spending a link voids all the
user's other links; disabling the user voids every link they have.

:func:`find_link` says plainly why a link does not work (used, replaced or
voided, expired, unknown) through :class:`LinkNotUsable`; the secret holder may
know that much, and nothing here tells whether an email has an account.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from appliance.accounts import passwords
from appliance.accounts.sessions import end_user_sessions
from appliance.accounts.tokens import digest_of
from appliance.accounts.users import get_user
from appliance.clock import as_stored
from appliance.errors import LinkNotUsable
from appliance.storage.models import AccountLink, User

INVITE = "invite"
RESET = "reset"
VALID_FOR = {INVITE: dt.timedelta(hours=72), RESET: dt.timedelta(hours=1)}
# A secret is 32 url-safe characters; anything much longer is not one of ours.
_SECRET_MAX = 200

_WHAT = {INVITE: "invitation link", RESET: "password reset link"}
_AGAIN = {
    INVITE: "Ask an admin to invite you again.",
    RESET: "Ask for a new one from the sign-in page (Forgot your password?).",
}


def new_secret() -> str:
    """A fresh link secret (about 190 bits)."""
    return secrets.token_urlsafe(24)


def create_link(user: User, kind: str, now: dt.datetime | None = None) -> tuple[AccountLink, str]:
    """A new link of ``kind`` for ``user``; returns the row and the secret (shown or mailed once, never stored).

    The user's unused links of the same kind are voided. Call inside a write transaction.
    """
    if kind not in VALID_FOR:
        raise ValueError(f"unknown link kind {kind!r}")
    now = as_stored(now)
    AccountLink.update(voided_at=now).where(
        (AccountLink.user == user.id)
        & (AccountLink.kind == kind)
        & AccountLink.used_at.is_null()
        & AccountLink.voided_at.is_null()
    ).execute()
    secret = new_secret()
    link = AccountLink.create(
        kind=kind, digest=digest_of(secret), user=user.id, created_at=now, expires_at=now + VALID_FOR[kind]
    )
    return link, secret


def find_link(secret: Any, kind: str, now: dt.datetime | None = None) -> AccountLink:
    """The live link of ``kind`` with ``secret``; raises :class:`LinkNotUsable` saying why it is not one."""
    now = as_stored(now)
    what = _WHAT[kind]
    link = None
    if isinstance(secret, str) and 0 < len(secret) <= _SECRET_MAX:
        link = AccountLink.get_or_none((AccountLink.digest == digest_of(secret)) & (AccountLink.kind == kind))
    if link is None:
        raise LinkNotUsable(
            f"This {what} is not valid. Check that you copied all of it. {_AGAIN[kind]}", reason="unknown"
        )
    if link.used_at is not None:
        raise LinkNotUsable(f"This {what} has been used already; it works only once. {_AGAIN[kind]}", reason="used")
    if link.voided_at is not None or not link.user.active:
        raise LinkNotUsable(
            f"This {what} no longer works: a newer link replaced it, or the account was disabled. {_AGAIN[kind]}",
            reason="voided",
        )
    if link.expires_at <= now:
        raise LinkNotUsable(f"This {what} has expired. {_AGAIN[kind]}", reason="expired")
    return link


def spend_link(link: AccountLink, now: dt.datetime | None = None) -> None:
    """Use ``link`` up, and void the user's other live links; call inside the write transaction of the change.

    Raises :class:`LinkNotUsable` when another request spent (or voided) it first.
    """
    now = as_stored(now)
    spent = (
        AccountLink.update(used_at=now)
        .where(
            (AccountLink.id == link.id)
            & AccountLink.used_at.is_null()
            & AccountLink.voided_at.is_null()
            & (AccountLink.expires_at > now)
        )
        .execute()
    )
    if not spent:
        raise LinkNotUsable(f"This {_WHAT[link.kind]} has been used already; it works only once.", reason="used")
    void_user_links(link.user_id, now)


def void_user_links(user_id: int, now: dt.datetime | None = None) -> int:
    """Void every live link of the user (disabled, or another link was spent); returns how many."""
    return int(
        AccountLink.update(voided_at=as_stored(now))
        .where((AccountLink.user == user_id) & AccountLink.used_at.is_null() & AccountLink.voided_at.is_null())
        .execute()
    )


def has_pending_invitation(user: User) -> bool:
    """Whether ``user`` was invited and has never used an invitation nor signed in (may be invited again)."""
    if user.last_sign_in_at is not None:
        return False
    links = AccountLink.select().where((AccountLink.user == user.id) & (AccountLink.kind == INVITE))
    return links.exists() and not links.where(AccountLink.used_at.is_null(False)).exists()


def pending_invitations(user_ids: list[int]) -> set[int]:
    """Which of ``user_ids`` have an invitation not yet used (one query, for a page of users)."""
    if not user_ids:
        return set()
    invited = AccountLink.select(AccountLink.user).where(
        (AccountLink.kind == INVITE) & AccountLink.user.in_(user_ids) & AccountLink.used_at.is_null()
    )
    used = AccountLink.select(AccountLink.user).where(
        (AccountLink.kind == INVITE) & AccountLink.user.in_(user_ids) & AccountLink.used_at.is_null(False)
    )
    return {row.user_id for row in invited} - {row.user_id for row in used}


def prepare_password(secret: Any, kind: str, password: Any, now: dt.datetime) -> tuple[AccountLink, User, str]:
    """Before a link sets a password: the live link of ``kind``, its user and the new password's hash (the
    slow part, done before any write lock). Raises :class:`LinkNotUsable` for a dead link and
    :class:`ValidationFailed` on ``password`` when the policy refuses it (the link stays usable then)."""
    link = find_link(secret, kind, now)
    user = get_user(link.user_id)
    passwords.check_password_policy(password, user.email)
    return link, user, passwords.hash_password(password)


def apply_password(link: AccountLink, user: User, password_hash: str, now: dt.datetime) -> int:
    """Inside the caller's transaction: spend the link, set the password (the sessions' version moves on)
    and end the user's sessions; returns how many ended."""
    spend_link(link, now)
    User.update(
        password_hash=password_hash,
        must_change_password=False,
        last_sign_in_at=now,
        session_version=User.session_version + 1,
    ).where(User.id == user.id).execute()
    return end_user_sessions(user.id)
