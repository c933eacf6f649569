"""Emails are compared in one folded form, and mixed-script lookalikes are refused (issue 16, item 12)."""

from __future__ import annotations

import pytest

from appliance.accounts.sign_in import sign_in
from appliance.accounts.throttle import ThrottleRules
from appliance.accounts.user_changes import create_user
from appliance.accounts.users import find_user_by_email
from appliance.errors import Conflict, ValidationFailed
from appliance.storage.models import User

PASSWORD = "a-long-enough-password"
FULL_WIDTH_ALICE = "\uff21\uff4c\uff49\uff43\uff45@example.com"  # what a full-width keyboard mode types
CYRILLIC_A_ALICE = "\u0430lice@example.com"  # the first letter is Cyrillic


@pytest.fixture
def alice(instance):
    return create_user("alice@example.com", "Alice", "editor", PASSWORD, actor="test")


def test_a_full_width_address_is_the_same_account(alice):
    assert find_user_by_email(FULL_WIDTH_ALICE).id == alice.id
    assert sign_in(FULL_WIDTH_ALICE, PASSWORD, address="10.0.0.1", rules=ThrottleRules()).id == alice.id
    with pytest.raises(Conflict):
        create_user(FULL_WIDTH_ALICE, "Another Alice", "viewer", PASSWORD, actor="test")


def test_a_mixed_script_lookalike_of_an_address_is_refused(alice):
    with pytest.raises(ValidationFailed) as refused:
        create_user(CYRILLIC_A_ALICE, "Not Alice", "admin", PASSWORD, actor="test")
    assert "several alphabets" in refused.value.fields["email"]
    assert User.select().count() == 1


def test_an_address_in_one_other_script_is_fine(instance):
    made = create_user("\u0438\u0432\u0430\u043d@example.com", "Ivan", "viewer", PASSWORD, actor="test")
    assert find_user_by_email("\u0418\u0412\u0410\u041d@example.com").id == made.id
