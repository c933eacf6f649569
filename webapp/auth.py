"""Who is asking: browser sessions (flask-login), API tokens and the control token.

A browser session is a ``user_session`` row (:mod:`appliance.accounts.sessions`); the
cookie (Flask's signed cookie: HttpOnly, SameSite=Lax, Secure when the
request came over HTTPS through the trusted proxy) carries only the row's
random key, as flask-login's user id. Each request loads the session and its
user in one indexed query, and a missing or expired row is refused: signing
out deletes the row (a copied cookie dies with it), and "sign out
everywhere", a password change, a role change and disabling delete every row
of the user, in every worker at once. The idle and absolute time-outs live
in the row.

API views call :func:`current_principal`; pages use ``login_required``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from flask import Blueprint, Flask, current_app, flash, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from appliance.accounts import passwords, sessions
from appliance.accounts.throttle import ThrottleRules
from appliance.accounts.tokens import authenticate_token
from appliance.errors import NotAuthenticated, PermissionDenied
from appliance.storage.models import ApiToken, User, UserSession
from webapp.context import bearer_token, control_token_matches

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Pages a user who must choose a new password may still open.
_OPEN_WHILE_MUST_CHANGE = {
    "auth_pages.account",
    "auth_pages.change_password",
    "auth_pages.logout",
    "static",
    "bootstrap.static",
}


class SessionUser(UserMixin):
    """What flask-login keeps as ``current_user``: the user, and as its id the session's key."""

    def __init__(self, user: User, key: str, row: UserSession | None = None):
        self.user = user
        self.session_key = key
        self.session_row = row

    def get_id(self) -> str:
        return self.session_key

    @property
    def is_active(self) -> bool:
        return bool(self.user.active)

    def __getattr__(self, name: str):
        return getattr(self.__dict__["user"], name)


@dataclass(frozen=True)
class Principal:
    """The caller of an API request: a user through a session or a token, or the console's control token."""

    user: User | None
    via: Literal["session", "token", "control"]
    scope: Literal["read", "write"]
    token: ApiToken | None = None

    @property
    def is_admin(self) -> bool:
        return self.via == "control" or (self.user is not None and self.user.is_admin)

    @property
    def role(self) -> str | None:
        return "admin" if self.via == "control" else (self.user.role if self.user else None)

    @property
    def actor(self) -> User | str:
        """What audit events name as the actor."""
        return self.user if self.user is not None else "control"


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure exactly when the request came over HTTPS.

    Waitress sets the scheme from X-Forwarded-Proto only when it comes from the
    trusted proxy (appliance/worker.py), so ``request.is_secure`` can be believed.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request and request.is_secure) or super().get_cookie_secure(app)


def client_address() -> str | None:
    """The client's address (the trusted proxy's X-Forwarded-For is already applied by Waitress)."""
    return request.remote_addr


def _timeouts() -> sessions.Timeouts:
    return current_app.extensions["appliance.session_timeouts"]


def _load_user(key: str) -> SessionUser | None:
    row = sessions.authenticate_session(key, _timeouts())
    if row is None:
        g.session_expired = True  # the cookie named a session that has ended
        return None
    return SessionUser(row.user, key, row)


def _start(user: User) -> None:
    key = sessions.start_session(
        user, _timeouts(), address=client_address(), user_agent=request.headers.get("User-Agent", "")
    )
    login_user(SessionUser(user, key), remember=False)


def _current_key() -> str | None:
    key = session.get("_user_id")
    return key if isinstance(key, str) else None


def sign_in_session(user: User) -> None:
    """Start a browser session for ``user`` (a fresh cookie: nothing from before sign-in is kept;
    a session this browser still had is ended)."""
    sessions.end_session(_current_key())
    session.clear()
    session.permanent = True
    _start(user)


def renew_session(user: User) -> None:
    """Keep this browser signed in after its own change ended every session of ``user`` (a password change)."""
    _start(user)


def end_session() -> None:
    """Sign this browser out: its session row is deleted, so a copy of the cookie no longer works."""
    sessions.end_session(_current_key())
    logout_user()
    session.clear()


def _enforce_password_change():
    """A user whose password was reset must choose a new one before anything else."""
    if request.path.startswith("/api/") or not current_user.is_authenticated:
        return None
    if current_user.must_change_password and request.endpoint not in _OPEN_WHILE_MUST_CHANGE:
        flash("Choose a new password before you go on.", "warning")
        return redirect(url_for("auth_pages.account"))
    return None


