"""Request metrics and the access log, for every request."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, g, request

from appliance.server.logs import ACCESS_LOGGER
from appliance.server.runner import PROBE_HEADER
from webapp.context import control_token_matches

access_log = logging.getLogger(ACCESS_LOGGER)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_name() -> str:
    """The metrics key: method and URL rule. Anything a client may invent (a method,
    an unknown path) is folded into one key, so keys cannot grow without bound."""
    method = request.method if request.method in _METHODS else "OTHER"
    rule = request.url_rule
    return f"{method} {rule.rule}" if rule is not None else f"{method} <unmatched>"


def _logged_path() -> str:
    """The path as the access log may keep it: a one-time set-up link is a secret."""
    rule = request.url_rule
    if rule is not None and rule.rule.startswith("/setup/"):
        return "/setup/<redacted>"
    return request.path


def init_app(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()
        probe = request.headers.get(PROBE_HEADER)
        if probe and control_token_matches(probe):
            g.unobserved = True  # the server's own start-up probe is not traffic

    @app.after_request
    def record(response: Response) -> Response:
        started = g.pop("request_started", None)
        if started is None or g.get("unobserved"):
            return response
        seconds = time.perf_counter() - started
        current_app.extensions["appliance.metrics"].observe(_route_name(), response.status_code, seconds)
        path = _logged_path()
        access_log.info(
            "%s %s %s",
            request.method,
            path,
            response.status_code,
            extra={
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "ms": round(seconds * 1000, 2),
                "bytes": response.calculate_content_length(),
                "addr": request.remote_addr,
                "user_agent": request.user_agent.string[:200],
            },
        )
        return response
