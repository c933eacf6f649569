"""TOTP two-factor sign-in: setting it up, checking codes once each, recovery codes, turning it off.

A user's secret lives in ``user_totp``, encrypted (AES-GCM) with a key derived
from the instance's ``secret.key``, bound to the user's id; a database copy
alone does not give the codes away. The row is made unconfirmed by
:func:`start_setup` and turned on by :func:`confirm_setup` with a first code.
A code is accepted for the current 30-second step or the one on either side,
and only for a step after the last one accepted (``last_step``), so a code
seen over a shoulder cannot be replayed within its window.

Recovery codes: ten per user, shown once when two-factor is turned on; only a
keyed digest (HMAC-SHA256 with a key derived from ``secret.key`` over the
user's id and the code) is stored, and each works once.

Counting wrong codes towards the lock-out is the caller's part (sign-in:
:func:`appliance.accounts.sign_in.verify_second_factor`); here a code is just
right or not (:func:`consume_code`, inside the caller's transaction).
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import hashlib
import hmac
import io
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.accounts.users import get_user
from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import as_stored
from appliance.errors import Conflict, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import RecoveryCode, User, UserTotp

ISSUER = "Office Appliance"
STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODE_COUNT = 10
# Ten characters of a 32-letter alphabet (no 0/o, 1/l/i): 50 bits, typed as "abcde-fghij".
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10
_CIPHER_VERSION = "v1"

CodeKind = Literal["totp", "recovery_code"]


def _derived(secret_key: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret_key, b"appliance two-factor " + purpose, hashlib.sha256).digest()


def _seal(plain: str, user_id: int, secret_key: bytes) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_derived(secret_key, b"secret")).encrypt(nonce, plain.encode(), f"user:{user_id}".encode())
    return f"{_CIPHER_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def _open(stored: str, user_id: int, secret_key: bytes) -> str | None:
    """The secret of a stored row, or ``None`` when it cannot be read (another secret.key, a damaged row)."""
    version, _, body = stored.partition(".")
    if version != _CIPHER_VERSION:
        return None
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        plain = AESGCM(_derived(secret_key, b"secret")).decrypt(raw[:12], raw[12:], f"user:{user_id}".encode())
    except (InvalidTag, ValueError):
        return None
    return plain.decode()


def _recovery_digest(user_id: int, code: str, secret_key: bytes) -> str:
    return hmac.new(_derived(secret_key, b"recovery"), f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _step_of(now: dt.datetime) -> int:
    return calendar.timegm(as_stored(now).utctimetuple()) // STEP_SECONDS


def normalize_recovery_code(code: str) -> str:
    """A recovery code as stored: lower case, without spaces and dashes."""
    return "".join(ch for ch in code.lower() if ch not in " -\t")


def _new_recovery_code() -> str:
    letters = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    return f"{letters[:5]}-{letters[5:]}"


# --- state -----------------------------------------------------------------------------------


def _confirmed_row(user_id: int) -> UserTotp | None:
    return UserTotp.get_or_none((UserTotp.user == user_id) & UserTotp.confirmed_at.is_null(False))


def totp_enabled(user_id: int) -> bool:
    """Whether the user signs in with a second factor."""
    return _confirmed_row(user_id) is not None


def users_with_totp(user_ids: Iterable[int]) -> set[int]:
    """Which of ``user_ids`` have two-factor on: one query for a page of users."""
    ids = sorted(set(user_ids))
    if not ids:
        return set()
    rows = UserTotp.select(UserTotp.user).where(UserTotp.user.in_(ids) & UserTotp.confirmed_at.is_null(False))
    return {int(row.__data__["user"]) for row in rows}


def recovery_codes_left(user_id: int) -> int:
    """How many unused recovery codes the user has."""
    return RecoveryCode.select().where((RecoveryCode.user == user_id) & RecoveryCode.used_at.is_null()).count()


# --- setting up and turning off ------------------------------------------------------------


@dataclass(frozen=True)
class TotpSetup:
    """A secret being set up: shown (as text and as a QR code of ``otpauth_uri``) until it is confirmed."""

    secret: str
    otpauth_uri: str


def _uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def start_setup(
    user_id: int, secret_key: bytes, *, address: str | None = None, now: dt.datetime | None = None
) -> TotpSetup:
    """Make a new secret for the user (replacing one not yet confirmed); two-factor is not on until
    :func:`confirm_setup`. Raises :class:`Conflict` when two-factor is already on, :class:`NotFound`."""
    now = as_stored(now)
    secret = pyotp.random_base32()
    with database.atomic():
        user = get_user(user_id)
        if _confirmed_row(user.id) is not None:
            raise Conflict("Two-factor sign-in is already on; turn it off first to set up a new app.")
        UserTotp.delete().where(UserTotp.user == user.id).execute()
        UserTotp.create(user=user.id, secret=_seal(secret, user.id, secret_key), created_at=now)
        record_event("totp.setup_started", actor=user, target=user.email, address=address, now=now)
    return TotpSetup(secret, _uri(secret, user.email))


def pending_setup(user_id: int, secret_key: bytes) -> TotpSetup | None:
    """The secret being set up (not yet confirmed), or ``None``."""
    row = UserTotp.get_or_none((UserTotp.user == user_id) & UserTotp.confirmed_at.is_null())
    if row is None:
        return None
    secret = _open(row.secret, user_id, secret_key)
    return None if secret is None else TotpSetup(secret, _uri(secret, get_user(user_id).email))


def qr_svg(text: str) -> str:
    """An SVG image of the QR code of ``text`` (drawn here by segno; no other service sees the secret)."""
    out = io.BytesIO()
    # A standalone SVG document (with its namespace), so a browser draws it as an <img>.
    segno.make(text, error="m").save(out, kind="svg", scale=5, border=4, dark="#000", light="#fff", xmldecl=False)
    return out.getvalue().decode()


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = _step_of(now)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _clean_code(code: object) -> str:
    if not isinstance(code, str) or not code.strip():
        raise ValidationFailed({"code": "Enter the 6-digit code from your authenticator app."})
    return "".join(code.split())[:64]


def confirm_setup(
    user_id: int, code: object, secret_key: bytes, *, address: str | None = None, now: dt.datetime | None = None
) -> list[str]:
    """Turn two-factor on with a first code from the app; returns the ten new recovery codes (shown once).

    Raises :class:`ValidationFailed` on ``code`` (a wrong code, or nothing being set up) and
    :class:`Conflict` when two-factor is already on. Audited ``totp.enabled``.
    """
    now = as_stored(now)
    typed = _clean_code(code)
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    with database.atomic():
        user = get_user(user_id)
        if _confirmed_row(user.id) is not None:
            raise Conflict("Two-factor sign-in is already on.")
        row = UserTotp.get_or_none((UserTotp.user == user.id) & UserTotp.confirmed_at.is_null())
        secret = _open(row.secret, user.id, secret_key) if row is not None else None
        if row is None or secret is None:
            raise ValidationFailed({"code": "Start the set-up first: there is no secret waiting for a code."})
        step = _matching_step(secret, typed, now)
        if step is None:
            raise ValidationFailed({"code": "This code is not right; check the app's clock and try the next code."})
        UserTotp.update(confirmed_at=now, last_step=step).where(UserTotp.id == row.id).execute()
        _store_recovery_codes(user, codes, secret_key, now)
        record_event(
            "totp.enabled", actor=user, target=user.email, address=address, details={"recovery_codes": len(codes)}
        )
    return codes


def _store_recovery_codes(user: User, codes: list[str], secret_key: bytes, now: dt.datetime) -> None:
    RecoveryCode.delete().where(RecoveryCode.user == user.id).execute()
    RecoveryCode.insert_many(
        [
            {
                "user": user.id,
                "digest": _recovery_digest(user.id, normalize_recovery_code(code), secret_key),
                "created_at": now,
            }
            for code in codes
        ]
    ).execute()


def remove_totp(user: User) -> bool:
    """Delete the user's secret and recovery codes (inside the caller's transaction); whether it was on."""
    was_on = _confirmed_row(user.id) is not None
    UserTotp.delete().where(UserTotp.user == user.id).execute()
    RecoveryCode.delete().where(RecoveryCode.user == user.id).execute()
    return was_on


def reset_totp(user_id: object, *, actor: ActorLike | str | None = None, address: str | None = None) -> User:
    """An admin's reset: the user's two-factor is off and their recovery codes gone (they set it up
    again, at once when the policy requires it); returns the user. Audited ``totp.reset``
    (``details.was_on``). Raises :class:`NotFound`."""
    with database.atomic():
        user = get_user(user_id)  # type: ignore[arg-type]
        was_on = remove_totp(user)
        record_event("totp.reset", actor=actor, target=user.email, address=address, details={"was_on": was_on})
    return user


# --- checking a code ------------------------------------------------------------------------


def consume_code(user: User, code: str, secret_key: bytes, now: dt.datetime | None = None) -> CodeKind | None:
    """Accept ``code`` (6 digits, or a recovery code) for ``user`` once; which kind it was, or ``None``
    for a wrong, replayed or used one. Call inside the caller's transaction: the code is used up
    when it commits. Audits ``recovery_code.used``."""
    now = as_stored(now)
    typed = "".join(code.split())[:64]
    row = _confirmed_row(user.id)
    if row is None or not typed:
        return None
    if typed.isdigit():
        secret = _open(row.secret, user.id, secret_key)
        step = _matching_step(secret, typed, now) if secret is not None else None
        if step is None:
            return None
        taken = UserTotp.update(last_step=step).where((UserTotp.id == row.id) & (UserTotp.last_step < step)).execute()
        return "totp" if taken else None
    digest = _recovery_digest(user.id, normalize_recovery_code(typed), secret_key)
    used = (
        RecoveryCode.update(used_at=now)
        .where((RecoveryCode.user == user.id) & (RecoveryCode.digest == digest) & RecoveryCode.used_at.is_null())
        .execute()
    )
    if not used:
        return None
    record_event(
        "recovery_code.used",
        actor=user,
        target=user.email,
        details={"left": recovery_codes_left(user.id)},
        now=now,
    )
    return "recovery_code"


def recovery_codes_text(email: str, codes: list[str]) -> str:
    """The recovery codes as the downloaded text file holds them."""
    lines = [f"{ISSUER}: two-factor recovery codes for {email}", "Each code works once. Keep them safe.", ""]
    return "\n".join([*lines, *codes, ""])
