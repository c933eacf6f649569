"""Signing in: one answer for every failure, throttling and lock-out, audit events."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.accounts.sign_in import sign_in
from appliance.accounts.throttle import ThrottleRules, fail_attempt, prune_throttle, start_attempt
from appliance.accounts.user_changes import create_user
from appliance.accounts.users import get_user
from appliance.errors import NotAuthenticated, Throttled
from appliance.storage.models import AuditEvent, SignInFailure
from tests.fakes import FakeClock

RULES = ThrottleRules()  # 5 failures in 15 minutes lock for 15 minutes; 20 per address


@pytest.fixture
def ann(instance):
    return create_user("ann@example.com", "Ann", "editor", "a-long-enough-password", actor="test")


def attempt(email, password, clock, address="10.0.0.1"):
    return sign_in(email, password, address=address, rules=RULES, now=clock.now())


def failure_message(email, password, clock, address="10.0.0.1"):
    with pytest.raises(NotAuthenticated) as caught:
        attempt(email, password, clock, address)
    return caught.value.to_dict()


def test_a_wrong_password_an_unknown_email_and_a_disabled_user_get_the_same_answer(ann):
    clock = FakeClock()
    create_user("boss@example.com", "Boss", "admin", "a-long-enough-password", actor="test")
    from appliance.accounts.user_changes import disable_user

    carl = create_user("carl@example.com", "Carl", "viewer", "a-long-enough-password", actor="test")
    disable_user(carl.id, actor="test")
    answers = [
        failure_message("ann@example.com", "wrong-password-typed", clock),
        failure_message("nobody@example.com", "wrong-password-typed", clock),
        failure_message("carl@example.com", "a-long-enough-password", clock),
    ]
    assert answers[0] == answers[1] == answers[2]


def test_a_success_records_the_time_and_an_audit_event(ann):
    clock = FakeClock()
    user = attempt("ANN@example.com", "a-long-enough-password", clock)
    assert get_user(user.id).last_sign_in_at == clock.now().replace(tzinfo=None)
    event = AuditEvent.get(AuditEvent.action == "sign_in.success")
    assert (event.actor, event.target, event.address) == ("ann@example.com", "ann@example.com", "10.0.0.1")


def test_five_failures_in_fifteen_minutes_lock_the_account_for_fifteen_minutes(ann):
    clock = FakeClock()
    for _ in range(5):
        failure_message("ann@example.com", "wrong-password-typed", clock)
        clock.advance(minutes=2)
    locked_at = clock.now() - dt.timedelta(minutes=2)  # the fifth failure started the lock
    # Locked: even the right password is refused, without being checked.
    with pytest.raises(Throttled) as caught:
        attempt("ann@example.com", "a-long-enough-password", clock)
    assert caught.value.status == 429
    assert 0 < caught.value.extra["retry_after"] <= 15 * 60
    assert AuditEvent.select().where(AuditEvent.action == "sign_in.locked").count() == 1
    for still_locked in (dt.timedelta(minutes=14), dt.timedelta(minutes=14, seconds=59)):
        with pytest.raises(Throttled):
            sign_in(
                "ann@example.com",
                "a-long-enough-password",
                address="10.0.0.1",
                rules=RULES,
                now=locked_at + still_locked,
            )
    lifted = sign_in(
        "ann@example.com",
        "a-long-enough-password",
        address="10.0.0.1",
        rules=RULES,
        now=locked_at + dt.timedelta(minutes=15),
    )
    assert lifted.email == "ann@example.com"


def test_a_lock_lifts_by_sixteen_minutes_for_a_wrong_password_too(ann):
    clock = FakeClock()
    for _ in range(5):
        failure_message("ann@example.com", "wrong-password-typed", clock)
    clock.advance(minutes=14)
    with pytest.raises(Throttled):
        attempt("ann@example.com", "wrong-password-typed", clock)
    clock.advance(minutes=2)
    failure_message("ann@example.com", "wrong-password-typed", clock)  # checked again: a plain failure


def test_attempts_still_being_checked_count_against_the_limit(ann):
    """Five attempts in flight (counted before their passwords are checked) leave no room for a sixth."""
    clock = FakeClock()
    in_flight = [start_attempt("ann@example.com", "10.0.0.1", RULES, clock.now()) for _ in range(5)]
    with pytest.raises(Throttled) as caught:
        attempt("ann@example.com", "a-long-enough-password", clock)
    assert caught.value.extra["reason"] == "account" and caught.value.extra["retry_after"] > 0
    assert (
        AuditEvent.get(AuditEvent.action == "sign_in.failed").details == '{"reason": "account_locked", "via": "page"}'
    )
    # When they all fail, the fifth failure locks the account.
    locks = [fail_attempt(one, RULES, clock.now()) for one in in_flight]
    assert [bool(lock) for lock in locks] == [False] * 4 + [True]
    with pytest.raises(Throttled):
        attempt("ann@example.com", "a-long-enough-password", clock)


def test_a_success_leaves_other_attempts_in_flight_counted(ann):
    clock = FakeClock()
    in_flight = [start_attempt("ann@example.com", "10.0.0.1", RULES, clock.now()) for _ in range(3)]
    assert attempt("ann@example.com", "a-long-enough-password", clock)
    assert SignInFailure.select().where(SignInFailure.pending == True).count() == 6  # noqa: E712 (3 account, 3 address)
    for one in in_flight:
        fail_attempt(one, RULES, clock.now())
    assert SignInFailure.select().where(SignInFailure.pending == True).count() == 0  # noqa: E712


def test_failures_spread_wider_than_the_window_do_not_lock(ann):
    clock = FakeClock()
    for _ in range(8):
        failure_message("ann@example.com", "wrong-password-typed", clock)
        clock.advance(minutes=4)
    assert attempt("ann@example.com", "a-long-enough-password", clock).email == "ann@example.com"


def test_a_success_forgets_the_account_failures(ann):
    clock = FakeClock()
    for _ in range(4):
        failure_message("ann@example.com", "wrong-password-typed", clock)
    attempt("ann@example.com", "a-long-enough-password", clock)
    for _ in range(4):
        failure_message("ann@example.com", "wrong-password-typed", clock)
    assert attempt("ann@example.com", "a-long-enough-password", clock)


def test_an_unknown_email_is_locked_like_a_real_one(instance):
    clock = FakeClock()
    for _ in range(5):
        failure_message("ghost@example.com", "wrong-password-typed", clock)
    with pytest.raises(Throttled):
        attempt("ghost@example.com", "wrong-password-typed", clock)


def test_many_failures_from_one_address_block_it_for_every_account(ann):
    clock = FakeClock()
    for i in range(20):
        failure_message(f"guess{i}@example.com", "wrong-password-typed", clock, address="10.9.9.9")
    with pytest.raises(Throttled) as caught:
        attempt("ann@example.com", "a-long-enough-password", clock, address="10.9.9.9")
    assert caught.value.extra["reason"] == "address"
    assert attempt("ann@example.com", "a-long-enough-password", clock, address="10.0.0.2")


def test_every_failure_and_refusal_is_audited(ann):
    clock = FakeClock()
    for _ in range(6):
        with pytest.raises((NotAuthenticated, Throttled)):
            attempt("ann@example.com", "wrong-password-typed", clock)
    failed = AuditEvent.select().where(AuditEvent.action == "sign_in.failed").count()
    assert failed == 6


def test_pruning_drops_old_failures_and_ended_locks(ann):
    clock = FakeClock()
    for _ in range(5):
        failure_message("ann@example.com", "wrong-password-typed", clock)
    failure_message("bob@example.com", "wrong-password-typed", clock)
    clock.advance(minutes=16)
    assert prune_throttle(RULES, now=clock.now()) >= 2


def test_a_missing_email_or_password_is_a_field_error_not_a_failure(ann):
    clock = FakeClock()
    from appliance.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        attempt("  ", None, clock)
    assert set(caught.value.fields) == {"email", "password"}
    assert AuditEvent.select().where(AuditEvent.action.startswith("sign_in.")).count() == 0
