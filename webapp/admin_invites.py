"""``/admin/users/invite`` and reset links: admins invite by email and make one-time links instead of passwords.

With SMTP set, the link goes to the user by mail; without it (or when the
mail fails), the admin is shown the link once, to pass on (never a password).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user

from appliance.accounts import account_links, invitations, password_resets, roles
from appliance.accounts.users import get_user
from appliance.errors import Conflict, ValidationFailed
from appliance.jobs.account_mail import INVITE_PATH, RESET_PATH, link_url, mail_ready, send_invitation, send_reset
from webapp.auth import admin_pages, client_address
from webapp.context import current_instance
from webapp.layout import form_errors, keep_once, take_once

bp = Blueprint("admin_invites", __name__, url_prefix="/admin")

admin_pages(bp, "Only admins may invite users.")

_ONCE = "account_link"


def _invite_page(status: int = 200, **context: Any):
    defaults = {
        "role_options": [(role.name, role.label) for role in roles.list_roles()],
        "values": {"role": "editor"},
        "errors": {},
        "mail": mail_ready(current_instance().settings),
    }
    defaults.update(context)
    return render_template("admin/invite.html", **defaults), status


@bp.get("/users/invite")
def invite_form():
    return _invite_page()


@bp.post("/users/invite")
def invite():
    values = {key: request.form.get(key, "") for key in ("email", "name", "role")}
    try:
        made = invitations.invite_user(
            values["email"], values["name"], values["role"], actor=current_user.user, address=client_address()
        )
    except (ValidationFailed, Conflict) as exc:
        return _invite_page(exc.status, values=values, errors=form_errors(exc))
    settings = current_instance().settings
    url = link_url(settings, request.url_root, INVITE_PATH, made.secret)
    problem = "SMTP is not set up" if not mail_ready(settings) else None
    if problem is None:
        problem = send_invitation(
            settings, made.user.email, made.user.name, url, made.expires_at, current_user.user.name
        )
    if problem is None:
        flash(f"Invitation mailed to {made.user.email}; the link works once, for 72 hours.", "success")
        return redirect(url_for("admin_users.show_user", user_id=made.user.id))
    _keep_link(made.user.id, "invite", url, made.expires_at, problem)
    return redirect(url_for("admin_invites.show_link", user_id=made.user.id), 303)


@bp.post("/users/<int:user_id>/reset-link")
def reset_link(user_id: int):
    try:
        made = password_resets.create_reset_link(user_id, actor=current_user.user, address=client_address())
    except Conflict as exc:
        flash(exc.message, "danger")
        return redirect(url_for("admin_users.show_user", user_id=user_id))
    settings = current_instance().settings
    url = link_url(settings, request.url_root, RESET_PATH, made.secret)
    problem = "SMTP is not set up" if not mail_ready(settings) else None
    if problem is None:
        problem = send_reset(settings, made.user.email, made.user.name, url, made.expires_at)
    if problem is None:
        flash(f"A reset link is mailed to {made.user.email}; it works once, for 1 hour.", "success")
        return redirect(url_for("admin_users.show_user", user_id=user_id))
    _keep_link(user_id, "reset", url, made.expires_at, problem)
    return redirect(url_for("admin_invites.show_link", user_id=user_id), 303)


def _keep_link(user_id: int, kind: str, url: str, expires_at: Any, problem: str) -> None:
    # Post/Redirect/Get: the link rides in the signed session cookie to the next page only.
    keep_once(_ONCE, {"user": user_id, "kind": kind, "url": url, "expires_at": expires_at.isoformat(), "why": problem})


@bp.get("/users/<int:user_id>/link")
def show_link(user_id: int):
    kept = take_once(_ONCE)
    if not isinstance(kept, dict) or kept.get("user") != user_id:
        flash("A link is shown only once; make a new one if it was lost (the new one replaces it).", "info")
        return redirect(url_for("admin_users.show_user", user_id=user_id))
    return render_template("admin/account_link.html", user=get_user(user_id), link=kept)


def _invited_ids(users: Any) -> set[int]:
    """Which of a page of users are invited and have not yet chosen their password (one query)."""
    return account_links.pending_invitations([user.id for user in users])


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.add_template_global(_invited_ids, "invited_ids")
