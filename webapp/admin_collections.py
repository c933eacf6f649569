"""``/admin/collections``: admins define collections, their fields (add, change, rename, reorder, remove) and
per-role permissions, with plain forms. Every change goes through the collections service, whose refusals
(a name taken, existing records that would not fit) come back as form errors; a removal first shows what
it would destroy ("3 records have a value in this field").
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user

from appliance.accounts import roles
from appliance.actors import ADMIN_ROLE
from appliance.collections.access import list_collections
from appliance.collections.definitions import (
    ACTIONS,
    create_collection,
    delete_collection,
    get_collection,
    update_collection,
)
from appliance.collections.field_rules import FIELD_RULE_KINDS, FIELD_RULES_KEY
from appliance.collections.fields import parse_field
from appliance.collections.types import FIELD_TYPES
from appliance.collections.usage import field_value_counts, record_count
from appliance.collections.values import FieldError
from appliance.errors import ApplianceError, Conflict, NotFound, ValidationFailed
from appliance.storage.blobs import remove_unreferenced
from webapp import field_words
from webapp.auth import admin_pages
from webapp.context import current_instance
from webapp.layout import add_nav_link, form_errors

bp = Blueprint("admin_collections", __name__, url_prefix="/admin/collections")

_FORM_ERRORS = (ValidationFailed, Conflict)
# The inputs of the field form, by the option of a definition each one gives.
_INPUTS = frozenset(
    {"name", "label", "required", "unique", "filterable", "default", "min", "max", "pattern", "choices", "formula"}
    | {"collection", "cascade", "max_size", "accept"}
)


def _update(name: str, values: dict[str, Any]) -> Any:
    """Change a collection as the signed-in admin; files of removed file fields are removed too."""
    return update_collection(name, values, _actor(), files_dir=current_instance().paths.files_dir)


admin_pages(bp, "Only admins may define collections.")


def _actor() -> Any:
    return current_user.user


def _errors(exc: ApplianceError) -> dict[str, str]:
    """Form errors; the service's ``fields.<name>`` messages are about the whole field form, so they go on top."""
    errors = form_errors(exc)
    general = [message for key, message in errors.items() if key.startswith("fields") or key == "_form"]
    out = {k: v for k, v in errors.items() if not (k.startswith("fields") or k == "_form")}
    if general:
        out["_form"] = " ".join(general)
    return out


def definition_errors(exc: FieldError) -> dict[str, str]:
    """A refused definition's problems by the field form's input each is about (by the error's
    ``option``), in the form's words; one no input gives (an unknown option) goes on top (``_form``)."""
    errors: dict[str, str] = {}
    for problem in exc.problems:
        key = problem.option if problem.option in _INPUTS else "_form"
        if key == "_form" and problem.option == "rename_from":
            key = "name"
        words = problem.form_message
        errors[key] = f"{errors[key]} {words}" if key in errors else words
    return errors


def _check(definition: dict[str, Any]) -> None:
    """Refuse a definition the field form can point at, before the service checks it with the others;
    raises :class:`ValidationFailed` keyed by the form's inputs."""
    try:
        parse_field(definition)
    except FieldError as exc:
        raise ValidationFailed(definition_errors(exc)) from None


def type_choices() -> list[tuple[str, str]]:
    """The type select of the field form: every type of the table, by name, in the words people read."""
    return [(entry.name, entry.label) for entry in FIELD_TYPES.values()]


# --- form values to field definitions ---------------------------------------------------------


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # the service names what is wrong


def field_from_form(form: Any, kind: str) -> dict[str, Any]:
    """A field definition (API.md's JSON form) from the field form; the service checks it."""
    raw: dict[str, Any] = {"name": form.get("name", "").strip(), "type": kind}
    entry = FIELD_TYPES.get(kind)
    numeric = entry is not None and entry.bounds in ("length", "number")
    structured = entry is not None and entry.widget == "json"  # a default typed as JSON text
    if form.get("label", "").strip():
        raw["label"] = form.get("label").strip()
    for flag in ("required", "unique", "filterable", "cascade"):
        if form.get(flag):
            raw[flag] = True
    for bound in ("min", "max"):
        text = form.get(bound, "").strip()
        if text:
            raw[bound] = _number(text) if numeric else text
    for key in ("pattern", "formula", "collection"):
        text = form.get(key, "").strip()
        if text:
            raw[key] = text
    choices = [c.strip() for c in form.get("choices", "").replace("\r", "").split("\n") if c.strip()]
    if choices or (entry is not None and "choices" in entry.needs):
        raw["choices"] = choices
    accept = [a.strip() for a in form.get("accept", "").split(",") if a.strip()]
    if accept:
        raw["accept"] = accept
    if form.get("max_size", "").strip():
        raw["max_size"] = _number(form.get("max_size").strip())
    default = form.get("default", "")
    if default.strip():
        if structured:
            try:
                raw["default"] = json.loads(default)
            except ValueError:
                raw["default"] = default
        else:
            raw["default"] = default.strip()
    return raw


