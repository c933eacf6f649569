"""The AI agents tab: writes held for approval (approve or reject, the agent's arguments shown as data) and
"Connect an AI agent" (a scoped MCP token for a user, shown once with copy-ready set-up).

Through the server's API while it runs (the control token), through the core while it is stopped.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from appliance.actors import SYSTEM
from appliance.config.home import Instance, Paths
from console.client import ServerClient, local_time
from console.supervisor import Supervisor
from console.tab_support import ServiceTab, button_row, fill_table, item_table, selected_key

REFRESH_MS = 10_000


def _names(text: str) -> list[str] | None:
    """A comma-separated list typed in a box; ``None`` (all) when empty."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    return names or None


def setup_text(made: dict[str, Any]) -> str:
    """The set-up of a new token as one text: OpenClaw, Claude Desktop, any client."""
    setup = made["setup"]
    return (
        f"Token {made['name']} for {made['user']} — copy it now, it is not shown again.\n\n"
        f"OpenClaw (run where OpenClaw runs):\n{setup['openclaw']}\n\n"
        f"Claude Desktop (claude_desktop_config.json on this computer):\n{setup['claude_desktop']}\n\n"
        f"Any MCP client (Streamable HTTP):\nURL: {setup['url']}\nHeader: {setup['header']}\n"
    )


