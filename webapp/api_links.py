"""One-time account links in the JSON API: ``POST /api/users/invite``, ``POST /api/users/{id}/reset-link``
and ``POST /api/auth/forgot``.

With SMTP set the link is mailed and never in the answer; without it the
admin's answer carries it (``invite_url`` / ``reset_url``) to pass on.
``/api/auth/forgot`` answers 202 and the same words whether or not the
address has an account.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from appliance.accounts import invitations, password_resets, users
from appliance.clock import iso
from appliance.errors import ServiceUnavailable
from appliance.jobs.account_mail import (
    INVITE_PATH,
    RESET_PATH,
    link_url,
    mail_ready,
    send_invitation,
    send_reset,
    send_reset_later,
)
from webapp.auth import client_address, require_admin, require_write
from webapp.context import current_instance
from webapp.strict_input import json_object

bp = Blueprint("api_links", __name__, url_prefix="/api")


def _delivery(mail_problem: str | None, url: str, key: str, expires_at: Any) -> dict[str, Any]:
    """How the link travels: ``mailed`` true, or false with the link (and why no mail went)."""
    out: dict[str, Any] = {"expires_at": iso(expires_at), "mailed": mail_problem is None}
    if mail_problem is not None:
        out[key] = url
        out["mail_error"] = mail_problem
    return out


@bp.post("/users/invite")
def invite_user():
    """Add a user who chooses their own password through a one-time link (72 hours); 201 the user (200 when
    an unused invitation of the same address was replaced) with ``invitation`` and, without mail, ``invite_url``."""
    principal = require_admin()
    require_write()
    data = json_object(("email", "name", "role"))
    made = invitations.invite_user(
        data.get("email"), data.get("name"), data.get("role"), actor=principal.actor, address=client_address()
    )
    settings = current_instance().settings
    url = link_url(settings, request.url_root, INVITE_PATH, made.secret)
    problem = "SMTP is not set up" if not mail_ready(settings) else None
    if problem is None:
        inviter = principal.user.name if principal.user is not None else "An admin"
        problem = send_invitation(settings, made.user.email, made.user.name, url, made.expires_at, inviter)
    delivery = _delivery(problem, url, "invite_url", made.expires_at)
    body = {**users.serialize_user(made.user), "invitation": {**delivery, "again": made.again}}
    if "invite_url" in delivery:
        body["invite_url"] = delivery["invite_url"]
    return jsonify(body), 200 if made.again else 201


@bp.post("/users/<int:user_id>/reset-link")
def create_reset_link(user_id: int):
    """A one-time link (1 hour) where the user chooses a new password: mailed, or ``reset_url`` without mail."""
    principal = require_admin()
    require_write()
    made = password_resets.create_reset_link(user_id, actor=principal.actor, address=client_address())
    settings = current_instance().settings
    url = link_url(settings, request.url_root, RESET_PATH, made.secret)
    problem = "SMTP is not set up" if not mail_ready(settings) else None
    if problem is None:
        problem = send_reset(settings, made.user.email, made.user.name, url, made.expires_at)
    return jsonify(
        {"user": users.serialize_user(made.user), **_delivery(problem, url, "reset_url", made.expires_at)}
    ), 201


@bp.post("/auth/forgot")
def forgot_password():
    """``{"email"}`` → 202 and the same answer whether or not the address has an account; throttled (429).

    503 when mail is not set up here (an admin makes reset links then).
    """
    data = json_object(("email",))
    settings = current_instance().settings
    if not mail_ready(settings):
        raise ServiceUnavailable("Password reset by email is not set up here; ask an admin for a reset link.")
    made = password_resets.request_password_reset(data.get("email"), address=client_address())
    if made is not None:
        url = link_url(settings, request.url_root, RESET_PATH, made.secret)
        send_reset_later(settings, made.user.email, made.user.name, url, made.expires_at)
    return jsonify({"message": password_resets.ANSWER}), 202
