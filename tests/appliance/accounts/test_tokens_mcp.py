"""A token's MCP options: checked when it is made (a clear field error, nothing made), shown when listed."""

from __future__ import annotations

import pytest

from appliance.accounts.tokens import create_token, serialize_token
from appliance.collections.definitions import create_collection
from appliance.errors import ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import ApiToken
from tests.conftest import run_cli


@pytest.fixture
def with_collections(instance, personas):
    with database.connection_context():
        create_collection(
            {
                "name": "orders",
                "label": "Orders",
                "fields": [{"name": "t", "type": "text"}],
                "permissions": {"editor": ["view"]},
            },
            personas.admin,
        )
        create_collection(
            {"name": "payroll", "label": "Payroll", "fields": [{"name": "t", "type": "text"}], "permissions": {}},
            personas.admin,
        )
    return personas


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"mcp": True, "mcp_tools": ["whoami", "drop_tables"]}, "mcp_tools"),
        ({"mcp": True, "scope": "read", "mcp_tools": ["create_record"]}, "mcp_tools"),
        ({"mcp": True, "mcp_collections": ["orders", "nothing"]}, "mcp_collections"),
        ({"mcp": True, "mcp_collections": ["payroll"]}, "mcp_collections"),  # the editor may not see it
        ({"mcp_tools": ["whoami"]}, "mcp_tools"),
        ({"mcp": "yes"}, "mcp"),
    ],
)
def test_bad_mcp_options_are_refused_naming_the_field_and_make_nothing(with_collections, options, field):
    with database.connection_context():
        with pytest.raises(ValidationFailed) as caught:
            create_token(with_collections.editor.id, "agent", **options)
        assert field in caught.value.fields
        assert ApiToken.select().count() == 0


def test_mcp_options_are_kept_and_shown(with_collections):
    with database.connection_context():
        token, _ = create_token(
            with_collections.editor.id,
            "agent",
            mcp=True,
            mcp_tools="whoami, search_records",
            mcp_collections=["orders"],
            mcp_approval=True,
        )
        plain, _ = create_token(with_collections.editor.id, "script")
    assert serialize_token(token)["mcp"] == {
        "tools": ["whoami", "search_records"],
        "collections": ["orders"],
        "approval": True,
    }
    assert serialize_token(plain)["mcp"] is None


def test_the_cli_makes_an_mcp_token(with_collections, home):
    done = run_cli(
        "tokens",
        "create",
        with_collections.editor.email,
        "--name",
        "agent",
        "--mcp",
        "--scope",
        "read",
        "--collections",
        "orders",
        "--tools",
        "whoami,search_records",
        "--json",
        home=home,
    )
    assert done.returncode == 0, done.stderr
    assert '"collections": [' in done.stdout and '"orders"' in done.stdout
    bad = run_cli(
        "tokens", "create", with_collections.editor.email, "--name", "agent", "--mcp", "--tools", "nope", home=home
    )
    assert bad.returncode != 0 and "mcp_tools" in bad.stderr
