"""Two-factor pages: the second sign-in step (``/login/code``) and setting two-factor up or off
(``/account/two-factor``), with the recovery codes shown once.

The password step leaves only a short-lived pending state in the signed
session cookie (the user's id, their session version and when): no session
row, nothing a page would accept. The code step then starts the real session.
A user the ``require_two_factor`` policy covers who has no two-factor yet is
led to the set-up page right after signing in, and until it is done every
other page (and the API through the session) leads back there; signing out
still works, and API tokens are separate credentials, never stopped by this.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any
from urllib.parse import quote

import peewee
from flask import Blueprint, Flask, Response, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from appliance.accounts import second_factor, totp
from appliance.accounts.two_factor_policy import needs_two_factor_setup, pin_policy_of_existing_home
from appliance.accounts.users import get_user
from appliance.errors import Conflict, NotAuthenticated, NotFound, PermissionDenied, Throttled, ValidationFailed
from appliance.storage.models import User
from webapp.auth import client_address, sign_in_session, throttle_rules
from webapp.context import bearer_token, current_instance
from webapp.layout import form_errors, keep_once, take_once

bp = Blueprint("two_factor_pages", __name__)

PENDING = "two_factor_pending"
SETUP_REQUIRED = "two_factor_setup_required"
PENDING_SECONDS = 300
# What a user who must still set two-factor up may open.
_OPEN_WHILE_SETTING_UP = {
    "two_factor_pages.setup_page",
    "two_factor_pages.start",
    "two_factor_pages.qr_code",
    "two_factor_pages.confirm",
    "two_factor_pages.recovery_codes",
    "auth_pages.logout",
    "static",
    "bootstrap.static",
}
_OPEN_API_WHILE_SETTING_UP = ("/api/me", "/api/me/totp", "/api/me/totp/confirm")


def secret_key() -> bytes:
    """The key the TOTP secrets and recovery-code digests are derived from: the instance's secret.key."""
    key = current_app.config["SECRET_KEY"]
    return key if isinstance(key, bytes) else str(key).encode()


def policy() -> str:
    return str(current_instance().settings.require_two_factor)


