"""The dashboard tab: the server's state and figures at a glance, the start/stop buttons and its output."""

from __future__ import annotations

import datetime as dt
import shutil

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from appliance.backups.catalogue import last_restore_drill
from appliance.clock import parse_iso
from appliance.config.home import Paths
from appliance.server.addresses import staff_urls
from appliance.text import format_bytes
from console.client import human_duration
from console.supervisor import CRASHED, RUNNING, STARTING, STOPPED, STOPPING, UNREACHABLE

STATE_COLOURS = {
    RUNNING: "#2e7d32",
    STARTING: "#f9a825",
    STOPPING: "#f9a825",
    STOPPED: "#757575",
    CRASHED: "#c62828",
    UNREACHABLE: "#ef6c00",
}

STATE_WORDS = {
    RUNNING: "Running",
    STARTING: "Starting…",
    STOPPING: "Stopping…",
    STOPPED: "Stopped",
    CRASHED: "Crashed",
    UNREACHABLE: "Not answering",
}

NOT_AVAILABLE = "—"
USERS_ONLINE_ABSENT = "The server does not report who is online yet."
USERS_ONLINE_TIP = "People with a browser session seen in the last 5 minutes (API tokens not counted)."
RESTORE_DRILL_ABSENT = "The server does not record restore drills yet."
RESTORE_DRILL_NONE = "No restore drill has run yet; the 'restore_drill' job runs weekly."


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def describe_age(value: str | None, now: dt.datetime | None = None) -> str:
    """``"3 h ago"`` for an ISO time in the past, ``"in 5 min"`` for one in the future, ``—`` for none."""
    moment = _parse_time(value)
    if moment is None:
        return NOT_AVAILABLE
    now = now or dt.datetime.now(dt.UTC)
    seconds = (now - moment).total_seconds()
    if seconds >= 0:
        return f"{human_duration(seconds)} ago"
    return f"in {human_duration(-seconds)}"


def last_backup_of(status: dict) -> dict | None:
    """The last backup item the status carries (``last_backup`` or ``backups.last``), if any."""
    last = status.get("last_backup")
    if last is None and isinstance(status.get("backups"), dict):
        last = status["backups"].get("last")
    return last if isinstance(last, dict) else None


def next_job_of(status: dict) -> dict | None:
    """The next scheduled job the status carries (``next_job`` or ``jobs.next``), if any."""
    job = status.get("next_job")
    if job is None and isinstance(status.get("jobs"), dict):
        job = status["jobs"].get("next")
    return job if isinstance(job, dict) else None


def _alert_text(alert: object) -> str:
    if isinstance(alert, dict):
        subject, message = alert.get("subject"), alert.get("message")
        return f"{subject}: {message}" if subject and message else str(subject or message or alert)
    return str(alert)


def _alert_key(alert: object) -> str:
    """What stays the same while a server alert stays the same (its key, else its row id, else its kind)."""
    if isinstance(alert, dict):
        for field in ("key", "id"):
            if alert.get(field) is not None:
                return f"server:{field}:{alert[field]}"
        return f"server:kind:{alert.get('kind')}:{alert.get('subject')}"
    return f"server:text:{alert}"


def keyed_alerts_from_status(status: dict, now: dt.datetime | None = None) -> list[tuple[str, str]]:
    """The alerts of a status answer as ``(key, text)``: the text may name figures that change from one
    poll to the next (an age, free space); the key does not, so a notification is sent once per alert."""
    now = now or dt.datetime.now(dt.UTC)
    alerts = [(_alert_key(a), _alert_text(a)) for a in status.get("alerts", []) or []]
    last = last_backup_of(status)
    if last is not None:
        if last.get("verified") is False:
            name = last.get("name", "?")
            alerts.append((f"backup-unverified:{name}", f"The last backup ({name}) failed its verification."))
        created = _parse_time(last.get("created_at"))
        if created is not None and (now - created).total_seconds() > 26 * 3600:
            age = human_duration((now - created).total_seconds())
            alerts.append((f"backup-old:{last.get('name', '?')}", f"The last backup is {age} old."))
    disk = status.get("disk") or {}
    free = disk.get("free_bytes")
    if free is not None and free < 500 * 1024 * 1024:
        alerts.append(("disk-low", f"Only {format_bytes(free)} of disk space is left for the appliance's home."))
    hooks = status.get("webhooks") or {}
    for paused in hooks.get("paused") or []:
        alerts.append(
            (
                f"webhook-paused:{paused.get('id')}:{paused.get('paused_at')}",
                f"Webhook {paused.get('id')} ({paused.get('url')}) paused itself after repeated failures; "
                "turn it back on at /admin/webhooks.",
            )
        )
    failed = hooks.get("failed_deliveries") or 0
    if failed:
        alerts.append(
            (
                "webhook-failed-deliveries",
                f"{failed} webhook deliver{'y' if failed == 1 else 'ies'} failed; replay them at /admin/webhooks.",
            )
        )
    return alerts


