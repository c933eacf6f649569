"""The password policy, the shipped common-password list, and re-hashing when parameters change."""

from __future__ import annotations

import pytest

from appliance.accounts import passwords
from appliance.accounts.sign_in import sign_in
from appliance.accounts.throttle import ThrottleRules
from appliance.accounts.user_changes import create_user
from appliance.accounts.users import get_user


def test_the_common_password_list_is_shipped_and_large():
    common = passwords.common_passwords()
    assert len(common) > 3000
    assert {"password123", "qwertyuiop", "iloveyou12", "1q2w3e4r5t"} <= common


@pytest.mark.parametrize(
    "password, problem",
    [
        ("short", "Use at least 10 characters."),
        ("x" * 1025, "Use at most 1024 characters."),
        ("Sam@Example.com", "Do not use your email address as your password."),
        ("Password123", "This password is too common; choose one that is harder to guess."),
        ("correct horse battery", None),
    ],
)
def test_the_policy_says_which_rule_failed(password, problem):
    assert passwords.policy_problem(password, "sam@example.com") == problem


def test_hashes_are_argon2id_and_verify():
    digest = passwords.hash_password("a-long-enough-password")
    assert digest.startswith("$argon2id$")
    assert passwords.verify_password(digest, "a-long-enough-password")
    assert not passwords.verify_password(digest, "another-password")
    assert not passwords.verify_password("not a hash", "anything")


def test_a_sign_in_rehashes_when_the_parameters_changed(instance):
    passwords.configure_hasher(1, 8192, 1)
    user = create_user("ann@example.com", "Ann", "editor", "a-long-enough-password", actor="test")
    assert "m=8192,t=1,p=1" in user.password_hash
    try:
        passwords.configure_hasher(2, 9216, 1)
        sign_in("ann@example.com", "a-long-enough-password", address="127.0.0.1", rules=ThrottleRules())
        rehashed = get_user(user.id).password_hash
        assert "m=9216,t=2,p=1" in rehashed
        assert passwords.verify_password(rehashed, "a-long-enough-password")
    finally:
        passwords.configure_from_settings(instance.settings)


def test_the_throw_away_hash_for_unknown_emails_is_made_when_the_hasher_is_configured(instance):
    """Made at start, so the first unknown email a worker sees costs one verification, not a hash too."""
    try:
        passwords.configure_hasher(2, 9216, 1)
        dummy = passwords.dummy_hash()
        assert dummy is not None and "m=9216,t=2,p=1" in dummy
        passwords.spend_verify_time("any-password-typed")
        assert passwords.dummy_hash() == dummy  # used, not made again
    finally:
        passwords.configure_from_settings(instance.settings)
