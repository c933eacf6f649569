"""The backups tab: the archives with their verification state, back up now (with progress), verify,
open the folder, and restore — the console confirms with the archive's date and counts, stops the server,
restores (the core keeps a safety backup), starts it again and shows the result."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from appliance.backups import MANIFEST, find_backup, list_backups, verify_archive, write_verification
from appliance.home import Paths
from console.client import ServerClient, human_bytes, run_in_background
from console.supervisor import CRASHED, RUNNING, STOPPED, Supervisor
from console.tab_support import ServiceTab, describe_error, fill_table, selected_key


def archive_summary(archive: Path) -> dict[str, Any]:
    """What the restore confirmation shows: created_at, app and schema version, row counts, files."""
    try:
        with zipfile.ZipFile(archive) as zf:
            manifest = json.loads(zf.read(MANIFEST))
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def describe_counts(manifest: dict[str, Any]) -> str:
    counts = manifest.get("row_counts") or {}
    interesting = {k: v for k, v in counts.items() if not k.startswith(("migratehistory", "sqlite_")) and v}
    parts = [f"{count} {table}" for table, count in sorted(interesting.items())]
    files = manifest.get("files")
    if isinstance(files, (list, dict)):
        parts.append(f"{len(files)} files")
    return ", ".join(parts) or "no rows"


class BackupsTab(ServiceTab):
    """``restore_finished(result dict)`` fires after a restore, when the server is back (if it was running)."""

    restore_finished = Signal(object)

    def __init__(self, paths: Paths, client: ServerClient, supervisor: Supervisor, parent: QWidget | None = None):
        super().__init__(paths, client, supervisor, parent)
        self.items: list[dict[str, Any]] = []
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Name", "Created", "Size", "Verification", "Kind"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: the server answers once the backup is written and verified
        self.progress.hide()
        buttons = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key, title, slot in (
            ("refresh", "Refresh", self.refresh),
            ("create", "Back up now", self.on_create_clicked),
            ("verify", "Verify", self.on_verify_clicked),
            ("folder", "Open folder", self.on_folder_clicked),
            ("restore", "Restore…", self.on_restore_clicked),
        ):
            button = QPushButton(title)
            button.clicked.connect(slot)
            buttons.addWidget(button)
            self.buttons[key] = button
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)

    def refresh(self) -> None:
        """The backups folder is the truth: it is read directly, server or not."""
        paths = self.paths
        run_in_background(
            lambda: list_backups(paths), self._show, lambda e: self.message.setText(describe_error(e)), owner=self
        )

    def _show(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        rows = [
            [i["name"], i["created_at"], human_bytes(i["size"]), i.get("status", i["verified"]), i.get("kind")]
            for i in items
        ]
        fill_table(self.table, rows, [i["name"] for i in items])
        self.loaded.emit(items)

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self.progress.setVisible(busy)
        for button in self.buttons.values():
            button.setEnabled(not busy)
        if text:
            self.message.setText(text)

    # --- operations -----------------------------------------------------------------

    def create_backup(self) -> None:
        """Back up now: through the server while it runs (it keeps serving), else through the core."""

        def online(client: ServerClient) -> dict:
            return client.call("POST", "/api/backups", {}, timeout=600)

        def offline(instance: Any) -> dict:
            from appliance.jobs import take_backup

            return take_backup(instance, kind="manual")

        def done(item: dict) -> str:
            self._set_busy(False)
            self.refresh()
            state = "verified" if item.get("verified") else "NOT verified (kept aside in backups/failed)"
            return f"Backup {item['name']} written, {human_bytes(item.get('size'))}, {state}."

        self._set_busy(True, "Writing and verifying a backup…")
        self.perform(online, offline, done, on_error=lambda _text: self._set_busy(False))

    def verify(self, name: str) -> None:
        paths = self.paths

        def work() -> dict:
            archive = find_backup(paths, name)
            result = verify_archive(archive, paths.backups_dir)
            write_verification(archive, result)
            return result

        def done(result: dict) -> None:
            self._set_busy(False)
            if result.get("ok"):
                self.message.setText(f"{name} is sound: every checksum matches and the database passes its check.")
            else:
                self.message.setText(f"⚠ {name} failed verification: " + "; ".join(result.get("problems", [])[:3]))
            self.done.emit(self.message.text())
            self.refresh()

        def failed(exc: Exception) -> None:
            self._set_busy(False)
            self.message.setText(f"⚠ {describe_error(exc)}")
            self.failed.emit(self.message.text())

        self._set_busy(True, f"Verifying {name}…")
        run_in_background(work, done, failed, owner=self)

    def restore(self, name: str) -> None:
        """Stop the server (if it runs), restore ``name``, and start the server again if it was running."""
        was_running = self.supervisor.state not in (STOPPED, CRASHED)
        self._set_busy(True, f"Restoring {name}: stopping the server…" if was_running else f"Restoring {name}…")

        def go(state: str | None = None) -> None:
            if state is not None:
                if state not in (STOPPED, CRASHED):
                    return
                self.supervisor.state_changed.disconnect(go)
            self._restore_now(name, was_running)

        if was_running:
            self.supervisor.auto_restart = False
            self.supervisor.state_changed.connect(go)
            if not self.supervisor.stop():
                self.supervisor.state_changed.disconnect(go)
                go()
        else:
            go()

    def _restore_now(self, name: str, restart: bool) -> None:
        paths = self.paths
        self.message.setText(f"Restoring {name}…")

        def work() -> dict:
            from appliance.restore import restore_backup

            return restore_backup(paths, find_backup(paths, name))

        def finish(text: str, result: dict | None) -> None:
            self.message.setText(text)
            self.supervisor.auto_restart = True
            self.refresh()
            if restart:
                self.message.setText(text + " Starting the server again…")

                def started(state: str) -> None:
                    if state in (RUNNING, CRASHED):
                        self.supervisor.state_changed.disconnect(started)
                        self._set_busy(False)
                        self.message.setText(text + (" The server is running again." if state == RUNNING else ""))
                        self.restore_finished.emit(result)

                self.supervisor.state_changed.connect(started)
                self.supervisor.start()
            else:
                self._set_busy(False)
                self.restore_finished.emit(result)

        def done(result: dict) -> None:
            safety = result.get("safety_backup")
            text = f"Restored {result['restored']}." + (f" The state before is kept as {safety}." if safety else "")
            finish(text, result)
            self.done.emit(text)

        def failed(exc: Exception) -> None:
            text = f"⚠ The restore was refused, nothing changed: {describe_error(exc)}"
            finish(text, None)
            self.failed.emit(text)

        run_in_background(work, done, failed, owner=self)

    # --- buttons --------------------------------------------------------------------

    def _current(self) -> str | None:
        name = selected_key(self.table)
        if name is None:
            self.message.setText("Select a backup first.")
        return name

    def on_create_clicked(self) -> None:
        self.create_backup()

    def on_verify_clicked(self) -> None:
        name = self._current()
        if name:
            self.verify(name)

    def on_folder_clicked(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.paths.backups_dir)))

    def confirm_restore(self, name: str) -> bool:
        """Ask, naming the archive's date and what it holds."""
        try:
            manifest = archive_summary(find_backup(self.paths, name))
        except Exception as exc:
            self.message.setText(f"⚠ {describe_error(exc)}")
            return False
        running = self.supervisor.state not in (STOPPED, CRASHED)
        text = (
            f"Restore {name}?\n\nMade {manifest.get('created_at', 'at an unknown date')} "
            f"(version {manifest.get('app_version', '?')}), holding {describe_counts(manifest)}.\n\n"
            "Everything entered since then is replaced; a safety backup of the current state is made first."
            + ("\nThe server is stopped for the restore and started again afterwards." if running else "")
        )
        answer = QMessageBox.warning(
            self, "Restore a backup", text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel
        )
        return answer == QMessageBox.StandardButton.Yes

    def on_restore_clicked(self) -> None:
        name = self._current()
        if name and self.confirm_restore(name):
            self.restore(name)
