"""A sign-in never leaves its attempt pending, whatever goes wrong (issue 16, item 11): a lone-surrogate
password used to be a 500 that left a pending attempt, and five of them locked any account unaudited."""

from __future__ import annotations

import pytest

from appliance.accounts import passwords
from appliance.accounts.sign_in import sign_in
from appliance.accounts.throttle import ThrottleRules
from appliance.accounts.user_changes import create_user
from appliance.errors import NotAuthenticated
from appliance.storage.models import AuditEvent, SignInFailure
from tests.fakes import FakeClock

RULES = ThrottleRules()
PASSWORD = "a-long-enough-password"


@pytest.fixture
def ann(instance):
    return create_user("ann@example.com", "Ann", "editor", PASSWORD, actor="test")


def test_a_lone_surrogate_password_is_a_wrong_password_audited_and_never_pending(ann):
    clock = FakeClock()
    with pytest.raises(NotAuthenticated):
        sign_in("ann@example.com", "wrong\ud800", address="10.0.0.1", rules=RULES, now=clock.now())
    assert SignInFailure.select().where(SignInFailure.pending == True).count() == 0  # noqa: E712
    failed = AuditEvent.select().where(AuditEvent.action == "sign_in.failed").order_by(AuditEvent.id.desc()).first()
    assert failed is not None and '"wrong_password"' in failed.details
    assert sign_in("ann@example.com", PASSWORD, address="10.0.0.1", rules=RULES, now=clock.now()).id == ann.id


def test_an_unexpected_failure_closes_the_attempt_and_leaves_the_account_usable(ann, monkeypatch):
    clock = FakeClock()

    def broken(password_hash, password):
        raise RuntimeError("the password hasher broke")

    monkeypatch.setattr(passwords, "verify_password", broken)
    for _ in range(RULES.account_failures + 1):
        with pytest.raises(RuntimeError):
            sign_in("ann@example.com", PASSWORD, address="10.0.0.1", rules=RULES, now=clock.now())
    assert SignInFailure.select().count() == 0
    assert AuditEvent.select().where(AuditEvent.action == "sign_in.error").count() == RULES.account_failures + 1
    monkeypatch.undo()
    assert sign_in("ann@example.com", PASSWORD, address="10.0.0.1", rules=RULES, now=clock.now()).id == ann.id


def test_the_password_policy_refuses_a_lone_surrogate():
    assert passwords.policy_problem("long enough but \udc00 broken") is not None
