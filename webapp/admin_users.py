"""``/admin/users``: admins list, add, change, disable, enable, unlock, reset and delete users; add and remove roles."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from appliance.accounts import roles, tokens, user_changes, users
from appliance.accounts.passwords import generate_password
from appliance.accounts.throttle import locked_accounts
from appliance.accounts.totp import reset_totp, totp_enabled, users_with_totp
from appliance.errors import BadRequest, Conflict, NotFound, ValidationFailed
from appliance.storage.pagination import paginate, parse_paging
from webapp.auth import admin_pages, client_address
from webapp.layout import form_errors, keep_once, take_once

bp = Blueprint("admin_users", __name__, url_prefix="/admin")

_FORM_ERRORS = (ValidationFailed, Conflict)


admin_pages(bp, "Only admins may manage users.")


def _actor() -> dict[str, Any]:
    return {"actor": current_user.user, "address": client_address()}


def _role_options() -> list[tuple[str, str]]:
    return [(role.name, role.label) for role in roles.list_roles()]


_STATES = {"": None, "active": True, "disabled": False}


def _active_filter(raw: str | None) -> bool | None:
    """The ``state`` filter; an unknown value is a 400, never ignored (API.md's rule for listings)."""
    if (raw or "") not in _STATES:
        raise BadRequest(f"Unknown state {raw[:40]!r}: use active or disabled.", parameter="state")
    return _STATES[raw or ""]


def _list_page(status: int = 200, **context: Any):
    args = request.args
    page, page_size = parse_paging(args)
    # An unknown role is refused by the service, like the API's listing.
    query = users.list_users(
        search=args.get("search"), role=args.get("role") or None, active=_active_filter(args.get("state"))
    )
    listing = paginate(query, page, page_size, lambda user: user)
    defaults = {
        "listing": listing,
        "locked": locked_accounts(user.email for user in listing["items"]),
        "with_totp": users_with_totp(user.id for user in listing["items"]),
        "filters": {"search": args.get("search", ""), "role": args.get("role", ""), "state": args.get("state", "")},
        "role_options": _role_options(),
        "roles": roles.list_roles(),
        "add_values": {"role": "editor", "must_change": "yes"},
        "add_errors": {},
        "role_values": {},
        "role_errors": {},
        "role_delete_errors": {},
    }
    defaults.update(context)
    return render_template("admin/users.html", **defaults), status


@bp.get("/users")
def list_users():
    return _list_page()


@bp.post("/users")
def add_user():
    form = request.form
    values = {
        "email": form.get("email", ""),
        "name": form.get("name", ""),
        "role": form.get("role", ""),
        "must_change": form.get("must_change", ""),
        "generate": form.get("generate", ""),
    }
    try:
        password = _chosen_password(form, bool(values["generate"]))
        user = user_changes.create_user(
            values["email"],
            values["name"],
            values["role"],
            password,
            must_change_password=bool(values["must_change"]),
            **_actor(),
        )
    except _FORM_ERRORS as exc:
        return _list_page(exc.status, add_values=values, add_errors=form_errors(exc))
    flash(f"Added {user.email}.", "success")
    if values["generate"]:
        keep_once("generated_password", {"user": user.id, "password": password})
    return redirect(url_for("admin_users.show_user", user_id=user.id))


def _chosen_password(form: Any, generate: bool) -> str:
    """The password typed in the form, or a generated one when "Generate" is ticked and the box left empty."""
    typed = form.get("password", "")
    if not generate:
        return typed
    if typed:
        raise ValidationFailed({"password": "Leave the box empty to have a password generated, or untick Generate."})
    return generate_password()


@bp.post("/roles")
def add_role():
    values = {"name": request.form.get("name", ""), "label": request.form.get("label", "")}
    try:
        role = roles.create_role(values["name"], values["label"], **_actor())
    except _FORM_ERRORS as exc:
        return _list_page(exc.status, role_values=values, role_errors=form_errors(exc))
    flash(f"Added the role {role.name}.", "success")
    return redirect(url_for("admin_users.list_users"))


@bp.post("/roles/<name>/delete")
def delete_role(name: str):
    try:
        roles.delete_role(name, **_actor())
    except (Conflict, NotFound) as exc:
        return _list_page(exc.status, role_delete_errors={"_form": exc.message})
    flash(f"Removed the role {name}.", "success")
    return redirect(url_for("admin_users.list_users"))


def _user_page(user_id: int, status: int = 200, **context: Any):
    user = users.get_user(user_id)
    defaults = {
        "user": user,
        "tokens": list(tokens.list_tokens(user.id)),
        "totp_on": totp_enabled(user.id),
        "role_options": _role_options(),
        "edit_values": {"email": user.email, "name": user.name, "role": user.role},
        "edit_errors": {},
        "password_errors": {},
        "state_errors": {},
        "delete_errors": {},
        "generated_password": None,
    }
    defaults.update(context)
    return render_template("admin/user.html", **defaults), status


@bp.get("/users/<int:user_id>")
def show_user(user_id: int):
    # A password generated just before (Post/Redirect/Get): shown on this page once, then gone.
    generated = take_once("generated_password")
    if isinstance(generated, dict) and generated.get("user") == user_id:
        return _user_page(user_id, generated_password=generated["password"])
    return _user_page(user_id)


@bp.post("/users/<int:user_id>")
def edit_user(user_id: int):
    values = {key: request.form.get(key, "") for key in ("email", "name", "role")}
    try:
        user_changes.update_user(user_id, values, **_actor())
    except _FORM_ERRORS as exc:
        return _user_page(user_id, exc.status, edit_values=values, edit_errors=form_errors(exc))
    flash("Saved.", "success")
    return redirect(url_for("admin_users.show_user", user_id=user_id))


@bp.post("/users/<int:user_id>/disable")
def disable_user(user_id: int):
    try:
        user = user_changes.disable_user(user_id, **_actor())
    except _FORM_ERRORS as exc:
        return _user_page(user_id, exc.status, state_errors=form_errors(exc))
    flash(f"{user.email} is disabled; their sessions have ended.", "success")
    return redirect(url_for("admin_users.show_user", user_id=user_id))


@bp.post("/users/<int:user_id>/enable")
def enable_user(user_id: int):
    user = user_changes.enable_user(user_id, **_actor())
    flash(f"{user.email} may sign in again.", "success")
    return redirect(url_for("admin_users.show_user", user_id=user_id))


@bp.post("/users/<int:user_id>/unlock")
def unlock_user(user_id: int):
    user = user_changes.unlock_user(user_id, **_actor())
    flash(f"{user.email} is unlocked and may sign in again.", "success")
    return redirect(url_for("admin_users.list_users"))


@bp.post("/users/<int:user_id>/totp/reset")
def reset_two_factor(user_id: int):
    user = reset_totp(user_id, **_actor())
    flash(
        f"Two-factor sign-in of {user.email} is off; they sign in with their password and set it up again.", "success"
    )
    if request.form.get("back") == "user":
        return redirect(url_for("admin_users.show_user", user_id=user_id))
    return redirect(url_for("admin_users.list_users"))


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id: int):
    try:
        generate = bool(request.form.get("generate"))
        password = _chosen_password(request.form, generate)
        revoke = request.form.get("revoke_tokens") == "yes"
        user = user_changes.set_password(user_id, password, must_change=True, revoke_tokens=revoke, **_actor())
    except _FORM_ERRORS as exc:
        return _user_page(user_id, exc.status, password_errors=form_errors(exc))
    kept = "their API tokens are revoked" if revoke else "their API tokens keep working"
    flash(f"Password of {user.email} reset; they must choose a new one at their next sign-in; {kept}.", "success")
    if generate:
        keep_once("generated_password", {"user": user.id, "password": password})
    return redirect(url_for("admin_users.show_user", user_id=user_id))


@bp.post("/users/<int:user_id>/delete")
def delete_user(user_id: int):
    try:
        if request.form.get("confirm") != "yes":
            raise ValidationFailed({"confirm": "Tick the box to confirm."})
        user = users.get_user(user_id)
        user_changes.delete_user(user_id, **_actor())
    except _FORM_ERRORS as exc:
        return _user_page(user_id, exc.status, delete_errors=form_errors(exc))
    flash(f"Deleted {user.email}.", "success")
    if user.id == current_user.id:
        return redirect(url_for("auth_pages.login"))
    return redirect(url_for("admin_users.list_users"))


@bp.post("/users/<int:user_id>/tokens/<int:token_id>/revoke")
def revoke_token(user_id: int, token_id: int):
    tokens.revoke_token(token_id, **_actor())
    flash("The token is revoked.", "success")
    return redirect(url_for("admin_users.show_user", user_id=user_id))
