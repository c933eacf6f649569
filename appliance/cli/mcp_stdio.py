"""``appliance mcp``: MCP over stdio for desktop AI clients, relayed to the running server's ``/mcp``.

The desktop client (Claude Desktop, any stdio MCP client) starts this
command; it speaks MCP on stdin/stdout with the official SDK's stdio server
and answers ``tools/list`` and ``tools/call`` by asking the running server,
over HTTP with the token, through the SDK's client. So the server stays the
one place that checks access, writes and audits; this process holds no
database connection. The token comes from ``APPLIANCE_TOKEN`` (or one line
on stdin with ``--token-stdin``, read before MCP starts), the server from
``APPLIANCE_URL`` or the home's ``run/server.json``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import click
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from appliance import __version__
from appliance.cli.common import current_instance, fail, home_option
from appliance.server.run_files import read_server_info

PROTOCOL = "2026-07-28"  # stateless to the server: each relayed request stands alone


def _server_url(url: str) -> str:
    """The ``/mcp`` URL of ``url`` (``APPLIANCE_URL``), or of the home's running server when empty."""
    if not url:
        info = read_server_info(current_instance().paths)
        if not info or not info.get("url"):
            fail("no server is running for this home; start it (appliance serve) or set APPLIANCE_URL")
        url = str(info["url"])
    return url.rstrip("/") + "/mcp" if not url.rstrip("/").endswith("/mcp") else url.rstrip("/")


def _read_token_line(limit: int = 400) -> str:
    """The first line of stdin, read a byte at a time: the SDK's stdio reader takes the descriptor over
    afterwards, and anything a buffered read had taken past the line would be lost to it."""
    line = bytearray()
    while len(line) < limit:
        byte = os.read(0, 1)
        if not byte or byte == b"\n":
            break
        line += byte
    return line.decode("utf-8", "replace").strip()


def relay_server(url: str, token: str) -> Server[Any]:
    """A stdio-side MCP server whose tools are the remote server's, for this token."""

    @asynccontextmanager
    async def connect(_server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            remote = Client(
                streamable_http_client(url, http_client=http),
                mode=PROTOCOL,
                client_info=types.Implementation(name="appliance-mcp", version=__version__),
            )
            async with remote:
                yield {"remote": remote}

    async def list_tools(ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListToolsResult:
        remote: Client = ctx.lifespan_context["remote"]
        return await remote.list_tools()

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        remote: Client = ctx.lifespan_context["remote"]
        result = await remote.session.call_tool(params.name, params.arguments or {})
        if not isinstance(result, types.CallToolResult):  # pragma: no cover - our tools never ask for input
            raise RuntimeError("the server answered a tool call with something other than a result")
        return result

    return Server(
        "office-appliance",
        version=__version__,
        lifespan=connect,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


@click.command("mcp")
@home_option
@click.option("--token-stdin", is_flag=True, help="Read the MCP token from the first line of standard input.")
def mcp_command(token_stdin: bool) -> None:
    """Speak MCP over stdio for a desktop AI client, relayed to the running server."""
    # These two are this command's, not settings: taken out before the home's settings are read (which
    # refuse an APPLIANCE_* variable they do not know).
    env_token = os.environ.pop("APPLIANCE_TOKEN", "").strip()
    env_url = os.environ.pop("APPLIANCE_URL", "").strip()
    token = _read_token_line() if token_stdin else env_token
    if not token:
        fail("no token: set APPLIANCE_TOKEN, or pass it on standard input with --token-stdin")
    server = relay_server(_server_url(env_url), token)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)