def _throttled_headers(exc: Exception) -> dict[str, str]:
    extra = getattr(exc, "extra", {})
    return {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else {}


# --- after the password step ----------------------------------------------------------------


def start_second_step(user: User, next_path: str) -> Response:
    """The password was right and two-factor is on: remember that (briefly) and ask for the code.
    ``next_path`` is where to go after the code, already checked to be a path of this site."""
    session[PENDING] = {"user": user.id, "version": user.session_version, "at": int(time.time()), "next": next_path}
    return redirect(url_for("two_factor_pages.code_page"))


def after_sign_in(user: User) -> Response | None:
    """Right after a browser session started: the set-up page when the policy requires two-factor of
    ``user`` and it is not on (remembered in the session until done), else ``None``."""
    if needs_two_factor_setup(user, policy()):
        session[SETUP_REQUIRED] = True
        flash("Two-factor sign-in is required for your account: set it up to go on.", "warning")
        return redirect(url_for("two_factor_pages.setup_page"))
    return None


def _pending_user() -> tuple[User, str] | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - int(pending.get("at", 0)) > PENDING_SECONDS:
        session.pop(PENDING, None)
        return None
    user = User.get_or_none(User.id == pending.get("user"))
    # A password change (or sign-out everywhere) since the password step ends the pending state too.
    if user is None or not user.active or user.session_version != pending.get("version"):
        session.pop(PENDING, None)
        return None
    return user, str(pending.get("next") or "")


@bp.route("/login/code", methods=["GET", "POST"])
def code_page():
    found = _pending_user()
    if found is None:
        flash("Sign in with your email and password first (the code step waits five minutes).", "info")
        return redirect(url_for("auth_pages.login"))
    user, next_path = found
    if request.method == "GET":
        return render_template("auth/login_code.html", errors={}, email=user.email)
    try:
        user = second_factor.verify_second_factor(
            user.id, request.form.get("code", ""), secret_key(), address=client_address(), rules=throttle_rules()
        )
    except (NotAuthenticated, Throttled, ValidationFailed) as exc:
        page = render_template("auth/login_code.html", errors=form_errors(exc), email=user.email)
        return page, exc.status, _throttled_headers(exc)
    sign_in_session(user)
    if user.must_change_password:
        flash("Your password was reset: choose a new one to go on.", "warning")
        return redirect(url_for("auth_pages.account"))
    return redirect(next_path or url_for("home.index"))


# --- setting up -------------------------------------------------------------------------------


def _setup_context(**extra: Any) -> dict[str, Any]:
    user = get_user(current_user.id)
    enabled = totp.totp_enabled(user.id)
    return {
        "user": user,
        "enabled": enabled,
        "pending": None if enabled else totp.pending_setup(user.id, secret_key()),
        "codes_left": totp.recovery_codes_left(user.id) if enabled else 0,
        "required": bool(session.get(SETUP_REQUIRED)),
        "errors": {},
        **extra,
    }


@bp.get("/account/two-factor")
@login_required
def setup_page():
    return render_template("auth/two_factor.html", **_setup_context())


@bp.post("/account/two-factor/setup")
@login_required
def start():
    try:
        totp.start_setup(current_user.id, secret_key(), address=client_address())
    except Conflict as exc:
        flash(exc.message, "info")
    return redirect(url_for("two_factor_pages.setup_page"), 303)


@bp.get("/account/two-factor/qr.svg")
@login_required
def qr_code():
    """The QR code of the secret being set up, drawn here (the secret goes to no other service)."""
    pending = totp.pending_setup(current_user.id, secret_key())
    if pending is None:
        raise NotFound("There is no two-factor set-up waiting; start it on /account/two-factor.")
    response = Response(totp.qr_svg(pending.otpauth_uri), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/account/two-factor/confirm")
@login_required
def confirm():
    try:
        codes = totp.confirm_setup(
            current_user.id, request.form.get("code", ""), secret_key(), address=client_address()
        )
    except (ValidationFailed, Conflict) as exc:
        return render_template("auth/two_factor.html", **_setup_context(errors=form_errors(exc))), exc.status
    session.pop(SETUP_REQUIRED, None)
    # Post/Redirect/Get: the codes ride in the signed session cookie to the next page only.
    keep_once("recovery_codes", {"user": current_user.id, "codes": codes})
    return redirect(url_for("two_factor_pages.recovery_codes"), 303)


@bp.get("/account/two-factor/recovery-codes")
@login_required
def recovery_codes():
    kept = take_once("recovery_codes")
    if not isinstance(kept, dict) or kept.get("user") != current_user.id:
        flash("Recovery codes are shown only once, right after two-factor is turned on.", "info")
        return redirect(url_for("two_factor_pages.setup_page"))
    codes = [str(code) for code in kept.get("codes", [])]
    text = totp.recovery_codes_text(current_user.email, codes)
    response = Response(
        render_template(
            "auth/recovery_codes.html", codes=codes, download="data:text/plain;charset=utf-8," + quote(text)
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/account/two-factor/disable")
@login_required
def disable():
    try:
        second_factor.disable_totp(
            current_user.id,
            request.form.get("code", ""),
            secret_key(),
            address=client_address(),
            rules=throttle_rules(),
        )
    except (ValidationFailed, Conflict, Throttled) as exc:
        page = render_template("auth/two_factor.html", **_setup_context(errors=form_errors(exc)))
        return page, exc.status, _throttled_headers(exc)
    flash("Two-factor sign-in is off; your recovery codes no longer work.", "success")
    if needs_two_factor_setup(get_user(current_user.id), policy()):
        session[SETUP_REQUIRED] = True
        flash("Your account must use two-factor sign-in: set it up again to go on.", "warning")
    return redirect(url_for("two_factor_pages.setup_page"))


# --- the lead to the set-up page --------------------------------------------------------------


def _enforce_setup():
    if not session.get(SETUP_REQUIRED) or not current_user.is_authenticated:
        return None
    if current_user.must_change_password:
        return None  # the new password first (webapp.auth), then two-factor
    if request.path.startswith("/api/"):
        if request.path in _OPEN_API_WHILE_SETTING_UP or bearer_token() is not None:
            return None  # a bearer token is its own credential
        raise PermissionDenied("Set up two-factor sign-in at /account/two-factor before you go on.")
    if request.endpoint not in _OPEN_WHILE_SETTING_UP:
        return redirect(url_for("two_factor_pages.setup_page"))
    return None


def init_app(app: Flask) -> None:
    # Migrations not applied yet (migrate_on_start off): the note waits for the next start.
    with app.app_context(), contextlib.suppress(peewee.DatabaseError):
        pin_policy_of_existing_home(current_instance().paths.settings_file, current_instance().settings)
    app.before_request(_enforce_setup)
    app.register_blueprint(bp)
