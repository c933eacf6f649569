"""CSRF protection and the security headers of every response.

Flask-WTF's ``CSRFProtect`` checks every form (``csrf_token`` field) and
every cookie-authenticated unsafe API request (``X-CSRFToken`` header).
An unsafe API request without a bearer token and without a live session is
refused as unauthenticated (401) before its CSRF header is looked at.
Requests that carry a bearer token need none: a browser never adds one by
itself, so another site cannot forge it. ``POST /api/auth/token`` (and ``/api/auth/forgot``) needs none
either: it takes JSON only, which another site cannot send without the
browser asking first (CORS), and it signs nobody in by cookie.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect

from appliance.errors import NotAuthenticated
from webapp.context import bearer_token

csrf = CSRFProtect()

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # Bootstrap draws some controls with data: SVGs
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _needs_csrf_check() -> bool:
    """Flask-WTF's own default check, plus: requests with a bearer token need none."""
    if not current_app.config.get("WTF_CSRF_ENABLED", True) or request.method not in UNSAFE_METHODS:
        return False
    if request.endpoint is None:
        return False  # no such route or method: the routing error answers
    if request.path.startswith("/api/"):
        if bearer_token() is not None or request.path in ("/api/auth/token", "/api/auth/forgot"):
            return False
        # Authentication first: a request without a live session (none, or one that has ended) is a 401,
        # which a CSRF 400 would hide; only a live cookie session needs its CSRF header.
        if not current_user.is_authenticated:
            raise NotAuthenticated("Sign in, or send an API token as 'Authorization: Bearer <token>'.")
        return True
    return True


def _protect() -> None:
    if _needs_csrf_check():
        csrf.protect()


def _add_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith(("/static/", "/bootstrap/")):
        # Pages and answers are per user: no shared cache may keep them.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in _protect, which knows about bearer tokens
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which has its own time-outs
        WTF_CSRF_SSL_STRICT=True,
    )
    csrf.init_app(app)
    app.before_request(_protect)
    app.after_request(_add_headers)
    # The server answers a few requests itself, before the app runs (a body declared
    # over the limit, a malformed request); it adds these headers to them too.
    app.error_headers = tuple(SECURITY_HEADERS.items())
