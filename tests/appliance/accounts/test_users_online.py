"""Users online: distinct active users with a live browser session seen in the last few minutes."""

from __future__ import annotations

import datetime as dt

from appliance.accounts import sessions, users
from tests.fakes import FakeClock

TIMEOUTS = sessions.Timeouts(idle=dt.timedelta(minutes=60), absolute=dt.timedelta(hours=12))


def test_users_online_counts_each_person_once_and_only_while_recently_seen(instance, personas, api_token_for):
    clock = FakeClock()
    admin = users.get_user(personas.admin.id)
    editor = users.get_user(personas.editor.id)
    viewer = users.get_user(personas.viewer.id)
    assert sessions.count_users_online(clock.now()) == 0

    sessions.start_session(admin, TIMEOUTS, now=clock.now())
    sessions.start_session(admin, TIMEOUTS, now=clock.now())  # a second browser of the same person
    sessions.start_session(editor, TIMEOUTS, now=clock.now() - dt.timedelta(minutes=20))  # idle for 20 min
    viewer_key = sessions.start_session(viewer, TIMEOUTS, now=clock.now() - dt.timedelta(minutes=3))
    api_token_for(personas.editor.email)  # a token is not a person at a screen
    assert sessions.count_users_online(clock.now()) == 2
    assert sessions.count_users_online(clock.now(), window_minutes=30) == 3

    sessions.end_session(viewer_key)  # signed out
    assert sessions.count_users_online(clock.now()) == 1

    clock.advance(hours=2)  # every session has expired (idle time-out)
    assert sessions.count_users_online(clock.now(), window_minutes=24 * 60) == 0
