"""Console fixtures: a home with a fixed free port and one worker, and a main window over it."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import psutil
import pytest

from appliance.config.home import Paths
from appliance.config.settings import write_settings
from console.supervisor import Supervisor


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def console_home(home: Path) -> Path:
    """The ``home`` fixture with a free fixed port and one worker (the CI machine has two cores)."""
    write_settings(home / "appliance.toml", {"port": free_port(), "workers": 1, "shutdown_grace_seconds": 2.0})
    return home


def _kill_tree(pid: int | None) -> None:
    if not pid:
        return
    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(pid)
        children = parent.children(recursive=True)
        for proc in [*children, parent]:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs([*children, parent], timeout=5)


@pytest.fixture
def make_window(qtbot):
    """Build main windows over a home; at the end, stop what they started (killing it if it lingers)."""
    from console.window import MainWindow

    windows = []

    def make(home: Path, **supervisor_options) -> MainWindow:
        paths = Paths(home)
        supervisor = Supervisor(paths, interval_ms=200, **supervisor_options)
        window = MainWindow(paths, supervisor=supervisor, status_interval_ms=300)
        # pytest-qt closes the window before this fixture's teardown: answer the close question without a dialog.
        window.ask_close = lambda: "keep"
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.quitting = True
        sup = window.supervisor
        sup.auto_restart = False
        sup.shutdown_watch()
        window.poller.stop()
        if sup.owns_child:
            pid = sup.child_pid
            sup.stop()
            with contextlib.suppress(Exception):
                qtbot.waitUntil(lambda s=sup: not s.owns_child, timeout=10_000)
            _kill_tree(pid)
        sup._stop_orphaned_workers()


@pytest.fixture
def window(make_window, console_home: Path):
    return make_window(console_home)


def wait_state(qtbot, supervisor: Supervisor, state: str, timeout: int = 20_000) -> None:
    """Wait until the supervisor reaches ``state`` (it may already be there)."""
    qtbot.waitUntil(lambda: supervisor.state == state, timeout=timeout)


@pytest.fixture
def paths(console_home: Path) -> Paths:
    return Paths(console_home)
