"""``/mcp`` on a real server (two Waitress workers on a loopback port), with the official SDK's client in both
protocol eras, and the refusals before MCP starts in the API's error shape; ``appliance mcp`` over stdio."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
import requests
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from appliance.accounts.tokens import MCP_WRITE_TOOLS, create_token
from appliance.accounts.users import get_user_by_email
from appliance.storage.db import database
from appliance.storage.models import AuditEvent
from tests.async_run import run_async
from tests.conftest import APPLIANCE, REPO, Personas, clean_env

NOTES = {
    "name": "notes",
    "label": "Notes",
    "fields": [{"name": "title", "type": "text", "required": True}],
    "permissions": {"editor": ["view", "create", "update", "delete"], "viewer": ["view"]},
}


def _token(email: str, **options: Any) -> str:
    with database.connection_context():
        _t, secret = create_token(get_user_by_email(email).id, "agent", actor="test", **options)
    return secret


@pytest.fixture
def mcp_server(live_server, personas: Personas, api_token_for):
    admin = api_token_for(personas.admin.email)
    answer = live_server.request("POST", "/api/collections", json=NOTES, headers={"Authorization": f"Bearer {admin}"})
    assert answer.status_code == 201, answer.text
    return live_server


async def _session(url: str, secret: str, mode: str, work):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, client_info=Implementation(name="test-agent", version="1")) as client:
            return await work(client)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28", "auto"])
def test_both_protocol_eras_list_tools_and_write_through_a_real_server(mcp_server, personas, mode):
    secret = _token(personas.editor.email, mcp=True)

    async def work(client: Client):
        tools = await client.list_tools()
        made = await client.call_tool("create_record", {"collection": "notes", "values": {"title": f"From {mode}"}})
        found = await client.call_tool("search_records", {"collection": "notes"})
        return client.protocol_version, tools, made, found

    version, tools, made, found = run_async(_session(mcp_server.url + "mcp", secret, mode, work))
    assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert {"create_record", "delete_record"} <= {t.name for t in tools.tools}
    assert not made.is_error and made.structured_content["record"]["title"] == f"From {mode}"
    assert found.structured_content["total_items"] == 1
    with database.connection_context():
        event = AuditEvent.select().where(AuditEvent.action == "mcp.create_record").get()
    details = json.loads(event.details)
    assert details["via"] == "mcp" and event.actor == personas.editor.email
    if mode != "legacy":  # a stateless legacy request carries no clientInfo after initialize
        assert details["client"] == "test-agent"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_a_read_token_over_http_sees_no_write_tool_and_cannot_write(mcp_server, personas, mode):
    secret = _token(personas.editor.email, mcp=True, scope="read")

    async def work(client: Client):
        tools = await client.list_tools()
        refused = await client.call_tool("create_record", {"collection": "notes", "values": {"title": "x"}})
        return tools, refused

    tools, refused = run_async(_session(mcp_server.url + "mcp", secret, mode, work))
    assert not {t.name for t in tools.tools} & set(MCP_WRITE_TOOLS)
    assert refused.is_error and refused.structured_content["error"]["code"] == "permission_denied"


def _post(server, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
    body = kwargs.pop("data", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
    base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    return requests.post(server.url + "mcp", data=body, headers={**base, **(headers or {})}, timeout=10, **kwargs)


def test_the_endpoint_refuses_before_mcp_in_the_api_error_shape(mcp_server, personas, api_token_for):
    secret = _token(personas.editor.email, mcp=True)
    plain = api_token_for(personas.editor.email)
    cases = [
        ({}, 401, "not_authenticated"),
        ({"Authorization": "Bearer oat_not-a-real-token"}, 401, "not_authenticated"),
        ({"Authorization": f"Bearer {plain}"}, 403, "permission_denied"),
        ({"Authorization": f"Bearer {secret}", "Origin": "http://evil.example"}, 403, "permission_denied"),
        ({"Authorization": f"Bearer {secret}", "Host": "evil.example"}, 403, "permission_denied"),
    ]
    for headers, status, code in cases:
        answer = _post(mcp_server, headers)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), headers
    too_big = _post(mcp_server, {"Authorization": f"Bearer {secret}"}, data=b"x" * (1024 * 1024 + 1))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"
    same_origin = _post(mcp_server, {"Authorization": f"Bearer {secret}", "Origin": mcp_server.url.rstrip("/")})
    assert same_origin.status_code == 200


def test_appliance_mcp_relays_stdio_to_the_running_server(mcp_server, personas):
    secret = _token(personas.editor.email, mcp=True, mcp_tools=["whoami", "search_records", "create_record"])
    params = StdioServerParameters(
        command=APPLIANCE[0],
        args=[*APPLIANCE[1:], "mcp", "--home", str(mcp_server.home)],
        env=clean_env(APPLIANCE_TOKEN=secret),
        cwd=str(REPO),
    )

    async def work(client: Client):
        tools = await client.list_tools()
        made = await client.call_tool("create_record", {"collection": "notes", "values": {"title": "Over stdio"}})
        refused = await client.call_tool("delete_record", {"collection": "notes", "id": 1})
        return tools, made, refused

    async def run():
        async with Client(params, mode="legacy") as client:
            return await work(client)

    tools, made, refused = run_async(run())
    assert [t.name for t in tools.tools] == ["whoami", "search_records", "create_record"]
    assert made.structured_content["record"]["title"] == "Over stdio"
    assert refused.is_error and refused.structured_content["error"]["code"] == "permission_denied"
    with database.connection_context():
        event = AuditEvent.select().where(AuditEvent.action == "mcp.create_record").get()
    assert json.loads(event.details)["client"] == "appliance-mcp"
