"""Staff record pages: ``/c/<name>`` (list), ``/c/<name>/new``, ``/c/<name>/<id>`` (with history),
``/c/<name>/<id>/edit``, ``/c/<name>/<id>/delete`` and restoring a version.

Server-rendered and usable without JavaScript. The pages call the same
services as the API (``list_records``, ``create_record``, ``update_record``,
``delete_record``, ``list_history``, ``restore_version``), so the checks and
the error messages are the API's; a refused form comes back with each error
beside its field and what was typed. A list page takes the API listing's
query parameters, so a filtered view is a link one can share. How fields are
shown and read (title, columns, filter row, form values) is in
:mod:`webapp.record_fields`. The pages show a collection as the signed-in
user may see it (:func:`~appliance.collections.access.visible_definition`:
no hidden field anywhere), and a form shows a field read-only for the user
as a disabled input that is never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from appliance.collections.access import (
    access_scope,
    field_rules,
    get_visible_collection,
    require_access,
    visible_definition,
)
from appliance.collections.definitions import CollectionDef
from appliance.errors import BadRequest, Conflict, PermissionDenied, TooLarge, ValidationFailed
from appliance.records.delete import delete_record
from appliance.records.files import Upload
from appliance.records.history import list_history
from appliance.records.query import list_records
from appliance.records.read import get_record
from appliance.records.write import create_record, restore_version, update_record
from webapp import field_words
from webapp.api_records import upload_limit
from webapp.context import current_instance
from webapp.layout import form_errors
from webapp.record_fields import (
    CLEAR_PREFIX,
    checkbox_value,
    filter_inputs,
    form_text,
    list_columns,
    number_text,
    record_label,
    relation_info,
    submitted_values,
    title_field,
)

bp = Blueprint("records_pages", __name__)
bp.add_app_template_filter(number_text, "number")
# The record templates show sizes and read the table of field types through field_words' filters.
bp.record_once(lambda state: field_words.init_app(state.app))

_FORM_ERRORS = (ValidationFailed, Conflict, TooLarge)


def _actor() -> Any:
    return current_user.user


def _scope_allows(collection: CollectionDef, action: str, record: Mapping[str, Any] | None = None) -> bool:
    """Whether the signed-in user may do ``action`` (on ``record``): decides which buttons show."""
    actor = _actor()
    scope = access_scope(collection, actor, action)
    if scope == "own" and record is not None:
        return record.get("created_by") == actor.id
    return scope is not None


# --- list ------------------------------------------------------------------------------------------


def _listing_args() -> dict[str, list[str]]:
    """The query's parameters without empty values (a filter form sends every input, filled or not).

    Every value of a repeated parameter is kept, so the listing refuses it as the API does.
    """
    out: dict[str, list[str]] = {}
    for key, values in request.args.lists():
        kept = [value for value in values if value.strip() != ""]
        if kept:
            out[key] = kept
    return out


def _query(base: str, args: Mapping[str, Any]) -> str:
    """``base`` with ``args`` (a value, or a list of values, per name) as its query string.

    Built by hand because a filter may be called ``name``, like the list route's own argument.
    """
    query = urlencode({k: v for k, v in args.items() if v not in (None, "", [])}, doseq=True)
    return f"{base}?{query}" if query else base


def _export_url(name: str, args: Mapping[str, Any], *, bom: bool = False) -> str:
    """The CSV export of this list: the same filters, search and ordering, not the paging;
    with ``bom`` the Excel flavour (a UTF-8 byte-order mark first)."""
    kept = {k: v for k, v in args.items() if k not in ("page", "page_size", "bom")}
    if bom:
        kept["bom"] = "1"
    return _query(url_for("csv_pages.export", name=name), kept)


@bp.get("/c/<name>")
@login_required
def list_page(name: str):
    actor = _actor()
    collection = visible_definition(get_visible_collection(name, actor), actor)
    require_access(collection, actor, "view")
    query = _listing_args()
    args = {key: values[0] for key, values in query.items()}  # what the form shows again
    error = None
    status = 200
    try:
        listing = list_records(collection, actor, query)
    except BadRequest as exc:
        error, status = exc.message, exc.status
        listing = {"items": [], "page": 1, "page_size": 20, "total_items": 0, "total_pages": 0}
    columns = list_columns(collection)
    relations = {
        spec.name: relation_info(spec, actor, {item.get(spec.name) for item in listing["items"]})
        for spec in columns
        if spec.field_type.widget == "relation"
    }
    filtering = any(key not in ("page", "page_size", "ordering") for key in args)
    return render_template(
        "records/list.html",
        collection=collection,
        columns=columns,
        title=title_field(collection),
        listing=listing,
        args=args,
        filters=filter_inputs(collection, actor),
        filtering=filtering,
        error=error,
        relations=relations,
        may_create=_scope_allows(collection, "create"),
        export_url=_export_url(collection.name, query),
        excel_export_url=_export_url(collection.name, query, bom=True),
    ), status


# --- form ------------------------------------------------------------------------------------------


def _uploads() -> dict[str, Upload]:
    return {
        name: Upload(filename=storage.filename or "file", stream=storage.stream)
        for name, storage in request.files.items()
        if storage.filename
    }


def _form_context(collection: CollectionDef, record: Mapping[str, Any] | None) -> dict[str, Any]:
    relations = {
        spec.name: relation_info(
            spec, _actor(), {record.get(spec.name)} if record and record.get(spec.name) else set(), with_choices=True
        )
        for spec in collection.fields
        if spec.field_type.widget == "relation"
    }
    return {
        "collection": collection,
        "record": record,
        "relations": relations,
        "clear_prefix": CLEAR_PREFIX,
        "locked": field_rules(collection, _actor()).read_only,
    }


def _render_form(
    collection: CollectionDef,
    record: Mapping[str, Any] | None,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    status: int = 200,
):
    return render_template(
        "records/form.html", values=values, errors=errors, **_form_context(collection, record)
    ), status


def _typed_values(collection: CollectionDef) -> dict[str, str]:
    """What was typed, to show again beside the errors."""
    typed = {key: request.form.get(key, "") for key in request.form if key != "csrf_token"}
    for spec in collection.fields:
        if spec.field_type.widget == "checkbox":
            typed[spec.name] = checkbox_value(request.form, spec.name)
    return typed


def _form_write(limit: int) -> dict[str, Any]:
    """The keywords of a record write from a page's form: its files, where files are kept, form-text
    values, and the upload limit (from :func:`_prepare_upload_limit`)."""
    return {"uploads": _uploads(), "files_dir": current_instance().paths.files_dir, "form": True, "upload_limit": limit}


def _prepare_upload_limit() -> int:
    limit = upload_limit()
    request.max_content_length = limit
    return limit


@bp.route("/c/<name>/new", methods=["GET", "POST"])
@login_required
def new_record(name: str):
    actor = _actor()
    collection = visible_definition(get_visible_collection(name, actor), actor)
    require_access(collection, actor, "create")
    if request.method == "GET":
        defaults = {f.name: form_text(f, f.default) for f in collection.fields if f.default is not None}
        return _render_form(collection, None, defaults, {})
    limit = _prepare_upload_limit()
    try:
        values = submitted_values(collection, request.form, skip=field_rules(collection, actor).read_only)
        record = create_record(name, values, actor, **_form_write(limit))
    except _FORM_ERRORS as exc:
        return _render_form(collection, None, _typed_values(collection), form_errors(exc), exc.status)
    flash(f"{collection.label}: {record_label(collection, record)} was created.", "success")
    return redirect(url_for("records_pages.show_record", name=name, record_id=record["id"]))


@bp.route("/c/<name>/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def edit_record(name: str, record_id: int):
    actor = _actor()
    collection = visible_definition(get_visible_collection(name, actor), actor)
    record = get_record(name, record_id, actor)
    require_access(collection, actor, "update")
    if not _scope_allows(collection, "update", record):
        raise PermissionDenied("You may change only the records you created.")
    if request.method == "GET":
        values = {f.name: form_text(f, record.get(f.name)) for f in collection.fields if not f.field_type.upload}
        return _render_form(collection, record, values, {})
    limit = _prepare_upload_limit()
    try:
        values = submitted_values(collection, request.form, skip=field_rules(collection, actor).read_only)
        record = update_record(name, record_id, values, actor, **_form_write(limit))
    except _FORM_ERRORS as exc:
        return _render_form(collection, record, _typed_values(collection), form_errors(exc), exc.status)
    flash(f"{collection.label}: {record_label(collection, record)} was saved.", "success")
    return redirect(url_for("records_pages.show_record", name=name, record_id=record_id))


# --- one record: its values, files, history; delete and restore ------------------------------------


def _history_page(collection: CollectionDef, record_id: int) -> dict[str, Any]:
    params = {"page": request.args.get("history_page") or "1", "page_size": "20"}
    try:
        return list_history(collection, record_id, _actor(), params)
    except BadRequest:
        return list_history(collection, record_id, _actor(), {"page_size": "20"})


def _history_ids(history: Mapping[str, Any], field_name: str) -> set[int]:
    """The related ids a relation field had in this page of history (to show their labels)."""
    ids: set[int] = set()
    for version in history["items"]:
        for value in (version.get("changes") or {}).get(field_name) or ():
            if isinstance(value, int) and not isinstance(value, bool):
                ids.add(value)
    return ids


@bp.get("/c/<name>/<int:record_id>")
@login_required
def show_record(name: str, record_id: int):
    actor = _actor()
    collection = visible_definition(get_visible_collection(name, actor), actor)
    record = get_record(name, record_id, actor)
    history = _history_page(collection, record_id)
    relations = {
        spec.name: relation_info(spec, actor, {record.get(spec.name)} | _history_ids(history, spec.name))
        for spec in collection.fields
        if spec.field_type.widget == "relation"
    }
    may_update = _scope_allows(collection, "update", record)
    return render_template(
        "records/detail.html",
        collection=collection,
        record=record,
        label=record_label(collection, record),
        history=history,
        relations=relations,
        latest_version=history["items"][0]["version"] if history["items"] and history["page"] == 1 else None,
        may_update=may_update,
        may_delete=_scope_allows(collection, "delete", record),
        may_create=_scope_allows(collection, "create"),
    )


@bp.route("/c/<name>/<int:record_id>/delete", methods=["GET", "POST"])
@login_required
def delete_page(name: str, record_id: int):
    actor = _actor()
    collection = visible_definition(get_visible_collection(name, actor), actor)
    record = get_record(name, record_id, actor)
    label = record_label(collection, record)
    require_access(collection, actor, "delete")
    if not _scope_allows(collection, "delete", record):
        raise PermissionDenied("You may delete only the records you created.")
    if request.method == "GET":
        return render_template("records/delete.html", collection=collection, record=record, label=label)
    try:
        delete_record(name, record_id, actor, files_dir=current_instance().paths.files_dir)
    except Conflict as exc:
        flash(exc.message, "error")
        return redirect(url_for("records_pages.show_record", name=name, record_id=record_id))
    flash(f"{collection.label}: {label} was deleted.", "success")
    return redirect(url_for("records_pages.list_page", name=name))


@bp.post("/c/<name>/<int:record_id>/history/<int:version>/restore")
@login_required
def restore(name: str, record_id: int, version: int):
    actor = _actor()
    try:
        restore_version(name, record_id, version, actor, files_dir=current_instance().paths.files_dir)
    except (ValidationFailed, Conflict) as exc:
        details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        flash(f"Version {version} cannot be restored: {exc.message}{' (' + details + ')' if details else ''}", "error")
    else:
        flash(f"Version {version} was restored.", "success")
    return redirect(url_for("records_pages.show_record", name=name, record_id=record_id))


@bp.app_template_global()
def list_url(name: str, args: Mapping[str, str], **changes: Any) -> str:
    """The list page's URL with ``args`` changed by ``changes`` (``None`` drops a parameter)."""
    return _query(url_for("records_pages.list_page", name=name), {**args, **changes})
