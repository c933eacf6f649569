"""Copy-ready set-up for connecting an AI agent with a new MCP token: OpenClaw, Claude Desktop, any client.

:func:`setup_snippets` answers the texts the console and the ``/account``
page show once beside a new token. Desktop clients start ``appliance mcp``
over stdio on this machine (with the token in ``APPLIANCE_TOKEN``); the
others speak Streamable HTTP to ``<base>/mcp`` with the token as a bearer
header.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

SERVER_NAME = "office"


def appliance_command() -> list[str]:
    """How a desktop client starts this installation's ``appliance`` program: its script beside the running
    Python (a virtualenv or the installer's), else the one on ``PATH``, else ``python -m appliance``."""
    here = Path(sys.executable).parent
    for name in ("appliance", "appliance.exe", "Scripts/appliance.exe"):
        candidate = here / name
        if candidate.is_file():
            return [str(candidate)]
    found = shutil.which("appliance")
    return [found] if found else [sys.executable, "-m", "appliance"]


def mcp_url(base_url: str) -> str:
    """The MCP endpoint of the server at ``base_url`` (``http://host:port``)."""
    return base_url.rstrip("/") + "/mcp"


def claude_desktop_config(secret: str, home: Path | str, command: list[str] | None = None) -> dict[str, Any]:
    """The ``claude_desktop_config.json`` entry that starts ``appliance mcp`` for this home with the token."""
    program, *prefix = command or appliance_command()
    return {
        "mcpServers": {
            SERVER_NAME: {
                "command": program,
                "args": [*prefix, "mcp", "--home", str(home)],
                "env": {"APPLIANCE_TOKEN": secret},
            }
        }
    }


def setup_snippets(base_url: str, secret: str, home: Path | str, command: list[str] | None = None) -> dict[str, str]:
    """The set-up texts for a new token: ``url``, ``header``, ``openclaw`` (a shell command) and
    ``claude_desktop`` (JSON), each ready to paste."""
    url = mcp_url(base_url)
    header = f"Authorization: Bearer {secret}"
    # A token is "oat_" and URL-safe base64 (letters, digits, "-", "_"): nothing a shell expands inside "...".
    openclaw = (
        f'openclaw mcp add {SERVER_NAME} --transport streamable-http --url {shlex.quote(url)} --header "{header}"'
    )
    return {
        "url": url,
        "header": header,
        "openclaw": openclaw,
        "claude_desktop": json.dumps(claude_desktop_config(secret, home, command), indent=2),
    }
