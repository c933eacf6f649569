"""Staff record pages: ``/c/<name>`` (list), ``/c/<name>/new``, ``/c/<name>/<id>`` (with history),
``/c/<name>/<id>/edit``, ``/c/<name>/<id>/delete`` and restoring a version.

Server-rendered and usable without JavaScript. The pages call the same
services as the API (``list_records``, ``create_record``, ``update_record``,
``delete_record``, ``list_history``, ``restore_version``), so the checks and
the error messages are the API's; a refused form comes back with each error
beside its field and what was typed. A list page takes the API listing's
query parameters, so a filtered view is a link one can share.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from appliance.collections.definitions import CollectionDef, access_scope, get_visible_collection, require_access
from appliance.collections.fields import Field
from appliance.errors import BadRequest, Conflict, NotFound, PermissionDenied, TooLarge, ValidationFailed
from appliance.records.files import Upload
from appliance.records.history import list_history
from appliance.records.query import list_records
from appliance.records.write import create_record, delete_record, get_record, restore_version, update_record
from webapp import current_instance
from webapp.api_records import upload_limit
from webapp.layout import form_errors

bp = Blueprint("records_pages", __name__)

_FORM_ERRORS = (ValidationFailed, Conflict, TooLarge)
# Columns a list shows at most (the title first); the record page shows everything.
MAX_COLUMNS = 7
# A relation becomes a select of the related records when there are at most this many.
MAX_RELATION_CHOICES = 200
_HIDDEN_IN_LISTS = frozenset({"long_text", "json"})
_LISTING_PARAMS = ("page", "page_size", "ordering", "search")
# Prefix of the "remove the current file" checkbox of a file field (field names cannot start with "_").
CLEAR_PREFIX = "_clear."


def _actor() -> Any:
    return current_user.user


# --- how a collection is shown --------------------------------------------------------------------


def title_field(collection: CollectionDef) -> Field | None:
    """The field that names a record: ``title`` or ``name`` when text, else the first short text field."""
    short_text = [f for f in collection.fields if f.type in ("text", "email", "url", "select")]
    for preferred in ("title", "name"):
        spec = collection.field(preferred)
        if spec is not None and spec in short_text:
            return spec
    return next((f for f in short_text if f.type == "text"), short_text[0] if short_text else None)


def list_columns(collection: CollectionDef) -> list[Field]:
    """The columns of a list: the title field first, then filterable and select fields (what one scans a
    list by), then the others in order; never long text or JSON."""
    title = title_field(collection)
    rest = [f for f in collection.fields if f is not title and f.type not in _HIDDEN_IN_LISTS]
    rest.sort(key=lambda f: 0 if (f.filterable or f.type == "select") else 1)
    return ([title] if title else []) + rest[: MAX_COLUMNS - (1 if title else 0)]


def record_label(collection: CollectionDef, record: Mapping[str, Any]) -> str:
    title = title_field(collection)
    value = record.get(title.name) if title else None
    return f"{value}" if value not in (None, "") else f"#{record.get('id')}"


def _scope_allows(collection: CollectionDef, action: str, record: Mapping[str, Any] | None = None) -> bool:
    """Whether the signed-in user may do ``action`` (on ``record``): decides which buttons show."""
    actor = _actor()
    scope = access_scope(collection, actor, action)
    if scope == "own" and record is not None:
        return record.get("created_by") == actor.id
    return scope is not None


@dataclass
class RelationInfo:
    """What a page knows about a relation field's target: reachable, labels by id, and a choice list."""

    target: CollectionDef | None
    labels: dict[int, str]
    choices: list[tuple[int, str]] | None


def _relation_info(spec: Field, ids: set[int] | None = None, *, with_choices: bool = False) -> RelationInfo:
    """Labels of the related records ``ids`` (and, with ``with_choices``, the records to choose from)
    that the user may view, through the listing service (so its permissions apply)."""
    actor = _actor()
    try:
        target = get_visible_collection(spec.collection or "", actor)
        require_access(target, actor, "view")
    except (NotFound, PermissionDenied):  # an unreachable target is shown as plain ids
        return RelationInfo(None, {}, None)
    labels: dict[int, str] = {}
    choices = None
    if with_choices:
        listing = list_records(target, actor, {"page_size": str(MAX_RELATION_CHOICES)})
        if listing["total_items"] <= MAX_RELATION_CHOICES:
            choices = [(item["id"], record_label(target, item)) for item in listing["items"]]
            labels.update(choices)
    wanted = sorted(i for i in (ids or set()) if isinstance(i, int) and i not in labels)
    if wanted:
        params = {"id__in": ",".join(map(str, wanted[:100])), "page_size": "100"}
        labels.update((item["id"], record_label(target, item)) for item in list_records(target, actor, params)["items"])
    return RelationInfo(target, labels, choices)


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


@dataclass
class FilterInput:
    """One input of the filter row: its parameter name, label, kind of control and options."""

    param: str
    label: str
    control: str  # text, number, date, datetime, select
    options: list[tuple[str, str]] | None = None