def field_to_form(definition: dict[str, Any]) -> dict[str, Any]:
    """The field form's values for an existing field."""
    values: dict[str, Any] = {k: v for k, v in definition.items() if k not in ("choices", "accept", "default")}
    values["choices"] = "\n".join(definition.get("choices") or [])
    values["accept"] = ", ".join(definition.get("accept") or [])
    if "default" in definition:
        default = definition["default"]
        values["default"] = (
            json.dumps(default)
            if FIELD_TYPES[definition["type"]].widget == "json"
            else str(default).lower()
            if isinstance(default, bool)
            else str(default)
        )
    for key in ("min", "max", "max_size"):
        if key in values:
            values[key] = str(values[key])
    return values


def _definitions(name: str) -> list[dict[str, Any]]:
    return [f.to_dict() for f in get_collection(name).fields]


# --- pages --------------------------------------------------------------------------------------


def _roles() -> list[Any]:
    return [r for r in roles.list_roles() if r.name != ADMIN_ROLE]


def _index_page(status: int = 200, **context: Any):
    defaults = {"collections": list_collections(_actor()), "values": {}, "errors": {}}
    defaults.update(context)
    return render_template("admin/collections.html", **defaults), status


@bp.get("")
def index():
    return _index_page()


@bp.post("")
def create():
    values = {"name": request.form.get("name", "").strip(), "label": request.form.get("label", "").strip()}
    data: dict[str, Any] = {"name": values["name"], "fields": [], "permissions": {}}
    if values["label"]:
        data["label"] = values["label"]
    try:
        collection = create_collection(data, _actor())
    except _FORM_ERRORS as exc:
        return _index_page(exc.status, values=values, errors=form_errors(exc))
    flash(
        f"Created the collection {collection.name}; now add its fields. Nobody but admins can see it "
        "until you set permissions below.",
        "success",
    )
    return redirect(url_for("admin_collections.show", name=collection.name))


def _collection_page(name: str, status: int = 200, **context: Any):
    collection = get_collection(name)
    defaults = {
        "collection": collection,
        "counts": field_value_counts(collection),
        "roles": _roles(),
        "actions": ACTIONS,
        "types": type_choices(),
        "collections": [c.name for c in list_collections(_actor())],
        "label_values": {"label": collection.label},
        "label_errors": {},
        "add_values": {"type": "text"},
        "add_errors": {},
        "permission_errors": {},
        "field_errors": {},
    }
    defaults.update(context)
    return render_template("admin/collections_edit.html", **defaults), status


@bp.get("/<name>")
def show(name: str):
    return _collection_page(name)


@bp.post("/<name>/label")
def change_label(name: str):
    values = {"label": request.form.get("label", "")}
    try:
        _update(name, values)
    except _FORM_ERRORS as exc:
        return _collection_page(name, exc.status, label_values=values, label_errors=form_errors(exc))
    flash("Saved the label.", "success")
    return redirect(url_for("admin_collections.show", name=name))


@bp.get("/<name>/fields")
def fields_page(name: str):
    """The address a refused field form leaves in the address bar: back to the collection's page."""
    get_collection(name)
    return redirect(url_for("admin_collections.show", name=name, _anchor="add-field"))


@bp.post("/<name>/fields")
def add_field(name: str):
    kind = request.form.get("type", "")
    definition = field_from_form(request.form, kind)
    try:
        _check(definition)
        _update(name, {"fields": [*_definitions(name), definition]})
    except _FORM_ERRORS as exc:
        return _collection_page(name, exc.status, add_values=request.form.to_dict(), add_errors=_errors(exc))
    flash(f"Added the field {definition['name']}.", "success")
    return redirect(url_for("admin_collections.show", name=name))


def _find(definitions: list[dict[str, Any]], field: str) -> int:
    for position, definition in enumerate(definitions):
        if definition["name"] == field:
            return position
    raise NotFound(f"No field called {field!r}.")


def _field_page(name: str, field: str, status: int = 200, **context: Any):
    collection = get_collection(name)
    definitions = [f.to_dict() for f in collection.fields]
    definition = definitions[_find(definitions, field)]
    defaults = {
        "collection": collection,
        "field": definition,
        "count": field_value_counts(collection).get(field, 0),
        "collections": [c.name for c in list_collections(_actor())],
        "values": field_to_form(definition),
        "errors": {},
    }
    defaults.update(context)
    return render_template("admin/collections_field.html", **defaults), status


@bp.get("/<name>/fields/<field>")
def edit_field(name: str, field: str):
    return _field_page(name, field)


