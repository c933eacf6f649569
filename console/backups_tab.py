"""The backups tab: the archives with their verification state, back up now (with progress), verify,
open the folder, and restore — the console confirms with the archive's date and counts, stops the server,
restores (the core keeps a safety backup), starts it again and shows the result. The settings file is kept
unless the confirmation's "Also bring back the settings" box is ticked.

A server the console started is started again after the restore; a server that ran on its own (a service,
a terminal) is not replaced by a console child: the person is told to start it again the way it runs.
Each wait on the server (to stop, to come back) ends after ``restore_wait_ms`` with a plain message."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QMessageBox,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from appliance.backups.catalogue import describe_contents, find_backup, list_backups, write_verification
from appliance.backups.format import MANIFEST
from appliance.backups.restore import restore_backup
from appliance.backups.verify import verify_archive
from appliance.config.home import Paths
from appliance.jobs.builtin import take_backup
from appliance.text import format_bytes
from console.client import ServerClient, local_time, run_in_background
from console.supervisor import CRASHED, RUNNING, STOPPED, Supervisor
from console.tab_support import ServiceTab, button_row, describe_error, fill_table, item_table, selected_key


def archive_summary(archive: Path) -> dict[str, Any]:
    """What the restore confirmation shows: created_at, app and schema version, row counts, files."""
    try:
        with zipfile.ZipFile(archive) as zf:
            manifest = json.loads(zf.read(MANIFEST))
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


# The restore confirmation's box for bringing back the settings file too.
SETTINGS_CHECKBOX = "Also bring back the settings (mail, retention, offsite, port…)"

# How long a restore waits for the server to stop, and to come back, before it says so and gives up waiting.
RESTORE_WAIT_MS = 120_000


class BackupsTab(ServiceTab):
    """``restore_started(name)`` fires when a restore begins; ``restore_finished(result dict or None)`` when it
    is over (after the server is back, if the console starts it again); ``None`` when nothing was restored."""

    restore_started = Signal(str)
    restore_finished = Signal(object)

    def __init__(self, paths: Paths, client: ServerClient, supervisor: Supervisor, parent: QWidget | None = None):
        super().__init__(paths, client, supervisor, parent)
        self.items: list[dict[str, Any]] = []
        self.restoring = False
        self.restore_wait_ms = RESTORE_WAIT_MS
        self._wait_timer = QTimer(self)
        self._wait_timer.setSingleShot(True)
        self._on_wait_over: Any = None
        self._wait_timer.timeout.connect(self._wait_over)
        self.table = item_table(["Name", "Created", "Size", "Verification", "Kind"])
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: the server answers once the backup is written and verified
        self.progress.hide()
        buttons, self.buttons = button_row(
            (
                ("refresh", "Refresh", self.refresh),
                ("create", "Back up now", self.on_create_clicked),
                ("verify", "Verify", self.on_verify_clicked),
                ("folder", "Open folder", self.on_folder_clicked),
                ("restore", "Restore…", self.on_restore_clicked),
            )
        )
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
            [
                i["name"],
                local_time(i["created_at"]),
                format_bytes(i["size"]),
                i.get("status", i["verified"]),
                i.get("kind"),
            ]
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
            return take_backup(instance, kind="manual", actor="console")

        def done(item: dict) -> str:
            self._set_busy(False)
            self.refresh()
            state = "verified" if item.get("verified") else "NOT verified (kept aside in backups/failed)"
            return f"Backup {item['name']} written, {format_bytes(item.get('size'))}, {state}."

        self._set_busy(True, "Writing and verifying a backup…")
        self.perform(online, offline, done, on_error=lambda _text: self._set_busy(False))

    def verify(self, name: str) -> None:
        paths = self.paths

        def work() -> dict:
            archive = find_backup(paths, name)
            result = verify_archive(archive, paths.backups_dir, paths=paths)
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

    def _wait(self, on_over: Any) -> None:
        """Call ``on_over()`` unless :meth:`_stop_waiting` comes first, within ``restore_wait_ms``."""
        self._on_wait_over = on_over
        self._wait_timer.start(self.restore_wait_ms)

    def _stop_waiting(self) -> None:
        self._wait_timer.stop()
        self._on_wait_over = None

    def _wait_over(self) -> None:
        on_over, self._on_wait_over = self._on_wait_over, None
        if on_over is not None:
            on_over()

    def _end_restore(self, text: str, result: dict | None, *, ok: bool) -> None:
        self._stop_waiting()
        self.supervisor.auto_restart = True
        self.restoring = False
        self._set_busy(False)
        self.message.setText(text)
        self.refresh()
        (self.done if ok else self.failed).emit(text)
        self.restore_finished.emit(result)

    def restore(self, name: str, *, with_settings: bool = False) -> None:
        """Stop the server (if it runs), restore ``name`` (and with ``with_settings`` its settings file), and
        start the server again if the console ran it."""
        if self.restoring:
            self.message.setText("A restore is already running.")
            return
        supervisor = self.supervisor
        was_running = supervisor.state not in (STOPPED, CRASHED)
        # A server that runs on its own (a service) is started again the way it runs, not as a console child.
        restart = was_running and not supervisor.attached
        self.restoring = True
        self.restore_started.emit(name)
        self._set_busy(True, f"Restoring {name}: stopping the server…" if was_running else f"Restoring {name}…")
        seconds = self.restore_wait_ms // 1000

        def go(state: str | None = None) -> None:
            if state is not None:
                if state not in (STOPPED, CRASHED):
                    return
                supervisor.state_changed.disconnect(go)
                self._stop_waiting()
            self._restore_now(name, restart=restart, attached=was_running and not restart, with_settings=with_settings)

        def did_not_stop() -> None:
            supervisor.state_changed.disconnect(go)
            self._end_restore(
                f"⚠ The server did not stop within {seconds} s, so nothing was restored. "
                "Stop it (the dashboard shows its state), then restore again.",
                None,
                ok=False,
            )

        if was_running:
            supervisor.auto_restart = False
            supervisor.state_changed.connect(go)
            if not supervisor.stop():
                supervisor.state_changed.disconnect(go)
                go()
            elif self.restoring and supervisor.state not in (STOPPED, CRASHED):
                self._wait(did_not_stop)
        else:
            go()

    def _restore_now(self, name: str, *, restart: bool, attached: bool, with_settings: bool = False) -> None:
        paths = self.paths
        self.message.setText(f"Restoring {name}…")
        seconds = self.restore_wait_ms // 1000

        def work() -> dict:
            return restore_backup(paths, find_backup(paths, name), actor="console", with_settings=with_settings)

        def finish(text: str, result: dict | None, ok: bool) -> None:
            if not restart:
                if attached:
                    text += (
                        " The server ran on its own (as a service, or from a terminal): start it again the way it "
                        "was started, for example by starting the service."
                    )
                self._end_restore(text, result, ok=ok)
                return
            self.message.setText(text + " Starting the server again…")
            supervisor = self.supervisor

            def started(state: str) -> None:
                if state in (RUNNING, CRASHED):
                    supervisor.state_changed.disconnect(started)
                    back = " The server is running again." if state == RUNNING else " The server did not start again."
                    self._end_restore(text + back, result, ok=ok)

            def did_not_come_back() -> None:
                supervisor.state_changed.disconnect(started)
                self._end_restore(
                    text + f" The server has not come back within {seconds} s; see the dashboard.", result, ok=ok
                )

            supervisor.state_changed.connect(started)
            supervisor.auto_restart = True
            supervisor.start()
            if self.restoring:
                self._wait(did_not_come_back)

        def done(result: dict) -> None:
            safety = result.get("safety_backup")
            text = f"Restored {result['restored']}." + (f" The state before is kept as {safety}." if safety else "")
            if result.get("settings") == "restored":
                text += " The settings were brought back too."
            finish(text, result, True)

        def failed(exc: Exception) -> None:
            finish(f"⚠ The restore was refused, nothing changed: {describe_error(exc)}", None, False)

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

    def restore_question(self, name: str) -> str:
        """The confirmation text: the archive's date (local time), version and what it holds.

        Raises what :func:`find_backup` raises for an unknown name.
        """
        manifest = archive_summary(find_backup(self.paths, name))
        running = self.supervisor.state not in (STOPPED, CRASHED)
        made = local_time(manifest["created_at"]) if manifest.get("created_at") else "at an unknown date"
        text = (
            f"Restore {name}?\n\nMade {made} (version {manifest.get('app_version', '?')}), "
            f"holding {describe_contents(manifest)}.\n\n"
            "Everything entered since then is replaced; a safety backup of the current state is made first.\n"
            "Users, settings kept in the database, job schedules and records go back to how they were "
            f"{made if made.startswith('at ') else 'at ' + made}.\n"
            "The settings file (mail, retention, offsite, port…) is kept as it is unless you tick the box below."
        )
        if running and self.supervisor.attached:
            text += "\nThe server is stopped for the restore; start it again afterwards the way it runs (the service)."
        elif running:
            text += "\nThe server is stopped for the restore and started again afterwards."
        return text

    def confirm_restore(self, name: str) -> tuple[bool, bool]:
        """Ask, naming the archive's date and what it holds, with a box to bring back the settings too;
        returns ``(agreed, with_settings)``."""
        try:
            text = self.restore_question(name)
        except Exception as exc:
            self.message.setText(f"⚠ {describe_error(exc)}")
            return False, False
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Restore a backup",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        settings_box = QCheckBox(SETTINGS_CHECKBOX, box)
        box.setCheckBox(settings_box)
        answer = box.exec()
        return answer == QMessageBox.StandardButton.Yes, settings_box.isChecked()

    def on_restore_clicked(self) -> None:
        name = self._current()
        if not name:
            return
        agreed, with_settings = self.confirm_restore(name)
        if agreed:
            self.restore(name, with_settings=with_settings)
