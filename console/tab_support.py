"""What the Users, Backups and Jobs tabs share: do a thing through the server's API while it runs,
through the core directly while it is stopped, always off the GUI thread, and say how it went."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from appliance.config.home import Instance, Paths
from appliance.errors import ApplianceError
from console.client import ApiError, ServerClient, run_in_background
from console.offline import offline_database
from console.supervisor import RUNNING, UNREACHABLE, Supervisor


def describe_error(exc: Exception) -> str:
    """A refused or failed operation in plain words (field errors included)."""
    if isinstance(exc, ApiError):
        return str(exc)
    if isinstance(exc, ApplianceError):
        if exc.fields:
            return exc.message + " (" + "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) + ")"
        return exc.message
    return f"{type(exc).__name__}: {exc}"


class ServiceTab(QWidget):
    """A tab whose operations run online (API) or offline (core); ``done(message)`` / ``failed(message)``."""

    done = Signal(str)
    failed = Signal(str)
    loaded = Signal(list)

    def __init__(self, paths: Paths, client: ServerClient, supervisor: Supervisor, parent: QWidget | None = None):
        super().__init__(parent)
        self.paths = paths
        self.client = client
        self.supervisor = supervisor
        self.busy = 0
        # While a restore swaps the database (see hold()), offline work waits or is refused.
        self.held = False
        self._deferred: dict[str, Callable[[], None]] = {}
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)

    @property
    def online(self) -> bool:
        """Whether operations go through the server (it runs and answers)."""
        return self.supervisor.state in (RUNNING, UNREACHABLE) and self.client.available

    def perform(
        self,
        online: Callable[[ServerClient], Any],
        offline: Callable[[Instance], Any],
        on_done: Callable[[Any], str | None],
        *,
        use_offline: bool | None = None,
        on_error: Callable[[str], None] | None = None,
        deferrable: bool = False,
    ) -> None:
        """Run the online or the offline form in the background; ``on_done(result)`` returns the message to show.

        While the tab is held (a restore swaps the database), offline work does not touch the database: a
        ``deferrable`` read (a refresh) runs once the hold ends, anything else is refused in plain words.
        """
        go_online = self.online if use_offline is None else not use_offline
        client, paths = self.client, self.paths
        if not go_online and self.held:
            if deferrable:
                again = lambda: self.perform(  # noqa: E731
                    online, offline, on_done, use_offline=use_offline, on_error=on_error, deferrable=True
                )
                # One of each kind waits (the newest): two refreshes queued are one refresh later.
                self._deferred[getattr(offline, "__qualname__", repr(offline))] = again
                return
            text = "A restore is running; try again when it is done."
            self.message.setText(f"⚠ {text}")
            if on_error is not None:
                on_error(text)
            self.failed.emit(text)
            return

        def work() -> Any:
            if go_online:
                return online(client)
            with offline_database(paths) as instance:
                return offline(instance)

        def finished(result: Any) -> None:
            self.busy -= 1
            text = on_done(result)
            if text:
                self.message.setText(text)
                self.done.emit(text)

        def refused(exc: Exception) -> None:
            self.busy -= 1
            text = describe_error(exc)
            self.message.setText(f"⚠ {text}")
            if on_error is not None:
                on_error(text)
            self.failed.emit(text)

        self.busy += 1
        run_in_background(work, finished, refused, owner=self)

    def hold(self, held: bool) -> None:
        """Hold offline work while a restore runs; on release, run the reads that waited (each kind once)."""
        self.held = held
        if not held:
            waiting, self._deferred = self._deferred, {}
            for again in waiting.values():
                again()

    def on_server_state_changed(self, state: str) -> None:
        """Reload when the server comes or goes (the source of truth changes with it)."""
        if state in (RUNNING, "stopped"):
            self.refresh()

    def refresh(self) -> None:  # pragma: no cover - every tab overrides it
        raise NotImplementedError


def item_table(headers: list[str], *, stretch_last: bool = True) -> QTableWidget:
    """An empty table with these column headers where one whole row at a time is selected."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.horizontalHeader().setStretchLastSection(stretch_last)
    return table


def button_row(specs: tuple[tuple[str, str, Callable[[], Any]], ...]) -> tuple[QHBoxLayout, dict[str, QPushButton]]:
    """A row of push buttons from ``(key, title, slot)`` triples, packed to the left; returns the row and the
    buttons by key."""
    row = QHBoxLayout()
    buttons: dict[str, QPushButton] = {}
    for key, title, slot in specs:
        button = QPushButton(title)
        button.clicked.connect(slot)
        row.addWidget(button)
        buttons[key] = button
    row.addStretch(1)
    return row, buttons


def fill_table(table: QTableWidget, rows: list[list[Any]], keys: list[Any]) -> None:
    """Replace the table's rows; each row's first cell keeps its key (``Qt.UserRole``)."""
    table.setSortingEnabled(False)
    table.setRowCount(len(rows))
    for r, (row, key) in enumerate(zip(rows, keys, strict=True)):
        for c, value in enumerate(row):
            item = QTableWidgetItem("" if value is None else str(value))
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            if c == 0:
                item.setData(Qt.ItemDataRole.UserRole, key)
            table.setItem(r, c, item)
    table.resizeColumnsToContents()


def selected_key(table: QTableWidget) -> Any:
    """The key of the selected row (see :func:`fill_table`), or ``None`` when no row is selected."""
    row = table.currentRow()
    if row < 0 or table.item(row, 0) is None:
        return None
    return table.item(row, 0).data(Qt.ItemDataRole.UserRole)
