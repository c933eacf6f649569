"""Password hashing (argon2id) and the password policy.

The hasher's parameters come from the ``argon2_*`` settings through
:func:`configure_hasher`, called once by each process that signs people in
(the web app, the CLI). A stored hash made with other parameters still
verifies, and :func:`needs_rehash` says it should be replaced at the next
successful sign-in.
"""

from __future__ import annotations

import functools
import secrets
from importlib import resources

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from appliance.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 1024  # a hash of a megabyte of text is a cheap denial of service

_hasher = argon2.PasswordHasher(type=argon2.Type.ID)


_DUMMY_PASSWORD = "not a real password, only spends the time of one verification"


def configure_hasher(time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Use these argon2id parameters for new hashes from now on (process-wide).

    The throw-away hash of :func:`spend_verify_time` is made here, at start,
    so that the first unknown email a worker sees costs one verification like
    every other, not a hash and a verification.
    """
    global _hasher, _dummy_hash
    hasher = argon2.PasswordHasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=argon2.Type.ID
    )
    _dummy_hash = hasher.hash(_DUMMY_PASSWORD)
    _hasher = hasher


def configure_from_settings(settings: object) -> None:
    """:func:`configure_hasher` from an instance's ``argon2_*`` settings."""
    configure_hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)  # type: ignore[attr-defined]


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` with the current parameters (salted, self-describing)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; a malformed hash is simply no match."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    except UnicodeEncodeError:  # a lone surrogate: no stored password can hold one, so it is simply wrong
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether ``password_hash`` was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


_dummy_hash: str | None = None


def spend_verify_time(password: str) -> None:
    """Verify ``password`` against a throw-away hash, so that an unknown email costs what a known one does."""
    global _dummy_hash
    if _dummy_hash is None:  # only in a process that never called configure_hasher
        _dummy_hash = _hasher.hash(_DUMMY_PASSWORD)
    verify_password(_dummy_hash, password)


def dummy_hash() -> str | None:
    """The throw-away hash :func:`spend_verify_time` verifies against (``None`` before :func:`configure_hasher`)."""
    return _dummy_hash


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower case."""
    text = resources.files("appliance.accounts").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def policy_problem(password: str, email: str | None = None) -> str | None:
    """The first policy rule ``password`` breaks, as a sentence for the person; ``None`` when it passes.

    Rules: at least 10 characters (at most 1024), not the email address (nor
    its part before the @), not in the list of common passwords.
    """
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if any("\ud800" <= ch <= "\udfff" for ch in password):
        return "Use only characters that can be typed (this text has a broken character)."
    lowered = password.strip().lower()
    if email:
        address = email.strip().lower()
        if lowered in (address, address.partition("@")[0]):
            return "Do not use your email address as your password."
    if lowered in common_passwords():
        return "This password is too common; choose one that is harder to guess."
    return None


def check_password_policy(password: str, email: str | None = None, field: str = "password") -> None:
    """Raise :class:`ValidationFailed` on ``field`` naming the broken rule, or return quietly."""
    problem = policy_problem(password, email)
    if problem:
        raise ValidationFailed({field: problem})


# Letters and digits that cannot be mistaken for one another when read out or copied by hand.
_GENERATED_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def generate_password(groups: int = 4, size: int = 4) -> str:
    """A random password an admin can pass on by hand: ``"k7pm-3xqa-9fth-w2nc"`` (about 79 bits).

    It passes the policy (16 letters and digits plus hyphens, never a common password).
    """
    return "-".join("".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(size)) for _ in range(groups))