@bp.post("/<name>/fields/<field>")
def change_field(name: str, field: str):
    definitions = _definitions(name)
    position = _find(definitions, field)
    definition = field_from_form(request.form, definitions[position]["type"])
    if definition["name"] != field:
        definition["rename_from"] = field
    definitions[position] = definition
    try:
        _check(definition)
        _update(name, {"fields": definitions})
    except _FORM_ERRORS as exc:
        typed = {**request.form.to_dict(), "type": definition["type"]}  # the form does not send the type
        return _field_page(name, field, exc.status, values=typed, errors=_errors(exc))
    flash(f"Saved the field {definition['name']}.", "success")
    return redirect(url_for("admin_collections.show", name=name))


@bp.post("/<name>/fields/<field>/move")
def move_field(name: str, field: str):
    definitions = _definitions(name)
    position = _find(definitions, field)
    target = position - 1 if request.form.get("direction") == "up" else position + 1
    if 0 <= target < len(definitions):
        definitions[position], definitions[target] = definitions[target], definitions[position]
        try:
            _update(name, {"fields": definitions})
        except _FORM_ERRORS as exc:
            return _collection_page(name, exc.status, field_errors=_errors(exc))
    return redirect(url_for("admin_collections.show", name=name) + "#fields")


@bp.get("/<name>/fields/<field>/remove")
def confirm_remove_field(name: str, field: str):
    return _field_page(name, field, removing=True)


@bp.post("/<name>/fields/<field>/remove")
def remove_field(name: str, field: str):
    definitions = _definitions(name)
    position = _find(definitions, field)
    if request.form.get("confirm") != "yes":
        return _field_page(name, field, 422, removing=True, errors={"confirm": "Tick the box to confirm."})
    del definitions[position]
    try:
        _update(name, {"fields": definitions})
    except _FORM_ERRORS as exc:
        return _field_page(name, field, exc.status, removing=True, errors=_errors(exc))
    flash(f"Removed the field {field} and its values.", "success")
    return redirect(url_for("admin_collections.show", name=name))


def field_rules_from_form(form: Any, role_names: list[str], field_names: list[str]) -> dict[str, Any]:
    """The field rules (``{"role": {"hidden": [...], "read_only": [...]}}``) of the permissions form's
    field table: one select ``field-<role>-<field>`` per role and field, ``""`` (sees and changes it),
    ``read_only`` or ``hidden``; any other value is passed on for the service to refuse."""
    rules: dict[str, dict[str, list[str]]] = {}
    for role in role_names:
        for field_name in field_names:
            choice = form.get(f"field-{role}-{field_name}", "")
            if choice:
                kind = choice if choice in FIELD_RULE_KINDS else choice[:40]
                rules.setdefault(role, {}).setdefault(kind, []).append(field_name)
    return rules


@bp.post("/<name>/permissions")
def change_permissions(name: str):
    permissions: dict[str, Any] = {}
    for role in _roles():
        grants = []
        for action in ACTIONS:
            choice = request.form.get(f"perm-{role.name}-{action}", "")
            if choice == "all":
                grants.append(action)
            elif choice == "own" and action != "create":
                grants.append(f"{action}:own")
            elif choice not in ("", "own"):
                grants.append(choice)  # the service refuses what it does not know
        if grants:
            permissions[role.name] = grants
    rules = field_rules_from_form(
        request.form, [r.name for r in _roles()], [f.name for f in get_collection(name).fields]
    )
    if rules:
        permissions[FIELD_RULES_KEY] = rules
    try:
        _update(name, {"permissions": permissions})
    except _FORM_ERRORS as exc:
        return _collection_page(name, exc.status, permission_errors=form_errors(exc))
    flash("Saved the permissions.", "success")
    return redirect(url_for("admin_collections.show", name=name))


@bp.get("/<name>/delete")
def confirm_delete(name: str):
    collection = get_collection(name)
    return render_template(
        "admin/collections_delete.html", collection=collection, records=record_count(collection), errors={}
    )


@bp.post("/<name>/delete")
def delete(name: str):
    collection = get_collection(name)
    try:
        if request.form.get("confirm") != "yes":
            raise ValidationFailed({"confirm": "Tick the box to confirm."})
        orphaned = delete_collection(name, _actor())
    except _FORM_ERRORS as exc:
        page = render_template(
            "admin/collections_delete.html",
            collection=collection,
            records=record_count(collection),
            errors=form_errors(exc),
        )
        return page, exc.status
    remove_unreferenced(current_instance().paths.files_dir, orphaned)
    flash(f"Removed the collection {name} and its records.", "success")
    return redirect(url_for("admin_collections.index"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    field_words.init_app(app)
    add_nav_link(app, "Collections", "/admin/collections", admin_only=True)
