"""Browser sessions as rows: a random key, idle and absolute time-outs, ended by the changes that must end them."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.accounts import sessions, user_changes, users
from appliance.accounts.tokens import digest_of
from appliance.storage.models import UserSession
from tests.conftest import counting_queries
from tests.fakes import FakeClock

TIMEOUTS = sessions.Timeouts(idle=dt.timedelta(minutes=60), absolute=dt.timedelta(hours=12))


@pytest.fixture
def ann(instance):
    user_changes.create_user("boss@example.com", "Boss", "admin", "a-long-enough-password", actor="test")
    return user_changes.create_user("ann@example.com", "Ann", "editor", "a-long-enough-password", actor="test")


def test_a_session_is_stored_only_as_the_digest_of_its_key(ann):
    key = sessions.start_session(ann, TIMEOUTS, address="10.0.0.1", user_agent="Firefox")
    row = UserSession.get()
    assert key not in (row.digest, row.user_agent) and row.digest == digest_of(key)
    assert (row.address, row.user_agent, row.user_id) == ("10.0.0.1", "Firefox", ann.id)
    assert sessions.authenticate_session(key, TIMEOUTS).user.email == "ann@example.com"
    assert sessions.authenticate_session("another-key", TIMEOUTS) is None


def test_loading_a_session_and_its_user_is_one_query(ann):
    key = sessions.start_session(ann, TIMEOUTS)
    with counting_queries() as queries:
        assert sessions.authenticate_session(key, TIMEOUTS).user.role == "editor"
    assert len(queries) == 1


def test_the_idle_time_out_moves_with_use_written_at_most_once_a_minute(ann):
    clock = FakeClock()
    key = sessions.start_session(ann, TIMEOUTS, now=clock.now())
    clock.advance(seconds=30)
    sessions.authenticate_session(key, TIMEOUTS, now=clock.now())
    assert UserSession.get().last_seen_at == FakeClock().now().replace(tzinfo=None)  # not written yet
    clock.advance(minutes=59)
    assert sessions.authenticate_session(key, TIMEOUTS, now=clock.now()) is not None
    assert UserSession.get().last_seen_at == clock.now().replace(tzinfo=None)
    clock.advance(minutes=59)
    assert sessions.authenticate_session(key, TIMEOUTS, now=clock.now()) is not None
    clock.advance(minutes=61)
    assert sessions.authenticate_session(key, TIMEOUTS, now=clock.now()) is None


def test_the_absolute_time_out_ends_a_busy_session(ann):
    clock = FakeClock()
    key = sessions.start_session(ann, TIMEOUTS, now=clock.now())
    for _ in range(23):
        clock.advance(minutes=30)
        assert sessions.authenticate_session(key, TIMEOUTS, now=clock.now()) is not None
    clock.advance(minutes=30)  # twelve hours after sign-in
    assert sessions.authenticate_session(key, TIMEOUTS, now=clock.now()) is None


def test_signing_out_deletes_the_row(ann):
    key = sessions.start_session(ann, TIMEOUTS)
    other = sessions.start_session(ann, TIMEOUTS)
    assert sessions.end_session(key)
    assert sessions.authenticate_session(key, TIMEOUTS) is None
    assert sessions.authenticate_session(other, TIMEOUTS) is not None


@pytest.mark.parametrize(
    "change",
    [
        lambda uid: user_changes.sign_out_everywhere(uid),
        lambda uid: user_changes.set_password(uid, "another-long-password", actor="test"),
        lambda uid: user_changes.change_password(uid, "a-long-enough-password", "another-long-password"),
        lambda uid: user_changes.update_user(uid, {"role": "viewer"}, actor="test"),
        lambda uid: user_changes.disable_user(uid, actor="test"),
        lambda uid: user_changes.delete_user(uid, actor="test"),
    ],
    ids=["sign-out-everywhere", "reset", "change", "role", "disable", "delete"],
)
def test_changes_that_end_sessions_delete_every_row_of_the_user(ann, change):
    boss = users.find_user_by_email("boss@example.com")
    keys = [sessions.start_session(ann, TIMEOUTS) for _ in range(2)]
    boss_key = sessions.start_session(boss, TIMEOUTS)
    change(ann.id)
    assert all(sessions.authenticate_session(key, TIMEOUTS) is None for key in keys)
    assert UserSession.select().where(UserSession.user == ann.id).count() == 0
    assert sessions.authenticate_session(boss_key, TIMEOUTS) is not None


def test_a_name_change_keeps_the_sessions(ann):
    key = sessions.start_session(ann, TIMEOUTS)
    user_changes.update_user(ann.id, {"name": "Ann B."}, actor="test")
    assert sessions.authenticate_session(key, TIMEOUTS).user.name == "Ann B."


def test_the_clean_up_deletes_only_expired_sessions(ann):
    clock = FakeClock()
    old = sessions.start_session(ann, TIMEOUTS, now=clock.now())
    clock.advance(minutes=30)
    fresh = sessions.start_session(ann, TIMEOUTS, now=clock.now())
    clock.advance(minutes=31)
    assert sessions.delete_expired_sessions(clock.now()) == 1
    assert UserSession.select().where(UserSession.digest == digest_of(old)).count() == 0
    assert sessions.authenticate_session(fresh, TIMEOUTS, now=clock.now()) is not None
