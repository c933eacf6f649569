"""The AI agents tab against a real server: approve an agent's held write, and connect an agent with a new
MCP token whose set-up works."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.config.home import Paths
from console.client import ApiError, call_api


def _prepare(home: Path) -> dict:
    """A notes collection, an editor with an approval token, and one write held for approval."""
    from appliance.accounts.tokens import create_token
    from appliance.accounts.user_changes import create_user
    from appliance.agents.approvals import hold_write
    from appliance.collections.definitions import create_collection
    from console.offline import offline_database
    from tests.webapp.agent_helpers import NOTES

    with offline_database(Paths(home)):
        admin = create_user("alice@example.com", "Alice", "admin", "alice-admin-pass-1", actor="test")
        editor = create_user("bob@example.com", "Bob", "editor", "bob-editor-pass-2", actor="test")
        create_collection(NOTES, admin)
        token, _ = create_token(editor.id, "agent", mcp=True, mcp_approval=True, actor="test")
        held = hold_write(
            token.id,
            editor.id,
            "create_record",
            {"collection": "notes", "values": {"title": "From the agent"}},
            "OpenClaw",
        )
    return {"pending_id": held["pending_id"], "token": token.id}


def _note_titles(home: Path) -> list[str]:
    from appliance.storage.db import database
    from console.offline import offline_database

    with offline_database(Paths(home)):
        return [row[0] for row in database.execute_sql("SELECT title FROM c_notes")]


def test_an_admin_approves_a_held_write_and_connects_an_agent_from_the_console(qtbot, make_window, console_home):
    prepared = _prepare(console_home)
    window = make_window(console_home)
    with qtbot.waitSignal(window.status_received, timeout=30_000):
        window.start_watching()
    tab = window.agents
    window.tabs.setCurrentWidget(tab)
    with qtbot.waitSignal(tab.loaded, timeout=20_000) as loaded:
        tab.refresh()
    [item] = loaded.args[0]
    assert item["id"] == prepared["pending_id"] and item["status"] == "pending"
    tab.table.selectRow(0)
    assert '"title": "From the agent"' in tab.arguments.toPlainText()
    assert _note_titles(console_home) == []

    with qtbot.waitSignal(tab.done, timeout=20_000) as done:
        tab.on_approve_clicked()
    assert done.args[0] == f"Write #{prepared['pending_id']} was applied."
    assert _note_titles(console_home) == ["From the agent"]
    # The tab reloads after the decision; a load started before it (the periodic refresh) may land first.
    with qtbot.waitSignal(tab.loaded, timeout=20_000, check_params_cb=lambda items: items == []) as reloaded:
        pass
    assert reloaded.args[0] == []

    # Connect an agent: a read token for the editor, limited to notes.
    tab.user.setCurrentText("bob@example.com")
    tab.token_name.setText("OpenClaw")
    tab.collections.setText("notes")
    with qtbot.waitSignal(tab.token_made, timeout=20_000) as made:
        tab.on_create_clicked()
    answer = made.args[0]
    assert answer["user"] == "bob@example.com" and answer["scope"] == "read"
    assert answer["mcp"] == {"tools": None, "collections": ["notes"], "approval": False}
    text = tab.setup.toPlainText()
    assert f'--header "Authorization: Bearer {answer["token"]}"' in text and "claude_desktop_config.json" in text
    assert answer["setup"]["url"] == window.client.base_url.rstrip("/") + "/mcp"
    # The new token works against the server, as the editor, and can change nothing.
    assert call_api(window.client.base_url, answer["token"], "GET", "/api/me")["email"] == "bob@example.com"
    if os.environ.get("SHOTS_DIR"):
        window.resize(1280, 800)
        tab.table.selectRow(0)
        window.grab().save(os.path.join(os.environ["SHOTS_DIR"], "console_agents_tab.png"))
    tab.copy("openclaw")
    from PySide6.QtWidgets import QApplication

    assert QApplication.clipboard().text() == answer["setup"]["openclaw"]


def test_a_refused_token_request_says_why_in_the_tab(qtbot, make_window, console_home):
    _prepare(console_home)
    window = make_window(console_home)
    with qtbot.waitSignal(window.status_received, timeout=30_000):
        window.start_watching()
    tab = window.agents
    tab.user.setCurrentText("bob@example.com")
    tab.tools.setText("delete_record")  # a write tool on a read token
    with qtbot.waitSignal(tab.failed, timeout=20_000) as failed:
        tab.on_create_clicked()
    assert "mcp_tools" in failed.args[0]
    assert tab.setup.toPlainText() == "" and tab.made is None
    with pytest.raises(ApiError) as refused:
        call_api(window.client.base_url, None, "GET", "/api/mcp/pending")  # the queue needs the control token
    assert refused.value.status == 401
