"""The console's main window: the tabs, the supervisor, the status poller and the tray, wired together."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QSystemTrayIcon, QTabWidget, QWidget

from appliance.config.home import Paths
from console.agents_tab import AgentsTab
from console.backups_tab import BackupsTab
from console.client import ServerClient, StatusPoller
from console.dashboard import DashboardTab, keyed_alerts_from_status
from console.jobs_tab import JobsTab
from console.logs_view import LogsTab
from console.settings_tab import SettingsTab
from console.supervisor import CRASHED, RUNNING, STOPPED, Supervisor
from console.traffic import TrafficTab
from console.tray import Tray
from console.users_tab import UsersTab

# The status poller's failures in a row before a running server is called unreachable.
UNREACHABLE_AFTER = 2

# Alerts already notified, by key; the oldest are forgotten past this many.
SEEN_ALERTS_MAX = 200

KEEP = "keep"
STOP = "stop"
CANCEL = "cancel"


class MainWindow(QMainWindow):
    """One window per home. ``supervisor_args``/``supervisor_env`` go to the server child (tests use them)."""

    status_received = Signal(object)

    def __init__(
        self,
        paths: Paths,
        *,
        supervisor: Supervisor | None = None,
        status_interval_ms: int = 2000,
        standalone: bool = False,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.paths = paths
        self.setWindowTitle(f"Office Appliance — {paths.home}")
        self.resize(1100, 760)
        self.supervisor = supervisor or Supervisor(paths, parent=self)
        self.supervisor.setParent(self)
        self.client = ServerClient(paths)
        self.poller = StatusPoller(self.client, status_interval_ms, self)
        self.tray = Tray(self)
        self.quitting = False
        # Standalone (run_console): closing for good quits the application; tests keep their QApplication.
        self.standalone = standalone
        self._failures = 0
        self._seen_alerts: OrderedDict[str, None] = OrderedDict()
        self.last_status: dict | None = None

        self.dashboard = DashboardTab(paths)
        self.traffic = TrafficTab()
        self.logs = LogsTab(paths)
        self.users = UsersTab(paths, self.client, self.supervisor)
        self.backups = BackupsTab(paths, self.client, self.supervisor)
        self.jobs = JobsTab(paths, self.client, self.supervisor)
        self.agents = AgentsTab(paths, self.client, self.supervisor)
        self.settings = SettingsTab(paths, self.supervisor)
        self.tabs = QTabWidget()
        for widget, title in (
            (self.dashboard, "Dashboard"),
            (self.traffic, "Traffic"),
            (self.logs, "Logs"),
            (self.users, "Users"),
            (self.backups, "Backups"),
            (self.jobs, "Jobs"),
            (self.agents, "AI agents"),
            (self.settings, "Settings"),
        ):
            self.tabs.addTab(widget, title)
        self.setCentralWidget(self.tabs)
        self.statusBar().showMessage("Looking for the server…")

        sup = self.supervisor
        sup.state_changed.connect(self.on_state_changed)
        sup.info_changed.connect(self.on_info_changed)
        sup.output.connect(self.dashboard.append_output)
        sup.event.connect(self.on_supervisor_event)
        self.poller.status.connect(self.on_status)
        self.poller.failed.connect(self.on_status_failed)
        self.dashboard.start_requested.connect(self.on_start_requested)
        self.dashboard.stop_requested.connect(self.on_stop_requested)
        self.dashboard.restart_requested.connect(self.on_restart_requested)
        self.tray.start_requested.connect(self.on_start_requested)
        self.tray.stop_requested.connect(self.on_stop_requested)
        self.tray.open_browser_requested.connect(self.dashboard.on_open_clicked)
        self.tray.open_console_requested.connect(self.bring_to_front)
        self.tray.quit_requested.connect(self.on_quit_requested)
        self.settings.restart_requested.connect(self.on_restart_requested)
        self.settings.jobs_tab_requested.connect(lambda: self.tabs.setCurrentWidget(self.jobs))
        self.jobs.loaded.connect(self.on_jobs_loaded)
        self.backups.loaded.connect(self.on_backups_loaded)
        self.backups.restore_started.connect(self.on_restore_started)
        self.backups.restore_finished.connect(self.on_restore_finished)
        self._offline_jobs: list[dict] | None = None
        self._offline_backup: dict | None = None
        # While the server is off, the home is read again now and then (missed runs, new archives).
        self.offline_timer = QTimer(self)
        self.offline_timer.setInterval(60_000)
        self.offline_timer.timeout.connect(self.on_offline_timer)
        self.tray.show()

    # --- life ----------------------------------------------------------------

    def start_watching(self, *, start_server: bool = True) -> None:
        """Attach to the home's running server, or start one (``start_server``), then watch it."""
        self.supervisor.poll_once()
        if start_server and self.supervisor.state == STOPPED:
            self.supervisor.start()
        if self.supervisor.state == STOPPED:
            self.on_state_changed(STOPPED)  # no change to signal: show the offline view now
        self.supervisor.watch()
        self.poller.start()

    def bring_to_front(self) -> None:
        self.show()
        self.setWindowState(self.windowState() & ~self.windowState().WindowMinimized)
        self.raise_()
        self.activateWindow()

    # --- supervisor ------------------------------------------------------------

    def on_state_changed(self, state: str) -> None:
        self.dashboard.set_state(state, self.supervisor.info)
        self.tray.set_state(state)
        if self.backups.restoring:
            self.tray.start_action.setEnabled(False)  # a restore holds the home: Start waits for it
        self.statusBar().showMessage(f"Server: {state}")
        if state == RUNNING:
            self._failures = 0
            self.poller.poll()
        if state in (STOPPED, CRASHED):
            self.traffic.reset()
            self.offline_timer.start()
        else:
            self.offline_timer.stop()
        for tab in (self.users, self.backups, self.jobs, self.agents):
            tab.on_server_state_changed(state)

    def on_offline_timer(self) -> None:
        self.jobs.refresh()
        self.backups.refresh()

    def _server_off(self) -> bool:
        return self.supervisor.state in (STOPPED, CRASHED)

    def on_jobs_loaded(self, jobs: list) -> None:
        if self._server_off():
            self._offline_jobs = jobs
            self._show_offline()

    def on_backups_loaded(self, items: list) -> None:
        if self._server_off():
            self._offline_backup = items[0] if items else None
            self._show_offline()

    def _show_offline(self) -> None:
        for key, alert in self.dashboard.show_offline_state(self._offline_backup, self._offline_jobs):
            self._notify_once(key, alert)

    def _notify_once(self, key: str, text: str) -> None:
        """Notify an alert the first time its key is seen: its text may change (an age, free space), its key not."""
        if key in self._seen_alerts:
            self._seen_alerts.move_to_end(key)
            return
        self._seen_alerts[key] = None
        while len(self._seen_alerts) > SEEN_ALERTS_MAX:
            self._seen_alerts.popitem(last=False)
        self.tray.notify("Office Appliance", text)

    # --- restore -----------------------------------------------------------------

    def on_restore_started(self, _name: str) -> None:
        """The database is about to be swapped: offline reads wait, and the server cannot be started."""
        self.dashboard.set_restore_running(True)
        self.tray.start_action.setEnabled(False)
        for tab in (self.users, self.jobs, self.agents):
            tab.hold(True)

    def on_restore_finished(self, _result: object) -> None:
        """The users and jobs now shown may be those from before the restore: read them again."""
        self.dashboard.set_restore_running(False)
        self.tray.set_state(self.supervisor.state)
        for tab in (self.users, self.jobs, self.agents):
            tab.refresh()  # while still held: it waits, and runs once below (not twice)
            tab.hold(False)

    def on_info_changed(self, info: dict | None) -> None:
        self.client.refresh(info)
        self.dashboard.set_state(self.supervisor.state, info)

    def on_supervisor_event(self, text: str) -> None:
        self.dashboard.append_output(f"[console] {text}")
        self.statusBar().showMessage(text.splitlines()[0], 15_000)
        # Every failure the supervisor reports ("would not start", "crashed after ...") comes with CRASHED.
        if self.supervisor.state == CRASHED:
            self.dashboard.add_event_alert(text)
            self.tray.notify("Office Appliance server", text.splitlines()[0])

    # --- status ----------------------------------------------------------------

    def on_status(self, status: dict) -> None:
        self._failures = 0
        self.last_status = status
        self.supervisor.mark_reachable(True)
        self.dashboard.show_status(status)
        self.traffic.add_status(status)
        for key, alert in keyed_alerts_from_status(status):
            self._notify_once(key, alert)
        self.status_received.emit(status)

    def on_status_failed(self, reason: str) -> None:
        self._failures += 1
        if self._failures >= UNREACHABLE_AFTER:
            self.supervisor.mark_reachable(False)
            self.statusBar().showMessage(f"The server does not answer: {reason}", 10_000)

    # --- commands --------------------------------------------------------------

    def on_start_requested(self) -> None:
        if self.backups.restoring:
            self.statusBar().showMessage("A restore is running; the server can start when it is done.", 10_000)
            return
        self.dashboard.clear_event_alerts()
        self.supervisor.start()

    def on_restart_requested(self) -> None:
        self.dashboard.clear_event_alerts()
        self.supervisor.restart()

    def on_stop_requested(self) -> None:
        self.supervisor.stop()

    def on_quit_requested(self) -> None:
        """Quit from the tray: stop a server this console started, leave an attached one running."""
        if self.supervisor.owns_child:
            self._stop_then_quit()
        else:
            self._quit_now()

    def _stop_then_quit(self) -> None:
        def done(state: str) -> None:
            if state in (STOPPED, CRASHED):
                self._quit_now()

        self.quitting = True
        self.supervisor.auto_restart = False
        self.supervisor.state_changed.connect(done)
        self.supervisor.stop()
        self.hide()

    def _quit_now(self) -> None:
        """Close for good: :meth:`closeEvent` sees ``quitting`` and runs :meth:`_shut_down`."""
        self.quitting = True
        self.close()

    def _shut_down(self) -> None:
        """The one end of the console: stop polling and watching, leave the tray, quit the application
        (when standalone). A server is left as it is: those who mean to stop it do so first."""
        self.quitting = True
        self.poller.stop()
        self.supervisor.shutdown_watch()
        self.tray.hide()
        if self.standalone:
            QApplication.instance().quit()

    def ask_close(self) -> str:
        """Ask what closing the window means: KEEP the server running, STOP it, or CANCEL."""
        box = QMessageBox(self)
        box.setWindowTitle("Close the console")
        owned = self.supervisor.owns_child
        if owned:
            box.setText(
                "The server keeps serving the office only while this console runs it.\n"
                "Keep it running in the background (in the tray), or stop it?"
            )
            keep = box.addButton("Keep running in the background", QMessageBox.ButtonRole.AcceptRole)
        else:
            box.setText("The server runs on its own (for example as a service). Leave it running, or stop it?")
            keep = box.addButton("Leave it running", QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop the server", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        if clicked is keep:
            return KEEP
        if clicked is stop:
            return STOP
        return CANCEL

    def closeEvent(self, event: QCloseEvent) -> None:
        nothing_to_keep = self.supervisor.state in (STOPPED, CRASHED) and not self.supervisor.owns_child
        if not self.quitting and not nothing_to_keep:
            choice = self.ask_close()
            if choice == CANCEL:
                event.ignore()
                return
            if choice == STOP:
                event.ignore()
                self._stop_then_quit()
                return
            if self.supervisor.owns_child:
                # The child lives as long as this process: hide to the tray instead of quitting.
                event.ignore()
                self._keep_in_background()
                return
        event.accept()
        self._shut_down()

    def _keep_in_background(self) -> None:
        if not QSystemTrayIcon.isSystemTrayAvailable():
            # No tray to come back from: a hidden window would be an invisible process. Minimise instead.
            self.showMinimized()
            self.statusBar().showMessage(
                "There is no system tray here, so the console was minimised: the server runs as long as "
                "this window stays open (minimised).",
                30_000,
            )
            return
        self.hide()
        self.tray.notify("Office Appliance", "The server keeps running; the console is in the tray.", False)