def filter_inputs(collection: CollectionDef) -> list[FilterInput]:
    """The filter row: one or two inputs per filterable field, named as the API's filters."""
    out: list[FilterInput] = []
    for spec in collection.fields:
        if not spec.filterable:
            continue
        label = spec.label or spec.name
        if spec.type == "select":
            out.append(FilterInput(spec.name, label, "select", [(c, c) for c in spec.choices or []]))
        elif spec.type == "boolean":
            out.append(FilterInput(spec.name, label, "select", [("true", "Yes"), ("false", "No")]))
        elif spec.type in ("integer", "number", "date", "datetime", "computed"):
            control = {"date": "date", "datetime": "date"}.get(spec.type, "number")
            if spec.type == "computed":
                control = "text"
            out.append(FilterInput(f"{spec.name}__gte", f"{label} from", control))
            out.append(FilterInput(f"{spec.name}__lte", f"{label} to", control))
        elif spec.type == "relation":
            info = _relation_info(spec, with_choices=True)
            if info.choices is not None:
                out.append(FilterInput(spec.name, label, "select", [(str(i), t) for i, t in info.choices]))
            else:
                out.append(FilterInput(spec.name, f"{label} (id)", "number"))
        elif spec.type in ("file", "json"):
            out.append(FilterInput(f"{spec.name}__isnull", label, "select", [("false", "Set"), ("true", "Empty")]))
        else:
            out.append(FilterInput(f"{spec.name}__icontains", f"{label} contains", "text"))
    return out


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
    collection = get_visible_collection(name, actor)
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
        spec.name: _relation_info(spec, {item.get(spec.name) for item in listing["items"]})
        for spec in columns
        if spec.type == "relation"
    }
    filtering = any(key not in ("page", "page_size", "ordering") for key in args)
    return render_template(
        "records/list.html",
        collection=collection,
        columns=columns,
        title=title_field(collection),
        listing=listing,
        args=args,
        filters=filter_inputs(collection),
        filtering=filtering,
        error=error,
        relations=relations,
        may_create=_scope_allows(collection, "create"),
        export_url=_export_url(collection.name, query),
        excel_export_url=_export_url(collection.name, query, bom=True),
    ), status


# --- form ------------------------------------------------------------------------------------------


def form_text(spec: Field, value: Any) -> str:
    """A stored value as a form input holds it."""
    if value is None:
        return ""
    if spec.type == "boolean":
        return "true" if value else "false"
    if spec.type == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if spec.type == "datetime" and isinstance(value, str):
        return value.rstrip("Z")[:19]  # datetime-local: 2026-01-05T09:30:00 (stored times are UTC)
    return str(value)


def submitted_values(collection: CollectionDef, form: MultiDict) -> dict[str, Any]:
    """The field values of a submitted form as the services take them (``form=True`` strings).

    A checkbox sends nothing when unticked, so a boolean is ``"false"`` unless
    ticked; an empty JSON box is no value; a file field is cleared only when
    its "remove" box is ticked (its upload comes separately).
    """
    values: dict[str, Any] = {}
    for spec in collection.fields:
        if spec.read_only:
            continue
        if spec.type == "file":
            if form.get(CLEAR_PREFIX + spec.name):
                values[spec.name] = None
        elif spec.type == "boolean":
            values[spec.name] = "true" if "true" in form.getlist(spec.name) else "false"
        elif spec.name in form:
            raw = form.get(spec.name, "")
            values[spec.name] = None if spec.type == "json" and not raw.strip() else raw
    return values


def _uploads() -> dict[str, Upload]:
    return {
        name: Upload(filename=storage.filename or "file", stream=storage.stream)
        for name, storage in request.files.items()
        if storage.filename
    }


def _form_context(collection: CollectionDef, record: Mapping[str, Any] | None) -> dict[str, Any]:
    relations = {
        spec.name: _relation_info(
            spec, {record.get(spec.name)} if record and record.get(spec.name) else set(), with_choices=True
        )
        for spec in collection.fields
        if spec.type == "relation"
    }
    return {"collection": collection, "record": record, "relations": relations, "clear_prefix": CLEAR_PREFIX}


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
        if spec.type == "boolean":
            typed[spec.name] = "true" if "true" in request.form.getlist(spec.name) else "false"
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
    collection = get_visible_collection(name, actor)
    require_access(collection, actor, "create")
    if request.method == "GET":
        defaults = {f.name: form_text(f, f.default) for f in collection.fields if f.default is not None}
        return _render_form(collection, None, defaults, {})
    limit = _prepare_upload_limit()
    try:
        record = create_record(name, submitted_values(collection, request.form), actor, **_form_write(limit))
    except _FORM_ERRORS as exc:
        return _render_form(collection, None, _typed_values(collection), form_errors(exc), exc.status)
    flash(f"{collection.label}: {record_label(collection, record)} was created.", "success")
    return redirect(url_for("records_pages.show_record", name=name, record_id=record["id"]))


@bp.route("/c/<name>/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def edit_record(name: str, record_id: int):
    actor = _actor()
    collection = get_visible_collection(name, actor)
    record = get_record(name, record_id, actor)
    require_access(collection, actor, "update")
    if not _scope_allows(collection, "update", record):
        raise PermissionDenied("You may change only the records you created.")
    if request.method == "GET":
        values = {f.name: form_text(f, record.get(f.name)) for f in collection.fields if f.type != "file"}
        return _render_form(collection, record, values, {})
    limit = _prepare_upload_limit()
    try:
        record = update_record(name, record_id, submitted_values(collection, request.form), actor, **_form_write(limit))
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
    collection = get_visible_collection(name, actor)
    record = get_record(name, record_id, actor)
    history = _history_page(collection, record_id)
    relations = {
        spec.name: _relation_info(spec, {record.get(spec.name)} | _history_ids(history, spec.name))
        for spec in collection.fields
        if spec.type == "relation"
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
    collection = get_visible_collection(name, actor)
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


@bp.app_template_filter("number")
def number_text(value: Any) -> str:
    """A number as a person reads it: no float noise (53.400000000000006 shows as 53.4), whole floats
    without ``.0``; 15 significant digits, all a float holds reliably."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    return str(value)
