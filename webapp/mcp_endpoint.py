"""``/mcp``: the MCP endpoint (Streamable HTTP, JSON responses) inside the same Waitress workers.

A small WSGI dispatcher in front of the Flask app (``app.wsgi_app``) sends
``/mcp`` here; everything else goes on to Flask. Before MCP starts it checks,
answering in the API's error shape: the ``Host`` (on a loopback-bound server,
only loopback names, against DNS rebinding), the ``Origin`` (none, or this
same host), the body size (413 over :data:`MAX_BODY_BYTES`), and the bearer
token, authenticated as ``/api/`` does (401 unknown, 403 without MCP access).

Then the official SDK's session manager answers, hosted through ``a2wsgi`` on
an event loop of this worker process (started on the first ``/mcp``
request). It runs **stateless**: the worker processes share one socket, so a
request may land on any of them and no MCP session may live in one worker's
memory. Both protocol eras work that way: a 2026-07-28 request is
self-contained, and an older client's ``initialize`` is answered without a
session id, after which each of its requests stands alone too.

Which token a request authenticated reaches the SDK's handlers through a
random per-request key in a header this dispatcher sets (and strips from
what the client sent), looked up in this process's memory.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from a2wsgi import ASGIMiddleware
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from werkzeug.wsgi import ClosingIterator

from appliance.accounts.tokens import authenticate_token
from appliance.agents.limits import Limits
from appliance.agents.mcp_server import Identity, build_server
from appliance.config.home import Instance
from appliance.server.live_settings import refresh_runtime_settings
from appliance.storage.db import database

PATH = "/mcp"
MAX_BODY_BYTES = 1024 * 1024
_CALLER_HEADER = "x-appliance-mcp-caller"
_CALLER_ENVIRON = "HTTP_X_APPLIANCE_MCP_CALLER"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _refusal(start_response: Callable[..., Any], status: int, code: str, message: str) -> list[bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    reasons = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 405: "Method Not Allowed", 413: "Too Large"}
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store"),
    ]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="appliance"'))
    start_response(f"{status} {reasons.get(status, 'Error')}", headers)
    return [body]


def _host_name(netloc: str) -> str:
    try:
        return (urlsplit("//" + netloc).hostname or "").lower()
    except ValueError:
        return ""


class McpEndpoint:
    """The WSGI dispatcher: ``/mcp`` to the SDK (after the checks above), anything else to ``fallback``."""

    def __init__(self, fallback: WSGIApp, instance: Instance):
        self.fallback = fallback
        self.instance = instance
        self._callers: dict[str, Identity] = {}
        self._lock = threading.Lock()
        self._asgi: ASGIMiddleware | None = None

    # --- the SDK, started once per process on first use ---------------------------------------

    def _identify(self, ctx: Any) -> Identity | None:
        request = getattr(ctx, "request", None)
        key = request.headers.get(_CALLER_HEADER) if request is not None else None
        return self._callers.get(key) if key else None

    def _limits(self) -> Limits:
        settings = self.instance.settings
        return Limits(settings.mcp_calls_per_minute, settings.mcp_writes_per_day)

    def _start(self) -> ASGIMiddleware:
        with self._lock:
            if self._asgi is not None:
                return self._asgi
            server = build_server(self._identify, self._limits, self.instance.paths.files_dir)
            manager = StreamableHTTPSessionManager(
                app=server, json_response=True, stateless=True, max_request_body_size=MAX_BODY_BYTES
            )
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="mcp-loop", daemon=True).start()
            started = threading.Event()

            async def run_manager() -> None:
                async with manager.run():
                    started.set()
                    await asyncio.Event().wait()  # for the life of the process

            self._runner = asyncio.run_coroutine_threadsafe(run_manager(), loop)
            if not started.wait(10):
                raise RuntimeError("the MCP session manager did not start")
            self._asgi = ASGIMiddleware(manager.handle_request, loop=loop)  # type: ignore[arg-type]
            return self._asgi

    # --- the checks before MCP, then the hand-over --------------------------------------------

    def _check_origin_and_host(self, environ: dict[str, Any]) -> tuple[int, str, str] | None:
        host = environ.get("HTTP_HOST") or ""
        name = _host_name(host)
        if not name:
            return 400, "bad_request", "The request has no valid Host header."
        bound = str(self.instance.settings.host or "").lower()
        if bound in _LOOPBACK_HOSTS and name not in _LOOPBACK_HOSTS:
            return 403, "permission_denied", f"This server answers /mcp only as a loopback host, not {name!r}."
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
                return 403, "permission_denied", "Requests to /mcp from another site's page are refused."
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or ""
        if path.rstrip("/") != PATH:
            return self.fallback(environ, start_response)
        environ.pop(_CALLER_ENVIRON, None)  # only this dispatcher says who the caller is
        refused = self._check_origin_and_host(environ)
        if refused is not None:
            return _refusal(start_response, *refused)
        if environ.get("REQUEST_METHOD") not in ("POST", "GET", "DELETE"):
            return _refusal(start_response, 405, "method_not_allowed", "Use POST (or GET, DELETE) at /mcp.")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refusal(start_response, 400, "bad_request", "The Content-Length header is not a number.")
        if length > MAX_BODY_BYTES:
            return _refusal(start_response, 413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.")
        scheme, _, secret = (environ.get("HTTP_AUTHORIZATION") or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return _refusal(
                start_response, 401, "not_authenticated", "Send an MCP API token as 'Authorization: Bearer <token>'."
            )
        refresh_runtime_settings(self.instance)
        with database.connection_context():
            token = authenticate_token(secret.strip())
            refusal: tuple[int, str, str] | None = None
            if token is None:
                refusal = (401, "not_authenticated", "This API token is unknown, expired or revoked.")
            elif token.user.must_change_password:
                refusal = (403, "permission_denied", "Your password was reset; choose a new one at /account first.")
            elif not token.mcp:
                refusal = (
                    403,
                    "permission_denied",
                    "This API token has no MCP access; create one with MCP access (appliance tokens create --mcp).",
                )
        if refusal is not None or token is None:
            return _refusal(start_response, *(refusal or (401, "not_authenticated", "Unknown token.")))
        key = secrets.token_urlsafe(24)
        self._callers[key] = Identity(token.id, environ.get("REMOTE_ADDR"))
        environ[_CALLER_ENVIRON] = key
        try:
            result = self._start()(environ, start_response)  # type: ignore[arg-type]  # a2wsgi's own environ type
        except BaseException:
            self._callers.pop(key, None)
            raise

        def forget() -> None:
            self._callers.pop(key, None)

        return ClosingIterator(result, [forget])


def init_app(app: Any) -> None:
    """Put the ``/mcp`` dispatcher in front of the Flask app's WSGI callable."""
    app.wsgi_app = McpEndpoint(app.wsgi_app, app.extensions["appliance.instance"])
