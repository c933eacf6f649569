"""``POST /api/users/<id>/sign-out-everywhere``: an admin ends another user's sessions (the console uses it)."""

from __future__ import annotations

from appliance.accounts.users import get_user
from appliance.audit import list_events
from appliance.storage.db import database
from tests.conftest import browser_sign_in


def test_an_admin_signs_a_user_out_everywhere_and_the_old_session_is_refused(live_server, personas, api_token_for):
    session, _csrf = browser_sign_in(live_server.url, personas.viewer.email, personas.viewer.password)
    assert session.get(live_server.url + "api/me", timeout=10).status_code == 200
    with database.connection_context():
        before = get_user(personas.viewer.id).session_version

    editor = {"Authorization": f"Bearer {api_token_for(personas.editor.email)}"}
    path = f"api/users/{personas.viewer.id}/sign-out-everywhere"
    refused = live_server.request("POST", path, headers=editor, json={})
    assert refused.status_code == 403
    assert session.get(live_server.url + "api/me", timeout=10).status_code == 200  # the refusal changed nothing

    admin = {"Authorization": f"Bearer {api_token_for(personas.admin.email)}"}
    answer = live_server.request("POST", path, headers=admin, json={})
    assert answer.status_code == 204 and answer.content == b""
    assert session.get(live_server.url + "api/me", timeout=10).status_code == 401
    with database.connection_context():
        assert get_user(personas.viewer.id).session_version == before + 1
        events = list(list_events(action="user.signed_out_everywhere", target=personas.viewer.email))
    assert [event.actor for event in events] == [personas.admin.email]


def test_signing_out_an_unknown_user_or_with_a_read_token_is_refused(live_server, personas, api_token_for):
    admin = {"Authorization": f"Bearer {api_token_for(personas.admin.email)}"}
    assert live_server.request("POST", "api/users/999999/sign-out-everywhere", headers=admin).status_code == 404
    reader = {"Authorization": f"Bearer {api_token_for(personas.admin.email, scope='read')}"}
    path = f"api/users/{personas.viewer.id}/sign-out-everywhere"
    assert live_server.request("POST", path, headers=reader).status_code == 403
    assert live_server.request("POST", path).status_code == 401
