"""The server runner: one parent process, several Waitress workers on one socket.

The parent binds the listening socket, holds the home's lock, writes the run
files (``server.json``, ``control.token``), starts the worker processes that
serve HTTP on that socket, replaces a worker that dies, relays their logs into
the rotating files and, on SIGINT/SIGTERM, stops everything in order: workers
stop accepting, finish their in-flight requests, exit; the run files are
removed and the parent exits 0.

It serves any WSGI application: the caller names a factory as
``"module:function"``, called in each worker as ``factory(instance, runtime)``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import json
import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import peewee
import psutil

from appliance import __version__
from appliance.config.home import Instance, check_writable, write_private_file
from appliance.errors import MigrationRequired, StartupRefused
from appliance.server.logs import LogFiles, configure_parent_logging, relay_worker_output
from appliance.server.metrics import MAX_SLOTS, create_metrics_file
from appliance.storage.db import describe_database_error, open_database
from appliance.storage.locks import FileLock, is_locked
from appliance.storage.migrate import apply_migrations, pending_migrations, unknown_migrations

log = logging.getLogger("appliance.server")

# POSIX workers inherit the listening socket's descriptor. Elsewhere (Windows) the
# socket is handed over with socket.share(), and one worker is started.
CAN_SHARE_SOCKET = os.name == "posix"


@dataclass
class ServerRuntime:
    """What a worker's application learns about the server it runs in."""

    slot: int
    workers: int
    started_at: str
    control_token: str | None


# --- the home lock -------------------------------------------------------


class HomeLock(FileLock):
    """An exclusive OS lock on ``run/server.lock``: released by the OS when the process dies,
    so a stale file left by a killed server never blocks a new one (see :mod:`appliance.locks`)."""


def is_home_locked(path: Path) -> bool:
    """Whether a server holds the lock of the home whose lock file is ``path``."""
    return is_locked(path)


def read_server_info(instance: Instance) -> dict | None:
    """The running server's ``server.json``, or ``None`` when no server holds the home's lock."""
    if not is_home_locked(instance.paths.server_lock):
        return None
    try:
        return json.loads(instance.paths.server_json.read_text())
    except (OSError, ValueError):
        return {}


# --- the socket -------------------------------------------------------------


def _listens_on(process: psutil.Process, port: int) -> bool:
    try:
        return any(
            c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
            for c in process.net_connections(kind="inet")
        )
    except psutil.Error:
        return False


def port_holder(port: int) -> str | None:
    """Describe the process listening on ``port`` ("python3 (pid 1234)"), when it can be seen.

    Several processes share a listening socket (our own server: a parent and its
    workers); the one named is the eldest ancestor that still listens on it.
    """
    try:
        pid = next(
            (
                conn.pid
                for conn in psutil.net_connections(kind="inet")
                if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid
            ),
            None,
        )
    except (psutil.Error, OSError):
        return None
    if pid is None:
        return None
    try:
        holder = psutil.Process(pid)
        parent = holder.parent()
        while parent is not None and _listens_on(parent, port):
            holder, parent = parent, parent.parent()
        return f"{holder.name()} (pid {holder.pid})"
    except psutil.Error:
        return f"pid {pid}"


def bind_socket(host: str, port: int, backlog: int) -> socket.socket:
    """Bind and listen; raises :class:`StartupRefused` naming the port (and its holder) when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name == "posix":
        # Lets a restarted server bind while old connections sit in TIME_WAIT;
        # on Linux it never lets two live listeners share the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            holder = port_holder(port)
            who = f" by {holder}" if holder else ""
            raise StartupRefused(f"port {port} on {host} is already in use{who}; choose another with --port") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise StartupRefused(
                f"not allowed to listen on port {port} on {host} (ports below 1024 need privileges)"
            ) from None
        raise StartupRefused(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(backlog)
    return sock


def url_for(host: str, port: int) -> str:
    """The URL to print and to write in server.json: a wildcard address becomes this machine's loopback."""
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


# --- the supervisor ---------------------------------------------------------


