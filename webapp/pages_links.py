"""Pages of the one-time account links: ``/invite/<token>``, ``/forgot`` and ``/reset/<token>``.

Open to visitors who are not signed in. A dead link gets a page that says
plainly why (410); a refused password comes back with its error beside the
field. Choosing the password through a link signs the browser in.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from appliance.accounts import invitations, password_resets
from appliance.accounts.totp import totp_enabled
from appliance.errors import LinkNotUsable, Throttled, ValidationFailed
from appliance.jobs.account_mail import RESET_PATH, link_url, mail_ready, send_reset_later
from appliance.storage.models import User
from webapp.auth import client_address, sign_in_session
from webapp.context import current_instance
from webapp.layout import form_errors
from webapp.pages_two_factor import after_sign_in

bp = Blueprint("link_pages", __name__)


def _dead(exc: LinkNotUsable, title: str):
    return render_template("auth/link_dead.html", title=title, message=exc.message), exc.status


def _chosen_password() -> str:
    """The new password of the form; :class:`ValidationFailed` when the two boxes differ."""
    password = request.form.get("password", "")
    if password != request.form.get("password_confirm", ""):
        raise ValidationFailed({"password_confirm": "The two passwords differ."})
    return password


@bp.route("/invite/<token>", methods=["GET", "POST"])
def invite(token: str):
    try:
        user = invitations.check_invitation(token)
    except LinkNotUsable as exc:
        return _dead(exc, "Invitation")
    if request.method == "GET":
        return render_template("auth/invite.html", user=user, errors={})
    try:
        user = invitations.accept_invitation(token, _chosen_password(), address=client_address())
    except LinkNotUsable as exc:
        return _dead(exc, "Invitation")
    except ValidationFailed as exc:
        return render_template("auth/invite.html", user=user, errors=form_errors(exc)), exc.status
    return _signed_in(user, f"Welcome, {user.name}! Your password is set and you are signed in.")


@bp.route("/forgot", methods=["GET", "POST"])
def forgot():
    settings = current_instance().settings
    if not mail_ready(settings):
        return render_template("auth/forgot.html", mail=False, sent=False, values={}, errors={})
    if request.method == "GET":
        return render_template("auth/forgot.html", mail=True, sent=False, values={}, errors={})
    email = request.form.get("email", "")
    try:
        made = password_resets.request_password_reset(email, address=client_address())
    except (ValidationFailed, Throttled) as exc:
        page = render_template(
            "auth/forgot.html", mail=True, sent=False, values={"email": email}, errors=form_errors(exc)
        )
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else {}
        return page, exc.status, headers
    if made is not None:
        url = link_url(settings, request.url_root, RESET_PATH, made.secret)
        send_reset_later(settings, made.user.email, made.user.name, url, made.expires_at)
    return render_template(
        "auth/forgot.html", mail=True, sent=True, answer=password_resets.ANSWER, values={}, errors={}
    )


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    try:
        user = password_resets.check_reset_link(token)
    except LinkNotUsable as exc:
        return _dead(exc, "Password reset")
    if request.method == "GET":
        return render_template("auth/reset.html", user=user, errors={})
    try:
        user = password_resets.complete_password_reset(token, _chosen_password(), address=client_address())
    except LinkNotUsable as exc:
        return _dead(exc, "Password reset")
    except ValidationFailed as exc:
        return render_template("auth/reset.html", user=user, errors=form_errors(exc)), exc.status
    return _signed_in(
        user,
        "Your new password is set and you are signed in; every other session of yours has ended. "
        "Your API tokens keep working.",
    )


def _signed_in(user: User, message: str) -> Response:
    """Sign in after a one-time link set the password: never past a second factor (a mailed link proves the
    mailbox, not the phone: with two-factor on, the code is asked as at any sign-in), and through the same
    two-factor set-up requirement as a sign-in with a password."""
    if totp_enabled(user.id):
        flash("Your new password is set. Sign in with it and the code from your app.", "success")
        return redirect(url_for("auth_pages.login"))
    sign_in_session(user)
    flash(message, "success")
    return after_sign_in(user) or redirect(url_for("home.index"))