def alerts_from_status(status: dict, now: dt.datetime | None = None) -> list[str]:
    """Plain-word alerts from a status answer: the server's own, and what the console can tell from it."""
    return [text for _key, text in keyed_alerts_from_status(status, now)]


def keyed_missed_run_alerts(jobs: list[dict], now: dt.datetime | None = None) -> list[tuple[str, str]]:
    """While the server is off: every enabled job whose planned run has passed, as ``(key, text)``."""
    now = now or dt.datetime.now(dt.UTC)
    alerts = []
    for job in jobs:
        due = _parse_time(job.get("next_run")) if job.get("enabled") else None
        if due is None or (now - due).total_seconds() < 60:
            continue
        local = due.astimezone()
        when = local.strftime("%H:%M") if local.date() == now.astimezone().date() else local.strftime("%a %d %b %H:%M")
        what = "The nightly backup" if job.get("name") == "backup" else f"The '{job.get('name')}' job"
        alerts.append(
            (f"missed:{job.get('name')}:{job.get('next_run')}", f"{what} did not run: the server was off at {when}.")
        )
    return alerts


class DashboardTab(QWidget):
    """State, URL, figures and alerts; the start/stop/restart buttons emit requests the window acts on."""

    start_requested = Signal()
    stop_requested = Signal()
    restart_requested = Signal()

    def __init__(self, paths: Paths, parent: QWidget | None = None):
        super().__init__(parent)
        self.paths = paths
        self.url: str | None = None
        self.state = STOPPED
        self.figures: dict[str, QLabel] = {}

        self.state_label = QLabel()
        self.state_label.setObjectName("state")
        self.state_label.setStyleSheet("font-size: 18pt; font-weight: bold;")
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.restart_button = QPushButton("Restart")
        self.start_button.clicked.connect(self.start_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.restart_button.clicked.connect(self.restart_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.state_label, 1)
        for button in (self.start_button, self.stop_button, self.restart_button):
            buttons.addWidget(button)

        self.url_label = QLabel(NOT_AVAILABLE)
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open in browser")
        self.copy_button = QPushButton("Copy")
        self.open_button.clicked.connect(self.on_open_clicked)
        self.copy_button.clicked.connect(self.on_copy_clicked)
        url_row = QHBoxLayout()
        url_row.addWidget(QLabel("Address:"))
        url_row.addWidget(self.url_label, 1)
        url_row.addWidget(self.open_button)
        url_row.addWidget(self.copy_button)
        # Where staff on other computers open it (only when it listens on the office network).
        self.lan_label = QLabel()
        self.lan_label.setObjectName("lan_urls")
        self.lan_label.setWordWrap(True)
        self.lan_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lan_label.hide()

        grid_box = QGroupBox("At a glance")
        grid = QGridLayout(grid_box)
        rows = [
            ("port", "Port"),
            ("workers", "Workers"),
            ("uptime", "Up for"),
            ("version", "Version"),
            ("database", "Database size"),
            ("disk", "Free disk"),
            ("users_online", "Users online"),
            ("last_backup", "Last backup"),
            ("restore_drill", "Last restore drill"),
            ("next_job", "Next scheduled job"),
            ("last_prune", "Last prune"),
        ]
        for index, (key, title) in enumerate(rows):
            value = QLabel(NOT_AVAILABLE)
            value.setObjectName(key)
            self.figures[key] = value
            grid.addWidget(QLabel(title + ":"), index % 5, (index // 5) * 2)
            grid.addWidget(value, index % 5, (index // 5) * 2 + 1)
        self.figures["users_online"].setToolTip(USERS_ONLINE_ABSENT)
        self.figures["restore_drill"].setToolTip(RESTORE_DRILL_ABSENT)

        self.alerts_label = QLabel()
        self.alerts_label.setObjectName("alerts")
        self.alerts_label.setWordWrap(True)
        self.alerts_label.setStyleSheet("color: #c62828;")

        self.output_view = QPlainTextEdit()
        self.output_view.setReadOnly(True)
        self.output_view.setMaximumBlockCount(2000)
        self.output_view.setPlaceholderText("The server's output and what the console did appear here.")

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addLayout(url_row)
        layout.addWidget(self.lan_label)
        layout.addWidget(grid_box)
        layout.addWidget(self.alerts_label)
        layout.addWidget(QLabel("Server output and events:"))
        layout.addWidget(self.output_view, 1)
        self._alerts: list[str] = []
        self._event_alerts: list[str] = []
        self._offline_alerts: list[str] = []
        self._offline_keyed: list[tuple[str, str]] = []
        self.restore_running = False
        self.set_state(STOPPED, None)

    # --- updates from the window -----------------------------------------

    def set_state(self, state: str, info: dict | None) -> None:
        self.state = state
        colour = STATE_COLOURS.get(state, "#000")
        self.state_label.setText(f'<span style="color:{colour}">●</span> {STATE_WORDS.get(state, state)}')
        self.url = (info or {}).get("url")
        self.url_label.setText(self.url or NOT_AVAILABLE)
        self.show_lan_urls(info if state in (RUNNING, STARTING, UNREACHABLE) else None)
        self.open_button.setEnabled(bool(self.url))
        self.copy_button.setEnabled(bool(self.url))
        # A restore holds the home's lock: a server started now would only be refused.
        self.start_button.setEnabled(state in (STOPPED, CRASHED) and not self.restore_running)
        self.start_button.setToolTip(
            "A restore is running; the server can start when it is done." if self.restore_running else ""
        )
        self.stop_button.setEnabled(state in (RUNNING, STARTING, UNREACHABLE, CRASHED))
        self.restart_button.setEnabled(state in (RUNNING, UNREACHABLE, CRASHED))
        if info:
            self.figures["port"].setText(str(info.get("port", NOT_AVAILABLE)))
            self.figures["workers"].setText(str(info.get("workers", NOT_AVAILABLE)))
            self.figures["version"].setText(str(info.get("version", NOT_AVAILABLE)))
        if state in (STOPPED, CRASHED):
            self.figures["uptime"].setText(NOT_AVAILABLE)
            self.show_offline_figures()

    def show_lan_urls(self, info: dict | None) -> None:
        """The office-network addresses of a server listening on a wildcard or LAN address; hidden otherwise."""
        host, port = (info or {}).get("host"), (info or {}).get("port")
        urls = staff_urls(str(host), int(port)) if isinstance(host, str) and isinstance(port, int) else []
        self.lan_label.setText("Staff on the office network open: " + "   ".join(urls) if urls else "")
        self.lan_label.setVisible(bool(urls))

    def set_restore_running(self, running: bool) -> None:
        """A restore started or ended: Start waits for it."""
        self.restore_running = running
        self.start_button.setEnabled(self.state in (STOPPED, CRASHED) and not running)
        self.start_button.setToolTip("A restore is running; the server can start when it is done." if running else "")

    def show_offline_figures(self) -> None:
        """What the console can tell without a server: database size and free disk, read from the home."""
        size = sum(p.stat().st_size for p in self.paths.db_dir.glob("appliance.sqlite3*") if p.is_file())
        self.figures["database"].setText(format_bytes(size))
        try:
            self.figures["disk"].setText(format_bytes(shutil.disk_usage(self.paths.home).free))
        except OSError:
            self.figures["disk"].setText(NOT_AVAILABLE)
        self.figures["users_online"].setText(NOT_AVAILABLE)
        self.figures["users_online"].setToolTip("The server is stopped: nobody can be signed in.")
        self.show_offline_drill()

    def show_status(self, status: dict) -> None:
        """Fill the figures from a ``/api/system/status`` answer."""
        self.figures["uptime"].setText(human_duration(status.get("uptime_seconds")))
        self.figures["version"].setText(str(status.get("version", NOT_AVAILABLE)))
        self.figures["workers"].setText(str(status.get("workers", NOT_AVAILABLE)))
        self.figures["database"].setText(format_bytes((status.get("database") or {}).get("size_bytes")))
        self.figures["disk"].setText(format_bytes((status.get("disk") or {}).get("free_bytes")))
        online = status.get("users_online")
        self.figures["users_online"].setText(NOT_AVAILABLE if online is None else str(online))
        self.figures["users_online"].setToolTip(USERS_ONLINE_ABSENT if online is None else USERS_ONLINE_TIP)
        last = last_backup_of(status)
        if last is None:
            self.figures["last_backup"].setText("none yet" if "last_backup" in status else NOT_AVAILABLE)
        else:
            verified = {True: "verified", False: "NOT verified", None: "not checked"}[last.get("verified")]
            self.figures["last_backup"].setText(f"{describe_age(last.get('created_at'))}, {verified}")
        self._show_drill(status.get("last_restore_drill"), reported="last_restore_drill" in status)
        prune = status.get("last_prune")
        if isinstance(prune, dict):
            self.figures["last_prune"].setText(f"{describe_age(prune.get('at'))}: {prune.get('message')}")
            self.figures["last_prune"].setToolTip(str(prune.get("message")))
        else:
            self.figures["last_prune"].setText("none yet" if "last_prune" in status else NOT_AVAILABLE)
        job = next_job_of(status)
        if job is None:
            self.figures["next_job"].setText(NOT_AVAILABLE)
        else:
            self.figures["next_job"].setText(f"{job.get('name', '?')} {describe_age(job.get('next_run'))}")
        self._alerts = alerts_from_status(status)
        self._offline_alerts = []
        self._render_alerts()

    def _show_drill(self, drill: object, *, reported: bool) -> None:
        """The last restore drill (``{"at", "backup", "outcome", "message"}``): its age and outcome, the
        message as tooltip; "none yet" when none ran, ``—`` (with a tooltip saying why) when not reported."""
        label = self.figures["restore_drill"]
        if isinstance(drill, dict):
            outcome = "passed" if drill.get("outcome") == "ok" else "FAILED"
            label.setText(f"{describe_age(drill.get('at'))}, {outcome}")
            label.setToolTip(str(drill.get("message") or drill.get("backup") or ""))
        elif reported:
            label.setText("none yet")
            label.setToolTip(RESTORE_DRILL_NONE)
        else:
            label.setText(NOT_AVAILABLE)
            label.setToolTip(RESTORE_DRILL_ABSENT)

    def show_offline_drill(self) -> None:
        """While the server is stopped: the last restore drill, read from the backups folder."""
        try:
            drill = last_restore_drill(self.paths)
        except OSError:
            drill = None
        self._show_drill(drill, reported=True)

    def show_offline_state(self, last_backup: dict | None, jobs: list[dict] | None) -> list[tuple[str, str]]:
        """While the server is stopped: the last backup and next job read from the home, and missed runs.

        Returns the missed-run alerts now shown, as ``(key, text)``.
        """
        self.show_offline_drill()
        if last_backup is not None:
            verified = {True: "verified", False: "NOT verified"}.get(last_backup.get("verified"), "not checked")
            self.figures["last_backup"].setText(f"{describe_age(last_backup.get('created_at'))}, {verified}")
        if jobs is not None:
            due = sorted((j for j in jobs if j.get("enabled") and j.get("next_run")), key=lambda j: j["next_run"])
            self.figures["next_job"].setText(
                f"{due[0]['name']} {describe_age(due[0]['next_run'])} (when the server runs)" if due else NOT_AVAILABLE
            )
            self._offline_keyed = keyed_missed_run_alerts(jobs)
            self._offline_alerts = [text for _key, text in self._offline_keyed]
            self._alerts = []
            self._render_alerts()
        return list(self._offline_keyed)

    def add_event_alert(self, text: str) -> None:
        """An alert the console itself raised (a crash, a refused start); kept until the server runs again."""
        self._event_alerts = [*self._event_alerts[-2:], text]
        self._render_alerts()

    def clear_event_alerts(self) -> None:
        self._event_alerts = []
        self._render_alerts()

    def _render_alerts(self) -> None:
        alerts = self._event_alerts + self._offline_alerts + self._alerts
        self.alerts_label.setText("\n".join(f"⚠ {a}" for a in alerts))
        self.alerts_label.setVisible(bool(alerts))

    def alerts(self) -> list[str]:
        return self._event_alerts + self._offline_alerts + self._alerts

    def append_output(self, text: str) -> None:
        self.output_view.appendPlainText(text.rstrip("\n"))

    # --- slots -------------------------------------------------------------

    def on_open_clicked(self) -> None:
        if self.url:
            QDesktopServices.openUrl(QUrl(self.url))

    def on_copy_clicked(self) -> None:
        if self.url:
            QGuiApplication.clipboard().setText(self.url)
