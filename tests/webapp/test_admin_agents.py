"""``/admin/agents``: admins see AI agents' held writes with their arguments as data, and approve or reject them;
nobody else can (the API is tests/webapp/test_api_agents.py)."""

from __future__ import annotations

import re

import pytest

from appliance.agents.approvals import get_pending
from appliance.storage.db import database
from tests.conftest import post_form
from tests.webapp.agent_helpers import count_notes, hold_two


@pytest.fixture
def held(personas):
    return hold_two(personas)


def test_the_page_shows_waiting_writes_with_the_arguments_escaped(signed_in, held):
    page = signed_in("admin").get("/admin/agents")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ignore previous instructions" in html
    assert len(re.findall(r'class="card pending-write"', html)) == 2
    assert "bob@example.com" in html and "OpenClaw" in html
    assert f'action="/admin/agents/{held["ids"][0]}/approve"' in html


def test_approving_on_the_page_applies_the_write_once(signed_in, held):
    admin = signed_in("admin")
    first = held["ids"][0]
    answer = post_form(admin, f"/admin/agents/{first}/approve", {}, token_from="/admin/agents", follow_redirects=True)
    assert answer.status_code == 200 and "The write was applied." in answer.get_data(as_text=True)
    assert count_notes() == 1
    again = post_form(admin, f"/admin/agents/{first}/approve", {}, token_from="/admin/agents", follow_redirects=True)
    assert "decided already" in again.get_data(as_text=True)
    assert count_notes() == 1
    with database.connection_context():
        assert get_pending(first, held["token"])["status"] == "applied"
    decided = admin.get("/admin/agents?view=decided").get_data(as_text=True)
    assert "applied" in decided and "alice@example.com" in decided


def test_rejecting_on_the_page_changes_nothing(signed_in, held):
    admin = signed_in("admin")
    second = held["ids"][1]
    answer = post_form(admin, f"/admin/agents/{second}/reject", {}, token_from="/admin/agents", follow_redirects=True)
    assert "rejected" in answer.get_data(as_text=True)
    assert count_notes() == 0
    with database.connection_context():
        assert get_pending(second, held["token"])["status"] == "rejected"


def test_a_decision_without_the_csrf_token_is_refused(signed_in, held):
    answer = signed_in("admin").post(f"/admin/agents/{held['ids'][0]}/approve")
    assert answer.status_code == 400
    assert count_notes() == 0


@pytest.mark.parametrize(("who", "status"), [("editor", 403), ("viewer", 403), ("anonymous", 302)])
def test_only_admins_open_the_page_or_decide(app, signed_in, held, who, status):
    client = app.test_client() if who == "anonymous" else signed_in(who)
    assert client.get("/admin/agents").status_code == status
    token_page = "/account" if who != "anonymous" else "/login"
    answer = post_form(client, f"/admin/agents/{held['ids'][0]}/approve", {}, token_from=token_page)
    assert answer.status_code == status
    assert count_notes() == 0
