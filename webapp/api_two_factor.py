"""Two-factor in the JSON API: ``/api/me/totp`` (set up, confirm, turn off) and an admin's
``/api/users/{id}/totp/reset``. Signing in with a code is ``/api/auth/token``'s ``otp`` (api_users)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, session

from appliance.accounts import second_factor, totp
from appliance.errors import BadRequest
from appliance.storage.models import User
from webapp.auth import client_address, require_admin, require_write, throttle_rules
from webapp.pages_two_factor import SETUP_REQUIRED, secret_key
from webapp.strict_input import json_object

bp = Blueprint("api_two_factor", __name__, url_prefix="/api")


def _own_user() -> User:
    principal = require_write()
    if principal.user is None:
        raise BadRequest("The control token has no two-factor sign-in.")
    return principal.user


@bp.post("/me/totp")
def start_totp():
    """A new secret for the caller (not active until confirmed): ``{"secret", "otpauth_uri"}``."""
    user = _own_user()
    if request.content_length:
        json_object(())
    setup = totp.start_setup(user.id, secret_key(), address=client_address())
    return jsonify({"secret": setup.secret, "otpauth_uri": setup.otpauth_uri})


@bp.post("/me/totp/confirm")
def confirm_totp():
    """Turn two-factor on with a first ``code``: ``{"recovery_codes": [10 codes]}`` (shown once)."""
    user = _own_user()
    data = json_object(("code",))
    codes = totp.confirm_setup(user.id, data.get("code"), secret_key(), address=client_address())
    session.pop(SETUP_REQUIRED, None)
    return jsonify({"recovery_codes": codes})


@bp.delete("/me/totp")
def disable_totp():
    """Turn two-factor off; needs a current ``code`` (or a recovery code). Throttled like a sign-in."""
    user = _own_user()
    data = json_object(("code",))
    second_factor.disable_totp(
        user.id, data.get("code"), secret_key(), address=client_address(), rules=throttle_rules()
    )
    return Response(status=204)


@bp.post("/users/<int:user_id>/totp/reset")
def reset_totp(user_id: int):
    """An admin turns user ``user_id``'s two-factor off (audited ``totp.reset``); answers ``{"id", "email", "totp"}``."""
    principal = require_admin()
    require_write()
    user = totp.reset_totp(user_id, actor=principal.actor, address=client_address())
    return jsonify({"id": user.id, "email": user.email, "totp": False})
