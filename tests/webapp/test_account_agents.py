"""``/account`` and ``/account/agents``: a signed-in user makes a scoped MCP token for an AI agent and sees its
set-up once (OpenClaw, Claude Desktop, any client)."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest

from appliance.accounts.tokens import authenticate_token, mcp_options
from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.storage.db import database
from appliance.storage.models import ApiToken
from tests.conftest import post_form
from tests.webapp.agent_helpers import NOTES


@pytest.fixture
def notes(personas):
    with database.connection_context():
        create_collection(NOTES, get_user(personas.admin.id))
        create_collection(
            {**NOTES, "name": "secrets", "label": "Secrets", "permissions": {}}, get_user(personas.admin.id)
        )


def secret_in(page: str, element: str) -> str:
    match = re.search(rf'<pre class="setup-snippet token-secret" id="{element}">(.*?)</pre>', page, re.S)
    assert match, f"no {element} on the page"
    return html_lib.unescape(match.group(1))


def test_the_account_page_offers_the_form_with_the_users_collections_only(signed_in, notes):
    page = signed_in("editor").get("/account").get_data(as_text=True)
    assert 'id="agents"' in page and 'action="/account/agents"' in page
    assert 'value="notes"' in page and 'value="secrets"' not in page


def test_a_user_makes_an_mcp_token_with_the_chosen_options_and_sees_the_setup_once(signed_in, notes, personas):
    editor = signed_in("editor")
    form = {
        "name": "OpenClaw",
        "scope": "write",
        "expires_days": "30",
        "collections": ["notes"],
        "tools": ["whoami", "search_records", "create_record"],
        "approval": "yes",
    }
    answer = post_form(editor, "/account/agents", form, token_from="/account")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/account/agents#setup")
    page = editor.get("/account/agents").get_data(as_text=True)
    header = secret_in(page, "setup-header")
    secret = header.removeprefix("Authorization: Bearer ")
    assert secret_in(page, "setup-url") == "http://localhost/mcp"
    assert secret_in(page, "setup-openclaw") == (
        "openclaw mcp add office --transport streamable-http --url http://localhost/mcp "
        f'--header "Authorization: Bearer {secret}"'
    )
    desktop = json.loads(secret_in(page, "setup-claude"))["mcpServers"]["office"]
    assert desktop["env"] == {"APPLIANCE_TOKEN": secret} and desktop["args"][:2] == ["mcp", "--home"]
    with database.connection_context():
        token = authenticate_token(secret)
        assert token is not None and token.user.id == personas.editor.id and token.mcp and token.scope == "write"
        assert mcp_options(token) == {
            "tools": ["whoami", "search_records", "create_record"],
            "collections": ["notes"],
            "approval": True,
        }
    # Shown once: a refresh shows the form, not the secret.
    assert secret not in editor.get("/account/agents").get_data(as_text=True)


def test_a_refused_form_names_the_field_and_makes_no_token(signed_in, notes):
    editor = signed_in("editor")
    with database.connection_context():
        before = ApiToken.select().count()
    for form, field in (
        ({"name": "x", "scope": "read", "expires_days": "30", "tools": ["delete_record"]}, "mcp_tools"),
        ({"name": "x", "scope": "write", "expires_days": "30", "collections": ["secrets"]}, "mcp_collections"),
        ({"name": "", "scope": "read", "expires_days": "30"}, "name"),
        ({"name": "x", "scope": "read", "expires_days": "never"}, "expires_days"),
    ):
        answer = post_form(editor, "/account/agents", form, token_from="/account/agents")
        assert answer.status_code == 422, field
        page = answer.get_data(as_text=True)
        assert "is-invalid" in page or "text-danger" in page
        assert 'value="x"' in page or field == "name"  # what was typed stays
    with database.connection_context():
        assert ApiToken.select().count() == before


def test_the_form_needs_sign_in_and_the_csrf_token(app, signed_in, notes):
    assert app.test_client().get("/account/agents").status_code == 302
    answer = signed_in("editor").post("/account/agents", data={"name": "x", "scope": "read", "expires_days": "3"})
    assert answer.status_code == 400
