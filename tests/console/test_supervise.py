"""Starting, watching, stopping, restarting and attaching to a real server from the console."""

from __future__ import annotations

import json
import os
import signal
import socket

import psutil
from PySide6.QtCore import QProcess

from appliance.config.home import Paths, open_instance
from appliance.errors import PortInUse
from appliance.server.run_files import read_server_info
from console.supervisor import CRASHED, RUNNING, STARTING, STOPPED, STOPPING, UNREACHABLE, Supervisor
from console.window import KEEP
from tests.conftest import start_server
from tests.console.conftest import wait_state


def test_the_console_starts_a_server_and_shows_its_status(qtbot, window, console_home):
    with qtbot.waitSignal(window.status_received, timeout=30_000) as blocker:
        window.start_watching()
    status = blocker.args[0]
    assert window.supervisor.state == RUNNING
    assert window.supervisor.owns_child
    info = json.loads((console_home / "run" / "server.json").read_text())
    assert info["pid"] == window.supervisor.child_pid
    assert window.dashboard.url_label.text() == info["url"]
    assert window.dashboard.figures["version"].text() == status["version"]
    assert window.dashboard.figures["port"].text() == str(info["port"])
    assert window.dashboard.figures["uptime"].text() != "—"
    assert "Running" in window.dashboard.state_label.text()
    assert not window.dashboard.start_button.isEnabled()


def test_the_stop_button_stops_the_server_and_frees_the_home(qtbot, window, console_home):
    window.start_watching()
    wait_state(qtbot, window.supervisor, RUNNING)
    with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == STOPPED, timeout=20_000):
        window.dashboard.stop_button.click()
    assert read_server_info(Paths(console_home)) is None
    assert not (console_home / "run" / "server.json").exists()
    assert window.dashboard.start_button.isEnabled()
    assert window.dashboard.url_label.text() == "—"


def test_a_killed_server_is_restarted_and_the_console_says_so(qtbot, window, console_home):
    window.start_watching()
    wait_state(qtbot, window.supervisor, RUNNING)
    first = window.supervisor.child_pid
    workers = [p.pid for p in psutil.Process(first).children()]
    assert workers
    window.supervisor.poll_once()  # remembers the workers
    with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == CRASHED, timeout=10_000):
        os.kill(first, signal.SIGKILL)
    assert "Restarting it in 1 s" in window.dashboard.output_view.toPlainText()
    assert any("crashed" in text or "exited" in text for text in window.dashboard.alerts())
    assert window.tray.notifications
    wait_state(qtbot, window.supervisor, RUNNING, timeout=30_000)
    assert window.supervisor.child_pid != first
    # The dead parent's workers were stopped: the new server could bind the same port.
    qtbot.waitUntil(
        lambda: (
            not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in workers)
        ),
        timeout=10_000,
    )
    info = json.loads((console_home / "run" / "server.json").read_text())
    assert info["pid"] == window.supervisor.child_pid


def test_the_console_attaches_to_a_server_that_already_runs(qtbot, make_window, console_home):
    server = start_server(console_home, workers=1)
    try:
        window = make_window(console_home)
        with qtbot.waitSignal(window.status_received, timeout=20_000):
            window.start_watching()
        assert window.supervisor.attached
        assert not window.supervisor.owns_child
        assert window.supervisor.state == RUNNING
        assert window.dashboard.url_label.text() == server.url
        assert "Attached" in window.dashboard.output_view.toPlainText()
        # Stopping an attached server asks it to stop (SIGTERM) and notices when it has.
        with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == STOPPED, timeout=20_000):
            window.supervisor.stop()
        assert server.process.wait(timeout=10) == 0
    finally:
        server.stop()


def test_a_server_that_fails_at_start_is_retried_with_growing_back_off(qtbot, console_home):
    now = [1000.0]
    supervisor = Supervisor(Paths(console_home), extra_args=("--port", "70000"), clock=lambda: now[0])
    events = []
    supervisor.event.connect(events.append)
    with qtbot.waitSignal(supervisor.state_changed, check_params_cb=lambda s: s == CRASHED, timeout=20_000):
        supervisor.start()
    assert supervisor.restart_at == 1001.0
    assert "would not start" in events[-1] and "70000" in events[-1]
    assert supervisor.poll_once() == CRASHED  # not due yet: nothing happens
    now[0] = 1001.0
    with qtbot.waitSignal(supervisor.state_changed, check_params_cb=lambda s: s == CRASHED, timeout=20_000):
        assert supervisor.poll_once() == STARTING
    assert supervisor.restart_at == 1003.0  # 2 s after the second failure
    supervisor.stop()
    assert supervisor.state == STOPPED
    assert supervisor.restart_at is None


def test_a_port_in_use_names_its_holder_and_is_not_retried(qtbot, window, console_home):
    port = open_instance(console_home).settings.port
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == CRASHED, timeout=20_000):
            window.start_watching()
        text = window.dashboard.output_view.toPlainText()
        assert f"port {port}" in text and "already in use" in text
        assert f"pid {os.getpid()}" in text
        assert window.supervisor.restart_at is None
        assert window.dashboard.alerts()
    finally:
        holder.close()


