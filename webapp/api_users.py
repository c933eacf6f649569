"""Accounts in the JSON API: ``/api/auth/token``, ``/api/me``, ``/api/users``, ``/api/roles``, ``/api/tokens``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from appliance.accounts import roles, tokens, totp, user_changes, users
from appliance.accounts.sign_in import sign_in
from appliance.accounts.two_factor_policy import serialize_users_for_admins
from appliance.errors import BadRequest, PermissionDenied
from appliance.storage.pagination import paginate, parse_paging
from webapp.auth import client_address, current_principal, require_admin, require_write, throttle_rules
from webapp.context import current_instance
from webapp.pages_two_factor import secret_key
from webapp.strict_input import json_object, only_fields

bp = Blueprint("api_users", __name__, url_prefix="/api")


def _created(body: dict[str, Any]) -> tuple[Response, int]:
    return jsonify(body), 201


def _bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise BadRequest(f"'{name}' must be true or false.", parameter=name)


@bp.post("/auth/token")
def issue_token():
    """Sign in with email and password (and ``otp`` when two-factor is on); answer a new API token (201).
    Throttled like the sign-in page: a wrong code counts like a wrong password."""
    data = json_object()
    only_fields(
        data,
        (
            "email",
            "password",
            "otp",
            "name",
            "scope",
            "expires_days",
            "mcp",
            "mcp_tools",
            "mcp_collections",
            "mcp_approval",
        ),
    )
    # The token's fields are checked first, so a bad one refuses before anyone is signed in.
    name, scope, expires_days = tokens.check_token_inputs(
        data.get("name", "API token"),
        data.get("scope", "write"),
        data.get("expires_days", current_instance().settings.token_default_days),
    )
    user = sign_in(
        data.get("email"),
        data.get("password"),
        address=client_address(),
        rules=throttle_rules(),
        via="api",
        otp=data.get("otp"),
        secret_key=secret_key(),
    )
    if user.must_change_password:
        raise PermissionDenied("Your password was reset; choose a new one at /account before you make tokens.")
    token, secret = tokens.create_token(
        user.id,
        name,
        scope=scope,
        expires_days=expires_days,
        mcp=data.get("mcp", False),
        mcp_tools=data.get("mcp_tools"),
        mcp_collections=data.get("mcp_collections"),
        mcp_approval=data.get("mcp_approval", False),
        actor=user,
        address=client_address(),
    )
    return _created({"token": secret, **tokens.serialize_token(token)})


@bp.get("/me")
def me():
    principal = current_principal()
    if principal.user is None:
        body: dict[str, Any] = {"id": None, "email": None, "name": "control token", "role": "admin"}
    else:
        body = users.serialize_user(principal.user)
        body["totp"] = totp.totp_enabled(principal.user.id)
    body["auth"] = {"via": principal.via, "scope": principal.scope}
    return jsonify(body)


@bp.post("/me/sign-out-everywhere")
def sign_out_everywhere():
    principal = require_write()
    if principal.user is None:
        raise BadRequest("The control token has no sessions.")
    user_changes.sign_out_everywhere(principal.user.id, actor=principal.actor, address=client_address())
    return Response(status=204)


@bp.get("/users")
def list_users():
    require_admin()
    page, page_size = parse_paging(request.args)
    role = request.args.get("role") or None
    query = users.list_users(search=request.args.get("search"), role=role, active=_bool_arg("active"))
    listing = paginate(query, page, page_size, lambda user: user)
    # Admins see who has two-factor on and who is locked out (the console's Users tab shows both).
    listing["items"] = serialize_users_for_admins(listing["items"])
    return jsonify(listing)


@bp.post("/users")
def create_user():
    principal = require_admin()
    data = json_object()
    only_fields(data, ("email", "name", "role", "password", "must_change_password"))
    must_change = data.get("must_change_password", False)
    if not isinstance(must_change, bool):
        raise BadRequest("'must_change_password' must be true or false.")
    user = user_changes.create_user(
        data.get("email"),
        data.get("name"),
        data.get("role"),
        data.get("password"),
        actor=principal.actor,
        address=client_address(),
        must_change_password=must_change,
    )
    return _created(users.serialize_user(user))


@bp.get("/users/<int:user_id>")
def get_user(user_id: int):
    require_admin()
    return jsonify(users.serialize_user(users.get_user(user_id)))


@bp.patch("/users/<int:user_id>")
def update_user(user_id: int):
    """Change ``email``, ``name``, ``role``, ``active``; ``password`` resets it (with ``must_change_password``,
    true unless given, and ``revoke_tokens``, true unless given: the user's API tokens go too), all in one
    transaction."""
    principal = require_admin()
    data = json_object()
    only_fields(data, (*user_changes.EDITABLE_FIELDS, "password", "must_change_password", "revoke_tokens"))
    revoke_tokens = data.get("revoke_tokens", True)
    if not isinstance(revoke_tokens, bool):
        raise BadRequest("'revoke_tokens' must be true or false.")
    if "revoke_tokens" in data and "password" not in data:
        raise BadRequest("'revoke_tokens' goes with a new 'password'.")
    changes = {key: value for key, value in data.items() if key in user_changes.EDITABLE_FIELDS}
    # A null password is a bad password (the policy says why), not "no password given".
    password = (data["password"] if data["password"] is not None else "") if "password" in data else None
    user = user_changes.update_user(
        user_id,
        changes,
        password=password,
        must_change_password=data.get("must_change_password"),
        revoke_tokens=revoke_tokens,
        actor=principal.actor,
        address=client_address(),
    )
    return jsonify(users.serialize_user(user))


@bp.post("/users/<int:user_id>/sign-out-everywhere")
def sign_out_user_everywhere(user_id: int):
    """End every session of user ``user_id`` (admins; the console uses it while the server runs)."""
    principal = require_admin()
    require_write()
    user_changes.sign_out_everywhere(user_id, actor=principal.actor, address=client_address())
    return Response(status=204)


@bp.post("/users/<int:user_id>/unlock")
def unlock_user(user_id: int):
    """Lift user ``user_id``'s sign-in lock-out (admins; audited); answers the user."""
    principal = require_admin()
    require_write()
    user = user_changes.unlock_user(user_id, actor=principal.actor, address=client_address())
    return jsonify(users.serialize_user(user))


@bp.delete("/users/<int:user_id>")
def delete_user(user_id: int):
    principal = require_admin()
    user_changes.delete_user(user_id, actor=principal.actor, address=client_address())
    return Response(status=204)


@bp.get("/roles")
def list_roles():
    current_principal()
    return jsonify([roles.serialize_role(role) for role in roles.list_roles()])


@bp.post("/roles")
def create_role():
    principal = require_admin()
    data = json_object()
    only_fields(data, ("name", "label"))
    role = roles.create_role(data.get("name"), data.get("label"), actor=principal.actor, address=client_address())
    return _created(roles.serialize_role(role))


@bp.delete("/roles/<name>")
def delete_role(name: str):
    """Remove a custom role; 409 for a built-in one, or one a user has or a collection grants."""
    principal = require_admin()
    roles.delete_role(name, actor=principal.actor, address=client_address())
    return Response(status=204)


@bp.get("/tokens")
def list_tokens():
    """The caller's tokens; an admin may ask for anyone's with ``?user=ID``."""
    principal = current_principal()
    page, page_size = parse_paging(request.args)
    wanted = request.args.get("user")
    if wanted:
        if not principal.is_admin:
            raise PermissionDenied("Only admins may list other users' tokens.")
        user_id: Any = users.get_user(wanted).id
    elif principal.user is not None:
        user_id = principal.user.id
    else:
        user_id = None  # the control token sees every token
    return jsonify(paginate(tokens.list_tokens(user_id), page, page_size, tokens.serialize_token))


@bp.delete("/tokens/<int:token_id>")
def revoke_token(token_id: int):
    principal = require_write()
    tokens.revoke_token(token_id, actor=principal.actor, address=client_address())
    return Response(status=204)
