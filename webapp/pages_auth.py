"""Sign-in pages: ``/login``, ``/logout``, ``/setup/<token>`` and ``/account``.

Server-rendered and usable without JavaScript. A refused form comes back
with its errors beside the fields and what was typed (never a password).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from appliance.accounts import setup_links, tokens, totp, user_changes, users
from appliance.accounts.sign_in import check_password
from appliance.accounts.token_expiry import EXPIRY_WARNING
from appliance.clock import utcnow
from appliance.errors import Conflict, NotAuthenticated, PermissionDenied, Throttled, ValidationFailed
from webapp.auth import client_address, end_session, renew_session, sign_in_session, throttle_rules
from webapp.context import current_instance
from webapp.layout import form_errors, form_number, keep_once, take_once
from webapp.pages_two_factor import after_sign_in, start_second_step

bp = Blueprint("auth_pages", __name__)

_FORM_ERRORS = (ValidationFailed, Conflict, PermissionDenied)


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path on this site only (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("home.index")


def _setup_hint() -> dict[str, bool]:
    """Whether the sign-in page says how to make the first admin: only while no active admin exists."""
    return {"no_admin": setup_links.needs_setup()}


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_path = request.values.get("next", "")
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(safe_next(next_path))
        return render_template("auth/login.html", values={}, errors={}, next=next_path, **_setup_hint())
    email = request.form.get("email", "")
    try:
        user, needs_code = check_password(
            email, request.form.get("password", ""), address=client_address(), rules=throttle_rules(), via="page"
        )
    except (NotAuthenticated, Throttled, ValidationFailed) as exc:
        response = render_template(
            "auth/login.html", values={"email": email}, errors=form_errors(exc), next=next_path, **_setup_hint()
        )
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else {}
        return response, exc.status, headers
    if needs_code:
        return start_second_step(user, safe_next(next_path))
    sign_in_session(user)
    to_setup = after_sign_in(user)  # two-factor set-up comes right after a new password, if both are due
    if user.must_change_password:
        flash("Your password was reset: choose a new one to go on.", "warning")
        return redirect(url_for("auth_pages.account"))
    return to_setup or redirect(safe_next(next_path))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(url_for("auth_pages.login"))
        return render_template("auth/logout.html")
    end_session()
    flash("You have signed out.", "info")
    return redirect(url_for("auth_pages.login"))


@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token: str):
    setup_links.check_setup_link(token)  # a dead link is a 404 page
    if request.method == "GET":
        return render_template("auth/setup.html", values={}, errors={})
    values = {"email": request.form.get("email", ""), "name": request.form.get("name", "")}
    password = request.form.get("password", "")
    try:
        if password != request.form.get("password_confirm", ""):
            raise ValidationFailed({"password_confirm": "The two passwords differ."})
        user = setup_links.complete_setup(token, values["email"], values["name"], password, address=client_address())
    except _FORM_ERRORS as exc:
        return render_template("auth/setup.html", values=values, errors=form_errors(exc)), exc.status
    sign_in_session(user)
    flash("Welcome! Your admin account is ready.", "success")
    return after_sign_in(user) or redirect(url_for("home.index"))


def _account_page(status: int = 200, **context: Any):
    user = users.get_user(current_user.id)
    defaults = {
        "user": user,
        "tokens": list(tokens.list_tokens(user.id)),
        # A token expiring within this is flagged on the page (and the admins get one alert mail).
        "expiring_before": utcnow() + EXPIRY_WARNING,
        "two_factor_on": totp.totp_enabled(user.id),
        "password_errors": {},
        "token_errors": {},
        "token_values": {"scope": "read", "expires_days": current_instance().settings.token_default_days},
        "new_token": None,
        "new_token_secret": None,
    }
    defaults.update(context)
    return render_template("auth/account.html", **defaults), status


@bp.get("/account")
@login_required
def account():
    # A token made just before (Post/Redirect/Get): shown on this page once, then gone from the session.
    made = take_once("new_token")
    if isinstance(made, dict) and made.get("user") == current_user.id:
        return _account_page(new_token=made, new_token_secret=made["secret"])
    return _account_page()


@bp.post("/account/password")
@login_required
def change_password():
    new_password = request.form.get("new_password", "")
    try:
        if new_password != request.form.get("new_password_confirm", ""):
            raise ValidationFailed({"new_password_confirm": "The two passwords differ."})
        user = user_changes.change_password(
            current_user.id,
            request.form.get("current_password", ""),
            new_password,
            address=client_address(),
            rules=throttle_rules(),
        )
    except (*_FORM_ERRORS, Throttled) as exc:
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else {}
        page, status = _account_page(exc.status, password_errors=form_errors(exc))
        return page, status, headers
    renew_session(user)
    flash(
        "Your password has changed; every other session of yours has ended. Your API tokens keep working: "
        "revoke any you no longer trust below.",
        "success",
    )
    return redirect(url_for("auth_pages.account"))


@bp.post("/account/tokens")
@login_required
def create_token():
    values = {
        "name": request.form.get("name", ""),
        "scope": request.form.get("scope", ""),
        "expires_days": request.form.get("expires_days", ""),
    }
    try:
        token, secret = tokens.create_token(
            current_user.id,
            values["name"],
            scope=values["scope"],
            expires_days=form_number(values["expires_days"]),
            actor=current_user.user,
            address=client_address(),
        )
    except _FORM_ERRORS as exc:
        return _account_page(exc.status, token_errors=form_errors(exc), token_values=values)
    # Post/Redirect/Get: a refresh of the page that shows the secret must not make a second token. The
    # secret rides in the session (signed, HttpOnly cookie) to the next page only, which drops it.
    keep_once("new_token", {"user": current_user.id, "name": token.name, "secret": secret})
    return redirect(url_for("auth_pages.account", _anchor="tokens"), 303)


@bp.get("/account/tokens")
@login_required
def tokens_page():
    """The address a failed token form leaves in the address bar: back to the account page."""
    return redirect(url_for("auth_pages.account", _anchor="tokens"))


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    tokens.revoke_token(token_id, actor=current_user.user, address=client_address())
    flash("The token is revoked.", "success")
    return redirect(url_for("auth_pages.account"))


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    user_changes.sign_out_everywhere(current_user.id, actor=current_user.user, address=client_address())
    end_session()
    flash("You have signed out everywhere.", "info")
    return redirect(url_for("auth_pages.login"))
