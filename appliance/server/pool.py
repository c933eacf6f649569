"""The worker pool: starts the worker processes on the shared socket, watches them and replaces those
that die (with back-off), and stops them in order."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.config.home import Instance
from appliance.server.logs import LogFiles, relay_worker_output
from appliance.server.metrics import MAX_SLOTS

log = logging.getLogger("appliance.server")

# POSIX workers inherit the listening socket's descriptor. Elsewhere (Windows) the
# socket is handed over with socket.share(), and one worker is started.
CAN_SHARE_SOCKET = os.name == "posix"


def worker_count(instance: Instance) -> int:
    """Workers to start: the setting, or one per core when it is 0; one where sockets cannot be shared."""
    if not CAN_SHARE_SOCKET:
        return 1
    workers: int = instance.settings.workers or min(os.cpu_count() or 1, MAX_SLOTS)
    return workers


@dataclass
class WorkerSlot:
    """One place in the pool: the process serving in it now, and its restart history."""

    slot: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    relay: threading.Thread | None = None


@dataclass
class Supervisor:
    """Starts, watches and replaces the worker processes; ``poll_once`` is one step of its loop."""

    instance: Instance
    sock: socket.socket
    app_factory: str
    workers: int
    logs: LogFiles | None
    started_at: str
    slots: list[WorkerSlot] = field(default_factory=list)
    stopping: bool = False
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.slots = [WorkerSlot(i) for i in range(self.workers)]

    def _command(self, slot: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "appliance.server.worker",
            "--home",
            str(self.instance.home),
            "--fd",
            str(self.sock.fileno() if CAN_SHARE_SOCKET else -1),
            "--slot",
            str(slot),
            "--workers",
            str(self.workers),
            "--factory",
            self.app_factory,
            "--started-at",
            self.started_at,
            "--parent-pid",
            str(os.getpid()),
        ]

    def start_worker(self, slot: WorkerSlot) -> subprocess.Popen[bytes]:
        """Start the worker of ``slot`` (and the thread relaying its log lines); returns its process."""
        if CAN_SHARE_SOCKET:
            process = subprocess.Popen(
                self._command(slot.slot),
                pass_fds=(self.sock.fileno(),),
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
        else:  # pragma: no cover - Windows: no fd inheritance; hand the socket over with socket.share()
            process = subprocess.Popen(self._command(slot.slot), stdout=subprocess.PIPE, stdin=subprocess.PIPE)
            shared = self.sock.share(process.pid)  # type: ignore[attr-defined]
            assert process.stdin is not None
            process.stdin.write(base64.b64encode(shared) + b"\n")
            process.stdin.close()
        slot.process = process
        slot.started = self.clock()
        if self.logs is not None:
            slot.relay = threading.Thread(
                target=relay_worker_output,
                args=(process.stdout, self.logs),
                name=f"relay-{slot.slot}",
                daemon=True,
            )
            slot.relay.start()
        log.info("worker started", extra={"slot": slot.slot, "worker_pid": process.pid})
        return process

    def start(self) -> None:
        for slot in self.slots:
            self.start_worker(slot)

    def poll_once(self) -> list[str]:
        """Check every worker once; replace those that died. Returns what happened, for logs and tests."""
        events = []
        now = self.clock()
        for slot in self.slots:
            proc = slot.process
            if proc is not None and proc.poll() is None:
                continue
            if self.stopping:
                continue
            if proc is not None:
                code = proc.returncode
                lived = now - slot.started
                # A worker that dies young is probably failing at start-up: back off
                # (1 s, 2 s, 4 s ... 30 s) instead of spinning.
                slot.restarts = slot.restarts + 1 if lived < 5 else 0
                delay = min(30.0, 2 ** max(slot.restarts - 1, 0)) if slot.restarts else 0.0
                slot.next_start = now + delay
                slot.process = None
                msg = f"worker {slot.slot} (pid {proc.pid}) exited with status {code}; replacing it"
                if delay:
                    msg += f" in {delay:.0f} s"
                log.error(msg, extra={"slot": slot.slot, "exit_status": code})
                events.append(msg)
            if slot.process is None and now >= slot.next_start:
                started = self.start_worker(slot)
                events.append(f"worker {slot.slot} started (pid {started.pid})")
        return events

    def alive(self) -> list[int]:
        """The pids of the workers running now."""
        return [s.process.pid for s in self.slots if s.process is not None and s.process.poll() is None]

    def stop(self, grace: float, force: threading.Event | None = None) -> None:
        """Ask every worker to finish its in-flight requests and exit; kill what is left after the grace
        (or at once when ``force`` is set meanwhile: a second Ctrl+C)."""
        self.stopping = True
        procs = [s.process for s in self.slots if s.process is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace + 2.0
        for proc in procs:
            while proc.poll() is None and time.monotonic() < deadline and not (force and force.is_set()):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.1)
            try:
                proc.wait(timeout=0)
            except subprocess.TimeoutExpired:
                log.warning("worker did not stop in time; killing it", extra={"worker_pid": proc.pid})
                proc.kill()
                proc.wait()
        for slot in self.slots:
            if slot.relay is not None:
                slot.relay.join(timeout=2.0)
