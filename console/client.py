"""HTTP to the appliance's own server on loopback, and a way to run any work off the GUI thread.

``call_api`` is a plain blocking function (urllib, no extra dependency);
``run_in_background`` runs it, or any other callable, in Qt's global thread
pool and delivers the result or the error back on the GUI thread.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from appliance.clock import parse_iso
from appliance.config.home import Paths
from appliance.server.run_files import read_control_token


class ApiError(Exception):
    """An answer that is not a success: ``status`` (0 when unreachable), ``code``, ``message``, ``fields``."""

    def __init__(self, status: int, message: str, *, code: str = "error", fields: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})

    def __str__(self) -> str:
        if self.fields:
            details = "; ".join(f"{name}: {text}" for name, text in self.fields.items())
            return f"{self.message} ({details})"
        return self.message


def call_api(
    base_url: str, token: str | None, method: str, path: str, body: Any = None, *, timeout: float = 10.0
) -> Any:
    """Send one request and return the decoded JSON answer (``None`` for an empty one).

    Raises :class:`ApiError`: with the server's error shape for a 4xx/5xx,
    with status 0 when the server cannot be reached.
    """
    url = base_url.rstrip("/") + "/" + path.lstrip("/")
    data = None
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        exc.close()
        try:
            error = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            raise ApiError(exc.code, f"the server answered {exc.code} {exc.reason}") from None
        raise ApiError(
            exc.code, error.get("message", str(exc.code)), code=error.get("code", "error"), fields=error.get("fields")
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(0, f"the server at {base_url} cannot be reached ({reason})") from None
    if not raw:
        return None
    return json.loads(raw)


class ServerClient:
    """The server of one home, as the console sees it: base URL and control token, read from the run files."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self.base_url: str | None = None
        self.token: str | None = None

    def refresh(self, info: dict | None) -> None:
        """Take the URL from a ``server.json`` (``None`` when stopped) and re-read the control token."""
        self.base_url = (info or {}).get("url")
        self.token = read_control_token(self.paths) if self.base_url else None

    @property
    def available(self) -> bool:
        return bool(self.base_url)

    def call(self, method: str, path: str, body: Any = None, *, timeout: float = 10.0) -> Any:
        """Blocking: call the API; raises :class:`ApiError` (status 0 when no server runs)."""
        if not self.base_url:
            raise ApiError(0, "the server is not running")
        return call_api(self.base_url, self.token, method, path, body, timeout=timeout)


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any]):
        super().__init__()
        self.fn = fn
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # delivered to the GUI thread, shown to the person
            self._deliver(self.signals.failed, exc)
            return
        self._deliver(self.signals.done, result)

    @staticmethod
    def _deliver(signal: Any, value: Any) -> None:
        # The application may be shutting down (its objects deleted) when a late answer arrives.
        with contextlib.suppress(RuntimeError):
            signal.emit(value)


_LIVE: set[_Signals] = set()


def run_in_background(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    *,
    owner: QObject | None = None,
) -> None:
    """Run ``fn`` on the global thread pool; ``on_done(result)`` or ``on_error(exc)`` runs on the GUI thread.

    The callbacks are queued to the thread that owns the signals object (the
    caller's, the GUI thread), so they may touch widgets. With ``owner``, the
    callbacks are dropped when that object was deleted meanwhile (a closed tab).
    """
    task = _Task(fn)
    signals = task.signals
    _LIVE.add(signals)  # keeps the signals object alive until its answer is delivered

    def finish_ok(result: Any) -> None:
        _LIVE.discard(signals)
        if owner is not None and not shiboken6.isValid(owner):
            return
        if on_done is not None:
            on_done(result)

    def finish_error(exc: Exception) -> None:
        _LIVE.discard(signals)
        if owner is not None and not shiboken6.isValid(owner):
            return
        if on_error is not None:
            on_error(exc)

    signals.done.connect(finish_ok)
    signals.failed.connect(finish_error)
    QThreadPool.globalInstance().start(task)


def human_duration(seconds: float | None) -> str:
    """``3725`` -> ``"1 h 2 min"``; ``None`` -> an em dash."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


class StatusPoller(QObject):
    """Asks ``GET /api/system/status`` every ``interval_ms`` off the GUI thread, one request at a time.

    Emits ``status(dict)`` with the answer plus ``"_polled_at"`` (monotonic
    seconds), or ``failed(str)`` when the server does not answer.
    """

    status = Signal(object)
    failed = Signal(str)

    def __init__(self, client: ServerClient, interval_ms: int = 2000, parent: QObject | None = None):
        super().__init__(parent)
        self.client = client
        self._busy = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)

    def start(self) -> None:
        self._timer.start()
        self.poll()

    def stop(self) -> None:
        self._timer.stop()

    def poll(self) -> None:
        """Send one status request unless one is still in flight or no server runs."""
        if self._busy or not self.client.available:
            return
        self._busy = True
        client = self.client

        def fetch() -> dict:
            answer = client.call("GET", "/api/system/status", timeout=5.0)
            answer["_polled_at"] = time.monotonic()
            return answer

        run_in_background(fetch, self._on_status, self._on_failed)

    def _on_status(self, answer: dict) -> None:
        if not shiboken6.isValid(self):
            return  # the window closed while the request was in flight
        self._busy = False
        self.status.emit(answer)

    def _on_failed(self, exc: Exception) -> None:
        if not shiboken6.isValid(self):
            return
        self._busy = False
        self.failed.emit(str(exc))


def local_time(value: str | None) -> str:
    """An ISO time from the server (UTC) in this computer's time zone, ``2026-01-05 13:04``; ``—`` for none.

    A value that is not a time is shown as it is.
    """
    if not value:
        return "—"
    try:
        moment = parse_iso(str(value))
    except ValueError:
        return str(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")
