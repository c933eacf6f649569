"""One worker process: serves the WSGI app with Waitress on the parent's socket.

Started by :mod:`appliance.server` as ``python -m appliance.server.worker``. On
SIGTERM it stops accepting, lets in-flight requests finish (up to the grace
setting), then exits 0.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask
from waitress.wasyncore import loop

from appliance.config.home import Instance, Paths, open_instance
from appliance.config.registry import registry
from appliance.config.settings import Settings
from appliance.server.logs import configure_worker_logging
from appliance.server.run_files import ServerRuntime, read_control_token
from appliance.storage.db import open_database

log = logging.getLogger("appliance.worker")


_ERROR_CODES = {400: "bad_request", 413: "too_large", 431: "bad_request", 500: "internal_error", 501: "not_implemented"}


class JsonErrorTask(ErrorTask):  # type: ignore[misc]  # waitress has no type hints
    """Waitress's own refusals, made before the app runs (a declared body over the limit,
    a malformed request), in the error shape of API.md instead of plain text.

    ``extra_headers`` are the app's own security headers (its ``error_headers``
    attribute), set once when the worker starts.
    """

    extra_headers: tuple[tuple[str, str], ...] = ()

    def execute(self) -> None:
        error = self.request.error
        if error.code == 413:
            message = "The request body is too large for this server."
        else:
            message = f"{error.reason}: {error.body}".strip().rstrip(":")
        body = json.dumps({"error": {"code": _ERROR_CODES.get(error.code, "error"), "message": message}}).encode()
        self.status = f"{error.code} {error.reason}"
        headers = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
        headers.update(dict(self.extra_headers))
        self.response_headers.extend(headers.items())
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):  # type: ignore[misc]
    error_task_class = JsonErrorTask


def load_factory(spec: str) -> Callable[..., Any]:
    """Import ``"module:function"`` and return the function."""
    module_name, _, attr = spec.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module_name), attr)
    return factory


def _busy(server_map: dict[int, Any], dispatcher: Any) -> bool:
    """Whether any request is queued, running, or still being written out."""
    if dispatcher.queue or dispatcher.active_count > 0:
        return True
    for channel in list(server_map.values()):
        if isinstance(channel, HTTPChannel) and (channel.requests or channel.total_outbufs_len):
            return True
    return False


def serve_until_stopped(server: Any, stop: threading.Event, grace: float, parent_pid: int | None = None) -> None:
    """Run Waitress's loop until ``stop`` is set, then drain in-flight work for up to ``grace`` seconds.

    A worker whose parent died (killed without a chance to stop it) stops too,
    so no orphan keeps serving the port.
    """
    server_map = server._map
    while not stop.is_set():
        loop(timeout=0.2, map=server_map, use_poll=True, count=1)
        if parent_pid is not None and os.getppid() != parent_pid:
            log.error("the server's parent process is gone; this worker stops")
            break
    # Stop accepting: this process closes its copy of the listening socket.
    server.accepting = False
    server.del_channel()
    server.socket.close()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _busy(server_map, server.task_dispatcher):
        loop(timeout=0.05, map=server_map, use_poll=True, count=1)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)


def _worker_instance(home: Path) -> Instance:
    """The home with the settings the parent parsed at start (``run/worker-settings.json``).

    Reading the file again would let an edit made while the server runs reach only
    the workers started after it, or crash-loop them when the edit is bad.
    """
    paths = Paths(home)
    try:
        values = json.loads(paths.worker_settings.read_text())
    except (OSError, ValueError):
        return open_instance(home)
    return Instance(paths, Settings({**{name: setting.default for name, setting in registry().items()}, **values}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="appliance.server.worker")
    parser.add_argument("--home", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--factory", required=True)
    parser.add_argument("--started-at", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)

    instance = _worker_instance(Path(args.home))
    configure_worker_logging(instance.settings.log_level)
    # Waitress warns "Task queue depth is 1" whenever a request waits a moment for a thread: normal
    # under light load, alarming in the log. Real trouble shows in the metrics and the access log.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The parent handles Ctrl+C for the whole group; the worker waits for its SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    open_database(instance)
    token = read_control_token(instance.paths)
    runtime = ServerRuntime(slot=args.slot, workers=args.workers, started_at=args.started_at, control_token=token)
    app = load_factory(args.factory)(instance, runtime)

    if args.fd >= 0:
        sock = socket.socket(fileno=args.fd)
    else:  # pragma: no cover - Windows: the parent sends socket.share() bytes on stdin
        sock = socket.fromshare(base64.b64decode(sys.stdin.buffer.readline()))  # type: ignore[attr-defined]
    settings = instance.settings
    options = {
        "threads": settings.threads,
        "connection_limit": settings.connection_limit,
        "backlog": settings.backlog,
        "ident": "office-appliance",
        "channel_timeout": 60,
        # Waitress answers 413 itself, before reading the body, when Content-Length
        # is over this (uploads are the largest bodies; 64 KiB leaves room for the
        # multipart envelope and the other fields).
        "max_request_body_size": settings.max_upload_mb * 1024 * 1024 + 64 * 1024,
    }
    if settings.trusted_proxy:
        options.update(
            trusted_proxy=settings.trusted_proxy,
            trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port"},
            clear_untrusted_proxy_headers=True,
        )
    else:
        options["clear_untrusted_proxy_headers"] = True
    server = create_server(app, sockets=[sock], **options)
    JsonErrorTask.extra_headers = tuple(getattr(app, "error_headers", ()))
    server.channel_class = JsonErrorChannel
    log.info("worker serving", extra={"slot": args.slot})
    serve_until_stopped(server, stop, settings.shutdown_grace_seconds, parent_pid=args.parent_pid)
    log.info("worker stopped", extra={"slot": args.slot})
    return 0


if __name__ == "__main__":
    sys.exit(main())