def _stays(qtbot, window, state: str, cycles: int = 4) -> list[str]:
    """Run supervisor polls and wait for status failures for a few cycles; returns the states it went through."""
    seen: list[str] = []
    window.supervisor.state_changed.connect(seen.append)
    try:
        for _ in range(cycles):
            assert window.supervisor.poll_once() == state
            with qtbot.waitSignal(window.poller.failed, timeout=10_000):
                pass
    finally:
        window.supervisor.state_changed.disconnect(seen.append)
    return seen


def test_a_running_server_that_does_not_answer_is_shown_as_unreachable(qtbot, window):
    with qtbot.waitSignal(window.status_received, timeout=30_000):
        window.start_watching()
    real_url = window.client.base_url
    window.client.base_url = "http://127.0.0.1:9/"  # nothing listens there: the status requests fail
    with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == UNREACHABLE, timeout=10_000):
        pass
    # The child's run files still say it lives: that must not flip the state back to running.
    assert _stays(qtbot, window, UNREACHABLE) == []
    assert "Not answering" in window.dashboard.state_label.text()
    window.client.base_url = real_url
    with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == RUNNING, timeout=10_000):
        pass


def test_an_attached_server_that_does_not_answer_stays_unreachable_without_re_attaching(
    qtbot, make_window, console_home
):
    server = start_server(console_home, workers=1)
    try:
        window = make_window(console_home)
        with qtbot.waitSignal(window.status_received, timeout=20_000):
            window.start_watching()
        assert window.supervisor.attached
        window.client.base_url = "http://127.0.0.1:9/"
        with qtbot.waitSignal(
            window.supervisor.state_changed, check_params_cb=lambda s: s == UNREACHABLE, timeout=10_000
        ):
            pass
        assert _stays(qtbot, window, UNREACHABLE) == []
        assert window.dashboard.output_view.toPlainText().count("Attached to the server") == 1
        window.client.refresh(window.supervisor.info)
        with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == RUNNING, timeout=10_000):
            pass
        assert window.dashboard.output_view.toPlainText().count("Attached to the server") == 1
    finally:
        server.stop()


def test_stopping_an_attached_server_that_is_slow_to_go_stays_stopping_until_it_is_gone(
    qtbot, make_window, console_home
):
    server = start_server(console_home, workers=1)
    try:
        window = make_window(console_home)
        with qtbot.waitSignal(window.status_received, timeout=20_000):
            window.start_watching()
        supervisor = window.supervisor
        states: list[str] = []
        supervisor.state_changed.connect(states.append)
        # A paused server keeps its lock and run files after SIGTERM, like one finishing a long request.
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            assert supervisor.stop()
            for _ in range(3):
                assert supervisor.poll_once() == STOPPING
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        wait_state(qtbot, supervisor, STOPPED)
        assert states == [STOPPING, STOPPED]
        assert window.dashboard.output_view.toPlainText().count("Attached to the server") == 1
        assert server.process.wait(timeout=10) == 0
    finally:
        server.stop()


def test_the_console_does_not_start_a_server_while_a_restore_holds_the_home(qtbot, console_home):
    from appliance.storage.locks import FileLock

    paths = Paths(console_home)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(paths)
    events: list[str] = []
    supervisor.event.connect(events.append)
    with FileLock(paths.server_lock) as lock:
        assert lock.acquire()  # what a restore holds while it swaps the database
        assert supervisor.start() is False
    assert supervisor.state == STOPPED and supervisor.process is None
    assert "busy" in events[-1]


def test_closing_the_window_can_keep_the_server_running_in_the_background(qtbot, window, console_home, monkeypatch):
    from PySide6.QtWidgets import QSystemTrayIcon

    with qtbot.waitSignal(window.status_received, timeout=30_000):
        window.start_watching()
    window.show()
    qtbot.waitExposed(window)
    window.ask_close = lambda: KEEP
    # Without a system tray there is nothing to come back from: the window is minimised, not hidden.
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: False))
    window.close()
    assert window.isVisible() and window.isMinimized()
    assert "no system tray" in window.statusBar().currentMessage()
    window.bring_to_front()
    assert not window.isMinimized()

    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
    window.close()
    assert not window.isVisible()
    assert window.supervisor.owns_child and window.supervisor.state == RUNNING
    assert read_server_info(Paths(console_home))["pid"] == window.supervisor.child_pid
    window.bring_to_front()  # what the tray's "Open console" and a second launch do
    assert window.isVisible()


def test_only_the_port_in_use_exit_status_stops_the_restarts_not_the_words(qtbot, console_home):
    now = [1000.0]
    supervisor = Supervisor(Paths(console_home), clock=lambda: now[0])
    supervisor._set_state(STARTING)
    supervisor.last_output.append("error: port 1 on 127.0.0.1 is already in use")
    supervisor.on_finished(1, QProcess.ExitStatus.NormalExit)
    assert supervisor.state == CRASHED
    assert supervisor.restart_at == 1001.0  # retried: the words in its output are not the signal

    supervisor.restart_at = None
    supervisor._set_state(STARTING)
    supervisor.on_finished(PortInUse.exit_status, QProcess.ExitStatus.NormalExit)
    assert supervisor.state == CRASHED
    assert supervisor.restart_at is None
