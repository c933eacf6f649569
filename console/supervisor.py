"""Finds, starts, watches and restarts the home's server.

If a server already holds the home (the installed service, a terminal), the
console *attaches* to it; otherwise it starts ``python -m appliance serve
--home H`` as a child (QProcess), shows its output, and restarts it after a
crash with back-off (1 s, 2 s, 4 s ... 30 s). ``poll_once`` is one step of
the watch loop: a timer calls it, a test calls it with a fake clock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable

import psutil
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from appliance.config.home import Paths
from appliance.errors import PortInUse
from appliance.server.run_files import read_server_info

STOPPED = "stopped"
STARTING = "starting"
RUNNING = "running"
STOPPING = "stopping"
CRASHED = "crashed"
UNREACHABLE = "unreachable"

MAX_BACKOFF = 30.0
# A child that ran this long before dying is not failing at start-up: its back-off starts again at 1 s.
STABLE_SECONDS = 30.0


class Supervisor(QObject):
    """The server of one home, owned (a child process) or attached (someone else's).

    Signals: ``state_changed(state)``, ``info_changed(server.json dict or None)``,
    ``output(text)`` (the child's stdout/stderr), ``event(text)`` (what the
    supervisor did, in plain words: "The server crashed after 12 s. Restarting it in 1 s.").
    """

    state_changed = Signal(str)
    info_changed = Signal(object)
    output = Signal(str)
    event = Signal(str)

    def __init__(
        self,
        paths: Paths,
        *,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval_ms: int = 500,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.paths = paths
        self.extra_args = tuple(extra_args)
        self.env = env
        self.clock = clock
        self.state = STOPPED
        self.info: dict | None = None
        self.attached = False
        self.process: QProcess | None = None
        self.restarts = 0
        self.restart_at: float | None = None
        self.auto_restart = True
        self.last_output: deque[str] = deque(maxlen=200)
        self.last_exit: int | None = None
        self._started_at = 0.0
        self._stop_requested = False
        self._worker_pids: list[int] = []
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll_once)

    # --- watching ---------------------------------------------------------

    def watch(self) -> None:
        """Start the periodic ``poll_once`` (and run one now)."""
        self.poll_once()
        self._timer.start()

    def shutdown_watch(self) -> None:
        self._timer.stop()

    @property
    def owns_child(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    @property
    def child_pid(self) -> int | None:
        if self.process is None:
            return None
        pid = self.process.processId()
        return pid or None

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _set_info(self, info: dict | None) -> None:
        if info != self.info:
            self.info = info
            self.info_changed.emit(info)

    def poll_once(self) -> str:
        """One step: read the run files, notice a server that came or went, restart a crashed child when due.

        Returns the state after the step.
        """
        info = read_server_info(self.paths)
        now = self.clock()
        if self.owns_child:
            pid = self.child_pid
            if info and info.get("pid") == pid:
                self._set_info(info)
                self._remember_workers(pid)
                # UNREACHABLE is the status poller's verdict, undone only by mark_reachable: the run
                # files say the child lives, not that it answers.
                if self.state in (STARTING, CRASHED):
                    self._set_state(RUNNING)
                    if self.restarts and now - self._started_at > STABLE_SECONDS:
                        self.restarts = 0
            return self.state
        if self.state == CRASHED and self.restart_at is not None:
            if info:
                # Someone else started a server meanwhile: attach to it instead.
                self.restart_at = None
                self._attach(info)
            elif now >= self.restart_at:
                self.restart_at = None
                self.event.emit(f"Restarting the server (attempt {self.restarts}).")
                self._spawn()
            return self.state
        if info:
            if not self.attached or self._is_another_server(info):
                self._attach(info)
            else:
                # The same server as before: a stop it was asked for (STOPPING) or the poller's
                # UNREACHABLE stays as it is until the server goes or answers again.
                self._set_info(info)
                if self.state in (STARTING, CRASHED):
                    self._set_state(RUNNING)
        elif self.attached or self.state in (RUNNING, UNREACHABLE, STOPPING):
            if self.attached and self.state in (RUNNING, UNREACHABLE) and not self._stop_requested:
                self.event.emit("The server this console was attached to has stopped.")
            self.attached = False
            self._stop_requested = False
            self._set_info(None)
            self._set_state(STOPPED)
        return self.state

    def _is_another_server(self, info: dict) -> bool:
        """Whether ``info`` names another process than the one attached to (the old one went, a new one came)."""
        known = (self.info or {}).get("pid")
        return info.get("pid") is not None and known is not None and info.get("pid") != known

    def _attach(self, info: dict) -> None:
        # A stop asked of the previous server is done: this is another one.
        self._stop_requested = False
        self.attached = True
        self._set_info(info)
        self._set_state(RUNNING)
        self.event.emit(
            f"Attached to the server already running at {info.get('url', '?')} (pid {info.get('pid', '?')})."
        )

    def mark_reachable(self, reachable: bool) -> None:
        """The status poller's verdict: a running server that does not answer is *unreachable*."""
        if not reachable and self.state == RUNNING:
            self._set_state(UNREACHABLE)
        elif reachable and self.state == UNREACHABLE:
            self._set_state(RUNNING)

    def _remember_workers(self, pid: int | None) -> None:
        if pid is None:
            return
        with contextlib.suppress(psutil.Error):
            self._worker_pids = [child.pid for child in psutil.Process(pid).children()]

    # --- commands ---------------------------------------------------------

    def start(self) -> bool:
        """Attach to a running server, or start one; ``False`` when one is already running or starting."""
        if self.owns_child or self.state in (RUNNING, STARTING):
            return False
        info = read_server_info(self.paths)
        if info:
            self._attach(info)
            return False
        if info is not None:
            # The home's lock is held but no server describes itself: a restore (or a server still
            # starting) owns the home; a child started now would only be refused.
            self.event.emit("The home is busy (a restore, or a server starting): try again in a moment.")
            return False
        self.restarts = 0
        self.restart_at = None
        self._spawn()
        return True

    def _spawn(self) -> None:
        self._stop_requested = False
        self.attached = False
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        for key, value in (self.env or {}).items():
            environment.insert(key, value)
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self.on_ready_read)
        process.finished.connect(self.on_finished)
        process.errorOccurred.connect(self.on_error_occurred)
        self.process = process
        self._started_at = self.clock()
        self._set_state(STARTING)
        args = ["-m", "appliance", "serve", "--home", str(self.paths.home), *self.extra_args]
        process.start(sys.executable, args)

    def stop(self) -> bool:
        """Stop the server (a child or an attached one) with SIGTERM; ``False`` when none runs."""
        self.restart_at = None
        if self.owns_child:
            self._stop_requested = True
            self._set_state(STOPPING)
            self.process.terminate()
            grace = 20_000
            QTimer.singleShot(grace, self._kill_if_still_running)
            return True
        if self.state == CRASHED:
            self._set_state(STOPPED)
            return True
        info = read_server_info(self.paths)
        pid = (info or {}).get("pid")
        if not pid:
            return False
        self._stop_requested = True
        self._set_state(STOPPING)
        try:
            os.kill(int(pid), signal.SIGTERM)
        except OSError as exc:
            self._set_state(RUNNING)
            self.event.emit(f"Could not stop the server (pid {pid}): {exc.strerror}.")
            return False
        return True

    def restart(self) -> None:
        """Stop, then start again once the old server has let go of the home."""
        if self.state in (STOPPED, CRASHED):
            self.start()
            return

        def again(state: str) -> None:
            if state == STOPPED:
                self.state_changed.disconnect(again)
                self.start()

        self.state_changed.connect(again)
        if not self.stop():
            self.state_changed.disconnect(again)
            self.start()

    def _kill_if_still_running(self) -> None:
        if self._stop_requested and self.owns_child:
            self.event.emit("The server did not stop in time; killing it.")
            self.process.kill()

    # --- the child's signals -------------------------------------------------

    def on_ready_read(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self.last_output.append(line)
        if text:
            self.output.emit(text)

    def on_error_occurred(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.event.emit(f"The server could not be started: {self.process.errorString()}.")
            self.process = None
            self._set_state(STOPPED)

    def on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self.on_ready_read()
        self.last_exit = code
        self.process = None
        self._stop_orphaned_workers()
        self._set_info(None)
        if self._stop_requested:
            self._stop_requested = False
            self.event.emit("The server stopped.")
            self._set_state(STOPPED)
            return
        lived = self.clock() - self._started_at
        never_started = self.state == STARTING
        how = "crashed" if status == QProcess.ExitStatus.CrashExit else f"exited with status {code}"
        if never_started:
            last_words = self.last_lines(5) or "no output"
            message = f"The server would not start ({how}). Its last words:\n{last_words}"
        else:
            message = f"The server {how} after {lived:.0f} s."
        port_in_use = never_started and status == QProcess.ExitStatus.NormalExit and code == PortInUse.exit_status
        if not self.auto_restart or port_in_use:
            # A port held by another program will not free itself: restarting would only spin.
            self._set_state(CRASHED)
            self.event.emit(message)
            return
        self.restarts = self.restarts + 1 if lived < STABLE_SECONDS else 1
        delay = min(MAX_BACKOFF, 2.0 ** (self.restarts - 1))
        self.restart_at = self.clock() + delay
        self._set_state(CRASHED)
        self.event.emit(f"{message} Restarting it in {delay:.0f} s.")

    def _stop_orphaned_workers(self) -> None:
        """A parent killed hard leaves its workers serving on the old socket: stop them before a restart."""
        for pid in self._worker_pids:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if "appliance.server.worker" in " ".join(proc.cmdline()):
                    proc.terminate()
        self._worker_pids = []

    def last_lines(self, count: int = 10) -> str:
        """The child's last ``count`` lines of output, for an error message."""
        return "\n".join(list(self.last_output)[-count:])