@dataclass
class WorkerSlot:
    slot: int
    process: subprocess.Popen | None = None
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

    def start_worker(self, slot: WorkerSlot) -> None:
        if CAN_SHARE_SOCKET:
            slot.process = subprocess.Popen(
                self._command(slot.slot),
                pass_fds=(self.sock.fileno(),),
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
        else:  # pragma: no cover - Windows: no fd inheritance; hand the socket over with socket.share()
            slot.process = subprocess.Popen(self._command(slot.slot), stdout=subprocess.PIPE, stdin=subprocess.PIPE)
            shared = self.sock.share(slot.process.pid)  # type: ignore[attr-defined]
            slot.process.stdin.write(base64.b64encode(shared) + b"\n")
            slot.process.stdin.close()
        slot.started = self.clock()
        if self.logs is not None:
            slot.relay = threading.Thread(
                target=relay_worker_output,
                args=(slot.process.stdout, self.logs),
                name=f"relay-{slot.slot}",
                daemon=True,
            )
            slot.relay.start()
        log.info("worker started", extra={"slot": slot.slot, "worker_pid": slot.process.pid})

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
                self.start_worker(slot)
                events.append(f"worker {slot.slot} started (pid {slot.process.pid})")
        return events

    def alive(self) -> list[int]:
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


# --- the entry point ---------------------------------------------------------


def _prepare_database(instance: Instance) -> None:
    try:
        _migrate_or_refuse(instance)
    except peewee.DatabaseError as exc:
        raise StartupRefused(f"cannot use the database: {describe_database_error(exc)}") from None


def _migrate_or_refuse(instance: Instance) -> None:
    db = open_database(instance)
    try:
        db.connect(reuse_if_open=True)
        newer = unknown_migrations(db)
        if newer:
            raise StartupRefused(
                f"the database was migrated by a newer version of Office Appliance ({', '.join(newer)}); upgrade the software"
            )
        pending = pending_migrations(db)
        if pending:
            if not instance.settings.migrate_on_start:
                raise MigrationRequired(
                    f"the database needs {len(pending)} migration(s) ({', '.join(pending)}); "
                    f"run `appliance migrate --home {shlex.quote(str(instance.home))}`"
                )
            applied = apply_migrations(db)
            log.info("migrations applied", extra={"migrations": applied})
    finally:
        if not db.is_closed():
            db.close()


STARTUP_TIMEOUT_SECONDS = 60.0


# The parent's own start-up probe says who it is (with the control token), so that
# the request metrics and the access log leave it out.
PROBE_HEADER = "X-Appliance-Probe"


def _wait_until_serving(
    url: str, supervisor: Supervisor, stop: threading.Event, timeout: float, probe_token: str
) -> bool:
    """Wait until a worker answers ``/healthz`` on the shared socket (replacing workers that die meanwhile).

    Returns ``False`` when none answered in ``timeout`` seconds or a stop was asked for first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        supervisor.poll_once()
        probe = urllib.request.Request(url + "healthz", headers={PROBE_HEADER: probe_token})
        try:
            with urllib.request.urlopen(probe, timeout=2) as answer:
                if answer.status == 200:
                    return True
        except (OSError, ValueError):
            pass
        stop.wait(0.1)
    return False


def worker_count(instance: Instance) -> int:
    """Workers to start: the setting, or one per core when it is 0; one where sockets cannot be shared."""
    if not CAN_SHARE_SOCKET:
        return 1
    return instance.settings.workers or min(os.cpu_count() or 1, MAX_SLOTS)


def run_server(
    instance: Instance,
    app_factory: str,
    *,
    host: str | None = None,
    port: int | None = None,
    say: Callable[[str], None] = print,
    on_ready: Callable[[str], None] | None = None,
    services: list | None = None,
) -> int:
    """Serve ``app_factory`` from ``instance`` until SIGINT/SIGTERM; returns the exit status (0).

    Raises :class:`StartupRefused`, :class:`HomeError`, :class:`MigrationRequired`
    or :class:`SettingsError` before anything is served when it cannot start.

    ``services`` are objects with ``start()``/``stop()`` run in this parent
    process: started after the workers, stopped before them. ``None`` means
    the core's own (the job scheduler, :func:`appliance.scheduler.server_services`).
    """
    settings = instance.settings
    host = host if host is not None else settings.host
    port = port if port is not None else settings.port
    check_writable(instance.home)
    lock = HomeLock(instance.paths.server_lock)
    if not lock.acquire():
        info = {}
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(instance.paths.server_json.read_text())
        where = f" (pid {info['pid']}, {info['url']})" if info.get("pid") else ""
        raise StartupRefused(f"another server is already running on the home {instance.home}{where}")
    logs: LogFiles | None = None
    sock: socket.socket | None = None
    supervisor: Supervisor | None = None
    started_services: list = []
    try:
        logs = configure_parent_logging(instance)
        from appliance.backups.restore import recover_interrupted_restore

        recovered = recover_interrupted_restore(instance.paths)
        if recovered:
            log.warning(recovered)
        _prepare_database(instance)
        from appliance.records.csv_io import recover_interrupted_imports  # imports a dead worker left half-written

        for line in recover_interrupted_imports(instance.paths):
            log.warning(line)
        sock = bind_socket(host, port, settings.backlog)
        sock.set_inheritable(True)
        bound_port = sock.getsockname()[1]
        url = url_for(host, bound_port)
        workers = worker_count(instance)
        started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        control_token = secrets.token_urlsafe(32)
        write_private_file(instance.paths.control_token, control_token.encode())
        create_metrics_file(instance.paths.metrics_file, workers)

        # Workers get the parent's parsed settings, not the file: a bad edit made while
        # the server runs must not crash-loop a replacement worker, and all workers
        # must serve with the same values.
        write_private_file(instance.paths.worker_settings, json.dumps(settings.values).encode())

        stop = threading.Event()
        force = threading.Event()

        def request_stop(signum: int, _frame: object) -> None:
            if stop.is_set():
                force.set()  # a second Ctrl+C: do not wait for in-flight requests
            stop.set()

        stop_signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
        previous = {sig: signal.signal(sig, request_stop) for sig in stop_signals}
        supervisor = Supervisor(instance, sock, app_factory, workers, logs, started_at)
        supervisor.start()
        if not _wait_until_serving(url, supervisor, stop, STARTUP_TIMEOUT_SECONDS, control_token):
            if not stop.is_set():
                raise StartupRefused(
                    f"no worker could start within {STARTUP_TIMEOUT_SECONDS:.0f} s; "
                    f"see {instance.paths.logs_dir / 'app.log'}"
                )
        else:
            if services is None:
                from appliance.jobs.scheduler import server_services

                services = server_services(instance)
            for service in services:
                service.start()
                started_services.append(service)
            info = {
                "pid": os.getpid(),
                "url": url,
                "host": host,
                "port": bound_port,
                "workers": workers,
                "started_at": started_at,
                "version": __version__,
            }
            tmp = instance.paths.server_json.with_suffix(".tmp")
            tmp.write_text(json.dumps(info, indent=2))
            os.replace(tmp, instance.paths.server_json)
            log.info("server started", extra=info)
            say(
                f"Office Appliance {__version__} serving at {url} ({workers} worker{'s' if workers != 1 else ''}); "
                "press Ctrl+C to stop"
            )
            if on_ready is not None:
                on_ready(url)
        while not stop.is_set():
            supervisor.poll_once()
            stop.wait(0.5)
        say("stopping: letting in-flight requests finish ...")
        log.info("server stopping")
        # New connections are refused from now on: the parent lets go of its copy of
        # the socket, and each worker closes its own as it stops accepting.
        sock.close()
        while started_services:
            started_services.pop().stop()
        supervisor.stop(0 if force.is_set() else settings.shutdown_grace_seconds, force=force)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("server stopped")
        say("stopped")
        return 0
    finally:
        while started_services:
            started_services.pop().stop()
        if supervisor is not None and not supervisor.stopping:
            supervisor.stop(0)
        if sock is not None:
            sock.close()
        for path in (instance.paths.server_json, instance.paths.control_token, instance.paths.worker_settings):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if logs is not None:
            logs.close()
        lock.release()
