"""The server runner: one parent process, several Waitress workers on one socket.

:func:`run_server` is the start and stop sequence of the parent. It holds the
home's lock, prepares the database, binds the listening socket, writes the run
files (:mod:`appliance.server.run_files`), starts the worker pool
(:mod:`appliance.server.pool`) that serves HTTP on that socket and the
services of the parent (the job scheduler) and, on SIGINT/SIGTERM, stops
everything in order: workers stop accepting, finish their in-flight requests,
exit; the run files are removed and the parent exits 0.

It serves any WSGI application: the caller names a factory as
``"module:function"``, called in each worker as ``factory(instance, runtime)``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shlex
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from types import FrameType
from typing import Protocol

import peewee

from appliance import __version__
from appliance.backups.restore import recover_interrupted_restore
from appliance.config.home import Instance, check_writable
from appliance.errors import MigrationRequired, StartupRefused
from appliance.jobs.scheduler import server_services
from appliance.records.csv.recovery import recover_interrupted_imports
from appliance.server.addresses import staff_urls
from appliance.server.logs import LogFiles, configure_parent_logging
from appliance.server.metrics import create_metrics_file
from appliance.server.pool import Supervisor, worker_count
from appliance.server.run_files import (
    HomeLock,
    read_server_info,
    remove_run_files,
    write_control_token,
    write_server_info,
    write_worker_settings,
)
from appliance.server.sockets import bind_socket, url_for
from appliance.storage.db import describe_database_error, open_database
from appliance.storage.migrate import apply_migrations, pending_migrations, unknown_migrations

log = logging.getLogger("appliance.server")


class Service(Protocol):
    """Something the parent process runs beside its workers (the job scheduler)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


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


def _refuse_a_second_server(instance: Instance) -> StartupRefused:
    info = read_server_info(instance.paths) or {}
    where = f" (pid {info['pid']}, {info.get('url')})" if info.get("pid") else ""
    return StartupRefused(f"another server is already running on the home {instance.home}{where}")


def _recover(instance: Instance) -> None:
    """Finish what a server (or a restore) killed mid-way left behind, then migrate or refuse."""
    recovered = recover_interrupted_restore(instance.paths)
    if recovered:
        log.warning(recovered)
    _prepare_database(instance)
    for line in recover_interrupted_imports(instance.paths):  # imports a dead worker left half-written
        log.warning(line)


def run_server(
    instance: Instance,
    app_factory: str,
    *,
    host: str | None = None,
    port: int | None = None,
    say: Callable[[str], None] = print,
    on_ready: Callable[[str], None] | None = None,
    services: list[Service] | None = None,
) -> int:
    """Serve ``app_factory`` from ``instance`` until SIGINT/SIGTERM; returns the exit status (0).

    Raises :class:`StartupRefused` (:class:`PortInUse` for a port held by another
    program), :class:`HomeError`, :class:`MigrationRequired` or
    :class:`SettingsError` before anything is served when it cannot start.

    ``services`` are objects with ``start()``/``stop()`` run in this parent
    process: started after the workers, stopped before them. ``None`` means
    the core's own (the job scheduler, :func:`appliance.jobs.scheduler.server_services`).
    """
    settings = instance.settings
    host = host if host is not None else settings.host
    port = port if port is not None else settings.port
    check_writable(instance.home)
    lock = HomeLock(instance.paths.server_lock)
    if not lock.acquire():
        raise _refuse_a_second_server(instance)
    logs: LogFiles | None = None
    sock: socket.socket | None = None
    supervisor: Supervisor | None = None
    started_services: list[Service] = []
    try:
        logs = configure_parent_logging(instance)
        _recover(instance)
        sock = bind_socket(host, port, settings.backlog)
        sock.set_inheritable(True)
        bound_port = sock.getsockname()[1]
        url = url_for(host, bound_port)
        workers = worker_count(instance)
        started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        control_token = write_control_token(instance.paths)
        create_metrics_file(instance.paths.metrics_file, workers)

        # Workers get the parent's parsed settings, not the file: a bad edit made while
        # the server runs must not crash-loop a replacement worker, and all workers
        # must serve with the same values.
        write_worker_settings(instance.paths, settings.values)

        stop = threading.Event()
        force = threading.Event()

        def request_stop(signum: int, _frame: FrameType | None) -> None:
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
            for service in server_services(instance) if services is None else services:
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
            write_server_info(instance.paths, info)
            log.info("server started", extra=info)
            say(
                f"Office Appliance {__version__} serving at {url} ({workers} worker{'s' if workers != 1 else ''}); "
                "press Ctrl+C to stop"
            )
            others = staff_urls(host, bound_port)
            if others:
                say("Staff on the office network open: " + ", ".join(others))
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
        remove_run_files(instance.paths)
        if logs is not None:
            logs.close()
        lock.release()
