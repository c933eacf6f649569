"""Request metrics and the access log, for every request."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, g, request

from appliance.logs import ACCESS_LOGGER

access_log = logging.getLogger(ACCESS_LOGGER)


def _route_name() -> str:
    rule = request.url_rule
    return f"{request.method} {rule.rule}" if rule is not None else f"{request.method} <unmatched>"


def init_app(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        started = g.pop("request_started", None)
        if started is None or g.get("unobserved"):
            return response
        seconds = time.perf_counter() - started
        current_app.extensions["appliance.metrics"].observe(_route_name(), response.status_code, seconds)
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "ms": round(seconds * 1000, 2),
                "bytes": response.calculate_content_length(),
                "addr": request.remote_addr,
                "user_agent": request.user_agent.string[:200],
            },
        )
        return response