def _refuse_read_tokens_on_writes() -> None:
    """A read token can change nothing, whatever the endpoint (this issue's and every later one's)."""
    if request.method in SAFE_METHODS or not request.path.startswith("/api/") or bearer_token() is None:
        return
    if request.path == "/api/auth/token":
        return
    if current_principal().scope != "write":
        raise PermissionDenied("This API token is read-only; it cannot change anything.")


def current_principal() -> Principal:
    """The caller of this request; raises :class:`NotAuthenticated` when there is none.

    A bearer token wins over a session cookie. A user who must change their
    password is refused (:class:`PermissionDenied`) until they do, whether
    through a session or an API token.
    """
    if "principal" in g:
        return g.principal
    token = bearer_token()
    if token is not None:
        if control_token_matches(token):
            principal = Principal(None, "control", "write")
        else:
            api_token = authenticate_token(token)
            if api_token is None:
                raise NotAuthenticated("This API token is unknown, expired or revoked.")
            if api_token.user.must_change_password:
                # As for a session: a reset account does nothing until its owner chose a new password.
                raise PermissionDenied("Your password was reset; choose a new one at /account before you go on.")
            principal = Principal(api_token.user, "token", api_token.scope, api_token)
    elif current_user.is_authenticated:
        if current_user.must_change_password:
            raise PermissionDenied("Choose a new password at /account before you go on.")
        principal = Principal(current_user.user, "session", "write")
    else:
        raise NotAuthenticated("Sign in, or send an API token as 'Authorization: Bearer <token>'.")
    g.principal = principal
    return principal


def require_admin() -> Principal:
    """The caller, who must be an admin (or the control token); raises PermissionDenied otherwise."""
    principal = current_principal()
    if not principal.is_admin:
        raise PermissionDenied("Only admins may do this.")
    return principal


def admin_pages(bp: Blueprint, refusal: str) -> None:
    """Guard every page of ``bp``: a visitor who is not signed in is sent to sign in, a signed-in user who
    is not an admin gets :class:`PermissionDenied` with ``refusal``."""

    @bp.before_request
    @login_required
    def _admins_only():
        if not current_user.is_admin:
            raise PermissionDenied(refusal)


def require_write() -> Principal:
    """The caller, who must be allowed to change things (no read-only token)."""
    principal = current_principal()
    if principal.scope != "write":
        raise PermissionDenied("This API token is read-only; it cannot change anything.")
    return principal


def _admin_may_read_system() -> bool:
    """Whether the caller is an admin (session or token). webapp/system.py answers the rest:
    401 without credentials, 403 for any other token (an unknown one included)."""
    try:
        return current_principal().is_admin
    except (NotAuthenticated, PermissionDenied):
        return False


def throttle_rules() -> ThrottleRules:
    return current_app.extensions["appliance.throttle_rules"]


def init_app(app: Flask) -> None:
    settings = app.extensions["appliance.instance"].settings
    passwords.configure_from_settings(settings)
    app.extensions["appliance.throttle_rules"] = ThrottleRules.from_settings(settings)
    app.extensions["appliance.session_timeouts"] = sessions.Timeouts.from_settings(settings)
    app.session_interface = _SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="appliance_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings.session_idle_minutes),
        REMEMBER_COOKIE_HTTPONLY=True,
    )
    manager = LoginManager(app)
    manager.session_protection = None  # the session rows and their time-outs do this job
    manager.login_view = "auth_pages.login"
    manager.login_message = "Sign in to see this page."
    manager.login_message_category = "info"
    manager.user_loader(_load_user)

    @manager.unauthorized_handler
    def _unauthorized():
        if request.path.startswith("/api/"):
            raise NotAuthenticated("Sign in, or send an API token as 'Authorization: Bearer <token>'.")
        if g.get("session_expired"):
            flash("Your session has ended; sign in again.", "info")
        else:
            flash(manager.login_message, manager.login_message_category)
        return redirect(url_for("auth_pages.login", next=request.full_path.rstrip("?")))

    app.before_request(_refuse_read_tokens_on_writes)
    app.before_request(_enforce_password_change)
    app.extensions.setdefault("appliance.system_auth", []).append(_admin_may_read_system)
