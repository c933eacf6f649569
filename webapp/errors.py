"""The one place where errors become HTTP answers: JSON under /api/, a page elsewhere."""

from __future__ import annotations

import logging

import peewee
from flask import Flask, Response, jsonify, render_template, request
from markupsafe import escape
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from appliance.errors import ApplianceError

log = logging.getLogger("webapp.errors")

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "throttled",
    500: "internal_error",
    503: "unavailable",
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz", "/metrics")


def _error_page(status: int, error: dict) -> str:
    title = HTTP_STATUS_CODES.get(status, "Error")
    try:
        return render_template("error.html", status=status, title=title, error=error)
    except Exception:
        # The full layout needs the signed-in user (the database); when that is
        # what failed, a plain page still tells the person what happened.
        log.exception("the error page could not be rendered with the layout")
        return (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{status} {escape(title)}</title></head>"
            f"<body><h1>{status} {escape(title)}</h1><p>{escape(error.get('message', ''))}</p></body></html>"
        )


def error_response(status: int, body: dict) -> Response:
    """Render the error body as JSON (API) or as the error page."""
    if wants_json():
        response = jsonify(body)
    else:
        response = Response(_error_page(status, body["error"]), mimetype="text/html")
    response.status_code = status
    return response


def _appliance_error(exc: ApplianceError) -> Response:
    response = error_response(exc.status, exc.to_dict())
    if exc.status == 429 and "retry_after" in exc.extra:
        response.headers["Retry-After"] = str(int(exc.extra["retry_after"]))
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "error")
    message = exc.description or exc.name
    if status == 413:
        message = "The request body is too large."
    response = error_response(status, {"error": {"code": code, "message": message}})
    if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(
        500, {"error": {"code": "internal_error", "message": "Something went wrong on the server; it has been logged."}}
    )


def _database_error(exc: peewee.OperationalError) -> Response:
    # SQLite's "database is locked" after the busy timeout: the database is busy, not broken; try again.
    if "locked" not in str(exc).lower():
        return _unexpected(exc)
    log.warning("database busy on %s %s: %s", request.method, request.path, exc)
    response = error_response(
        503, {"error": {"code": "busy", "message": "The database is busy; try again in a moment."}}
    )
    response.headers["Retry-After"] = "1"
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(peewee.OperationalError, _database_error)
    app.register_error_handler(ApplianceError, _appliance_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
