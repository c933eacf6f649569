"""``/api/mcp/pending`` and ``/api/mcp/tokens``: the console (control token) and admins decide AI agents' held
writes and make MCP tokens with copy-ready set-up; nobody else can."""

from __future__ import annotations

import json

import pytest

from appliance.accounts.tokens import authenticate_token
from appliance.audit import list_events
from appliance.storage.db import database
from appliance.storage.models import ApiToken
from tests.conftest import ADMIN, DISABLED, EDITOR, OUTSIDER, VIEWER
from tests.webapp.agent_helpers import CANARY, count_notes, hold_two


@pytest.fixture
def held(personas):
    return hold_two(personas)


# Persona, method, path, expected status (the API: a token each; the console's control token too).
API = [
    (ADMIN, "GET", "/api/mcp/pending", 200),
    (EDITOR, "GET", "/api/mcp/pending", 403),
    (VIEWER, "GET", "/api/mcp/pending", 403),
    (DISABLED, "GET", "/api/mcp/pending", 401),
    (OUTSIDER, "GET", "/api/mcp/pending", 401),
    (EDITOR, "POST", "/api/mcp/pending/{id}/approve", 403),
    (VIEWER, "POST", "/api/mcp/pending/{id}/reject", 403),
    (DISABLED, "POST", "/api/mcp/pending/{id}/approve", 401),
    (OUTSIDER, "POST", "/api/mcp/pending/{id}/approve", 401),
]


@pytest.mark.parametrize(("who", "method", "path", "status"), API)
def test_the_api_is_for_admins_only(client, headers, held, who, method, path, status):
    answer = client.open(path.format(id=held["ids"][0]), method=method, headers=headers[who])
    assert answer.status_code == status
    if status != 200:
        assert set(answer.get_json()["error"]) >= {"code", "message"}
    assert count_notes() == 0


def test_the_api_lists_approves_and_rejects(client, headers, held):
    admin = headers[ADMIN]
    listing = client.get("/api/mcp/pending?status=pending", headers=admin).get_json()
    assert listing["waiting"] == 2 and [i["id"] for i in listing["items"]] == held["ids"][::-1]
    assert listing["items"][1]["arguments"] == {"collection": "notes", "values": {"title": CANARY}}
    applied = client.post(f"/api/mcp/pending/{held['ids'][0]}/approve", headers=admin)
    assert applied.status_code == 200 and applied.get_json()["status"] == "applied"
    assert applied.get_json()["result"]["record"]["title"] == CANARY
    again = client.post(f"/api/mcp/pending/{held['ids'][0]}/reject", headers=admin)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    rejected = client.post(f"/api/mcp/pending/{held['ids'][1]}/reject", headers=admin)
    assert rejected.get_json()["status"] == "rejected"
    assert client.post("/api/mcp/pending/9999/approve", headers=admin).status_code == 404
    assert client.get("/api/mcp/pending?status=nonsense", headers=admin).status_code == 400
    assert client.get("/api/mcp/pending?colour=red", headers=admin).status_code == 400
    assert count_notes() == 1


def test_the_control_token_decides_as_the_console(client, instance, held):
    instance.paths.control_token.write_text("the-control-token")
    control = {"Authorization": "Bearer the-control-token"}
    assert client.get("/api/mcp/pending", headers=control).get_json()["waiting"] == 2
    answer = client.post(f"/api/mcp/pending/{held['ids'][1]}/approve", headers=control).get_json()
    assert answer["status"] == "applied" and answer["decided_by"] == "control"
    assert count_notes() == 1


def test_the_api_makes_an_mcp_token_for_a_user_with_the_chosen_options(client, headers, held, personas):
    body = {
        "user": personas.editor.email,
        "name": "OpenClaw",
        "scope": "write",
        "mcp_collections": ["notes"],
        "mcp_tools": ["whoami", "search_records", "create_record"],
        "mcp_approval": True,
    }
    answer = client.post("/api/mcp/tokens", json=body, headers=headers[ADMIN])
    assert answer.status_code == 201
    made = answer.get_json()
    assert made["user"] == personas.editor.email and made["scope"] == "write"
    assert made["mcp"] == {
        "tools": ["whoami", "search_records", "create_record"],
        "collections": ["notes"],
        "approval": True,
    }
    setup = made["setup"]
    assert setup["url"] == "http://localhost/mcp"
    assert setup["openclaw"] == (
        "openclaw mcp add office --transport streamable-http --url http://localhost/mcp "
        f'--header "Authorization: Bearer {made["token"]}"'
    )
    desktop = json.loads(setup["claude_desktop"])["mcpServers"]["office"]
    assert desktop["args"][-3:-1] == ["mcp", "--home"] and desktop["env"] == {"APPLIANCE_TOKEN": made["token"]}
    with database.connection_context():
        token = authenticate_token(made["token"])
        assert token is not None and token.mcp and token.mcp_approval
        assert next(e.target for e in list_events(action="token.created")) == f"token:{made['id']}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "user"),
        ({"user": "nobody@example.com"}, "user"),
        ({"user": "dave@example.com"}, "user"),
        ({"user": "bob@example.com", "mcp_tools": ["format_disk"]}, "mcp_tools"),
        ({"user": "bob@example.com", "scope": "read", "mcp_tools": ["delete_record"]}, "mcp_tools"),
        ({"user": "bob@example.com", "mcp_collections": ["secrets"]}, "mcp_collections"),
        ({"user": "bob@example.com", "expires_days": 0}, "expires_days"),
    ],
)
def test_a_bad_token_request_names_the_field_and_makes_nothing(client, headers, held, body, field):
    with database.connection_context():
        before = ApiToken.select().count()
    answer = client.post("/api/mcp/tokens", json=body, headers=headers[ADMIN])
    assert answer.status_code == 422 and field in answer.get_json()["error"]["fields"]
    with database.connection_context():
        assert ApiToken.select().count() == before


@pytest.mark.parametrize("who", [EDITOR, VIEWER, DISABLED, OUTSIDER])
def test_only_admins_make_tokens_for_others(client, headers, held, who):
    answer = client.post("/api/mcp/tokens", json={"user": "alice@example.com"}, headers=headers[who])
    assert answer.status_code in (401, 403)