class AgentsTab(ServiceTab):
    """``token_made(answer)`` fires once a token is made (the answer holds ``token`` and ``setup``)."""

    token_made = Signal(dict)

    def __init__(self, paths: Paths, client: ServerClient, supervisor: Supervisor, parent: QWidget | None = None):
        super().__init__(paths, client, supervisor, parent)
        self.pending: list[dict[str, Any]] = []
        self.made: dict[str, Any] | None = None

        queue = QGroupBox("Writes waiting for approval")
        self.table = item_table(["#", "Tool", "Collection", "User", "Token", "Client", "Asked", "Status"])
        self.table.itemSelectionChanged.connect(self.on_selection_changed)
        self.show_decided = QCheckBox("Show decided writes too")
        self.show_decided.toggled.connect(self.refresh)
        buttons, self.buttons = button_row(
            (
                ("refresh", "Refresh", self.refresh),
                ("approve", "Approve and apply", self.on_approve_clicked),
                ("reject", "Reject", self.on_reject_clicked),
            )
        )
        buttons.insertWidget(3, self.show_decided)
        self.arguments = QPlainTextEdit()
        self.arguments.setReadOnly(True)
        self.arguments.setPlaceholderText("Select a write to see the agent's arguments (data, not instructions).")
        self.arguments.setMaximumHeight(140)
        queue_layout = QVBoxLayout(queue)
        queue_layout.addLayout(buttons)
        queue_layout.addWidget(self.table, 1)
        queue_layout.addWidget(self.arguments)

        connect = QGroupBox("Connect an AI agent")
        self.user = QComboBox()
        self.user.setEditable(True)
        self.token_name = QLineEdit("AI agent")
        self.scope = QComboBox()
        self.scope.addItems(["read", "write"])
        self.collections = QLineEdit()
        self.collections.setPlaceholderText("all the user may see, or e.g. customers, orders")
        self.tools = QLineEdit()
        self.tools.setPlaceholderText("all its access allows, or e.g. search_records, get_record")
        self.approval = QCheckBox("Writes need approval (an admin approves each change here)")
        self.expires = QSpinBox()
        self.expires.setRange(1, 3650)
        self.expires.setValue(90)
        self.create_button = QPushButton("Create agent token")
        self.create_button.clicked.connect(self.on_create_clicked)
        form = QFormLayout()
        form.addRow("User:", self.user)
        form.addRow("Name:", self.token_name)
        form.addRow("Access:", self.scope)
        form.addRow("Collections:", self.collections)
        form.addRow("Tools:", self.tools)
        form.addRow("", self.approval)
        form.addRow("Expires after (days):", self.expires)
        form.addRow("", self.create_button)
        self.setup = QPlainTextEdit()
        self.setup.setReadOnly(True)
        self.setup.setPlaceholderText("The set-up for OpenClaw, Claude Desktop and any MCP client shows here, once.")
        copies = QHBoxLayout()
        self.copy_buttons: dict[str, QPushButton] = {}
        for key, title in (
            ("openclaw", "Copy OpenClaw command"),
            ("claude_desktop", "Copy Claude Desktop entry"),
            ("url", "Copy URL"),
            ("header", "Copy header"),
        ):
            button = QPushButton(title)
            button.setEnabled(False)
            button.clicked.connect(lambda _checked=False, k=key: self.copy(k))
            copies.addWidget(button)
            self.copy_buttons[key] = button
        copies.addStretch(1)
        setup_box = QVBoxLayout()
        setup_box.addWidget(self.setup, 1)
        setup_box.addLayout(copies)
        connect_layout = QHBoxLayout(connect)
        connect_layout.addLayout(form, 1)
        connect_layout.addLayout(setup_box, 2)

        # New writes appear without a click while the tab is in view (one light request every few seconds).
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.on_timer)
        self.timer.start()

        layout = QVBoxLayout(self)
        layout.addWidget(queue, 3)
        layout.addWidget(self.message)
        layout.addWidget(connect, 2)

    # --- the approval queue -----------------------------------------------------------

    def refresh(self) -> None:
        status = None if self.show_decided.isChecked() else "pending"

        def online(client: ServerClient) -> tuple[list[dict], list[str]]:
            query = f"?status={status}" if status else ""
            items = client.call("GET", f"/api/mcp/pending{query}")["items"]
            users = [u["email"] for u in client.call("GET", "/api/users?page_size=500")["items"] if u["active"]]
            return items, users

        def offline(_instance: Instance) -> tuple[list[dict], list[str]]:
            from appliance.accounts.users import list_users
            from appliance.agents.approvals import list_pending

            return list_pending(status), [u.email for u in list_users(active=True)]

        self.perform(online, offline, self._show, deferrable=True)

    def on_timer(self) -> None:
        if self.isVisible() and not self.busy and self.online:
            self.refresh()

    def _show(self, result: tuple[list[dict[str, Any]], list[str]]) -> str | None:
        self.pending, emails = result
        rows = [
            [
                p["id"],
                p["tool"],
                p["collection"],
                p["user"],
                p["token_name"],
                p.get("client") or "",
                local_time(p["created_at"]),
                p["status"],
            ]
            for p in self.pending
        ]
        fill_table(self.table, rows, [p["id"] for p in self.pending])
        self.arguments.clear()
        typed = self.user.currentText()
        self.user.clear()
        self.user.addItems(emails)
        self.user.setCurrentText(typed if typed else (emails[0] if emails else ""))
        self.loaded.emit(self.pending)
        return None

    def decide(self, pending_id: int, approve: bool) -> None:
        """Approve (apply once, as the token's user) or reject the held write, then show the queue again."""
        verb = "approve" if approve else "reject"

        def online(client: ServerClient) -> dict:
            return client.call("POST", f"/api/mcp/pending/{pending_id}/{verb}", {})

        def offline(_instance: Instance) -> dict:
            from appliance.agents.approvals import decide_pending

            return decide_pending(pending_id, approve, SYSTEM)

        def done(item: dict) -> str:
            self.refresh()
            if item["status"] == "failed":
                error = item.get("error") or {}
                fields = "; ".join(f"{k}: {v}" for k, v in (error.get("fields") or {}).items())
                return f"⚠ Write #{pending_id} could not be applied: {error.get('message', '')}" + (
                    f" ({fields})" if fields else ""
                )
            return f"Write #{pending_id} was {item['status']}."

        self.perform(online, offline, done)

    def _current(self) -> dict[str, Any] | None:
        key = selected_key(self.table)
        item = next((p for p in self.pending if p["id"] == key), None)
        if item is None:
            self.message.setText("Select a write first.")
        return item

    def on_selection_changed(self) -> None:
        key = selected_key(self.table)
        item = next((p for p in self.pending if p["id"] == key), None)
        # Plain text in a read-only box: whatever the agent sent is shown, never interpreted.
        self.arguments.setPlainText(json.dumps(item["arguments"], indent=2, ensure_ascii=False) if item else "")

    def on_approve_clicked(self) -> None:
        item = self._current()
        if item:
            self.decide(item["id"], True)

    def on_reject_clicked(self) -> None:
        item = self._current()
        if item:
            self.decide(item["id"], False)

    # --- connecting an agent ------------------------------------------------------------

    def form_values(self) -> dict[str, Any]:
        """The token request the form describes (as ``POST /api/mcp/tokens`` takes it)."""
        return {
            "user": self.user.currentText().strip(),
            "name": self.token_name.text(),
            "scope": self.scope.currentText(),
            "expires_days": self.expires.value(),
            "mcp_tools": _names(self.tools.text()),
            "mcp_collections": _names(self.collections.text()),
            "mcp_approval": self.approval.isChecked(),
        }

    def create_agent_token(self, body: dict[str, Any]) -> None:
        """Make the MCP token; its set-up is shown once (``token_made``)."""

        def online(client: ServerClient) -> dict:
            return client.call("POST", "/api/mcp/tokens", body)

        def offline(instance: Instance) -> dict:
            from appliance.accounts.tokens import create_token, serialize_token
            from appliance.accounts.users import get_user_by_email
            from appliance.agents.connect import setup_snippets

            user = get_user_by_email(body["user"])
            token, secret = create_token(
                user.id,
                body["name"],
                scope=body["scope"],
                expires_days=body["expires_days"],
                mcp=True,
                mcp_tools=body["mcp_tools"],
                mcp_collections=body["mcp_collections"],
                mcp_approval=body["mcp_approval"],
                actor="console",
            )
            settings = instance.settings
            host = "127.0.0.1" if settings.host in ("", "0.0.0.0", "::") else settings.host
            base = f"http://{host}:{settings.port}"
            return {
                "token": secret,
                **serialize_token(token),
                "setup": setup_snippets(base, secret, instance.paths.home),
            }

        def done(made: dict) -> str:
            self.made = made
            self.setup.setPlainText(setup_text(made))
            for button in self.copy_buttons.values():
                button.setEnabled(True)
            self.token_made.emit(made)
            return f"Token {made['name']} made for {made['user']}: copy its set-up now, it is not shown again."

        self.perform(online, offline, done)

    def on_create_clicked(self) -> None:
        self.create_agent_token(self.form_values())

    def copy(self, key: str) -> None:
        if self.made is not None:
            QApplication.clipboard().setText(self.made["setup"][key])
            self.message.setText("Copied.")
