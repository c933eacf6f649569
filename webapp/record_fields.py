"""How the record pages show and read a collection's fields: the field that names a record, a list's
columns and filter row, related records' labels, and a value as a form input holds it and back.

What a type offers comes from its entry in the table of field types
(:mod:`appliance.collections.types`): whether it names a record, shows in a
list, how the filter row offers it, and its form widget.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from appliance.collections.access import get_visible_collection, require_access
from appliance.collections.definitions import CollectionDef
from appliance.collections.fields import Field
from appliance.errors import NotFound, PermissionDenied
from appliance.records.query import list_records

# Columns a list shows at most (the title first); the record page shows everything.
MAX_COLUMNS = 7
# A relation becomes a select of the related records when there are at most this many.
MAX_RELATION_CHOICES = 200
# Prefix of the "remove the current file" checkbox of a file field (field names cannot start with "_").
CLEAR_PREFIX = "_clear."


def title_field(collection: CollectionDef) -> Field | None:
    """The field that names a record: ``title`` or ``name`` when its type may name one, else the first
    field of the best-ranked such type (plain text before email, URL or a choice)."""
    candidates = [f for f in collection.fields if f.field_type.title_rank is not None]
    for preferred in ("title", "name"):
        spec = collection.field(preferred)
        if spec is not None and spec in candidates:
            return spec
    return min(candidates, key=lambda f: f.field_type.title_rank or 0, default=None)


def list_columns(collection: CollectionDef) -> list[Field]:
    """The columns of a list: the title field first, then filterable and select fields (what one scans a
    list by), then the others in order; never a type that does not show in lists (long text, JSON)."""
    title = title_field(collection)
    rest = [f for f in collection.fields if f is not title and f.field_type.in_lists]
    rest.sort(key=lambda f: 0 if (f.filterable or f.choices is not None) else 1)
    return ([title] if title else []) + rest[: MAX_COLUMNS - (1 if title else 0)]


def record_label(collection: CollectionDef, record: Mapping[str, Any]) -> str:
    title = title_field(collection)
    value = record.get(title.name) if title else None
    return f"{value}" if value not in (None, "") else f"#{record.get('id')}"


@dataclass
class RelationInfo:
    """What a page knows about a relation field's target: reachable, labels by id, and a choice list."""

    target: CollectionDef | None
    labels: dict[int, str]
    choices: list[tuple[int, str]] | None


def relation_info(spec: Field, actor: Any, ids: set[int] | None = None, *, with_choices: bool = False) -> RelationInfo:
    """Labels of the related records ``ids`` (and, with ``with_choices``, the records to choose from)
    that ``actor`` may view, through the listing service (so its permissions apply)."""
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


# --- the filter row -----------------------------------------------------------------------------------


@dataclass
class FilterInput:
    """One input of the filter row: its parameter name, label, kind of control and options."""

    param: str
    label: str
    control: str  # text, number, date, datetime, select
    options: list[tuple[str, str]] | None = None


def _range(control: str) -> Callable[[Field, str, Any], list[FilterInput]]:
    def inputs(spec: Field, label: str, actor: Any) -> list[FilterInput]:
        return [
            FilterInput(f"{spec.name}__gte", f"{label} from", control),
            FilterInput(f"{spec.name}__lte", f"{label} to", control),
        ]

    return inputs


def _relation_filter(spec: Field, label: str, actor: Any) -> list[FilterInput]:
    info = relation_info(spec, actor, with_choices=True)
    if info.choices is not None:
        return [FilterInput(spec.name, label, "select", [(str(i), t) for i, t in info.choices])]
    return [FilterInput(spec.name, f"{label} (id)", "number")]


# Each FieldType.filter_row: the inputs it gives a filterable field (spec, its label, the actor).
_FILTER_ROWS: dict[str, Callable[[Field, str, Any], list[FilterInput]]] = {
    "choices": lambda spec, label, actor: [
        FilterInput(spec.name, label, "select", [(c, c) for c in spec.choices or []])
    ],
    "yes_no": lambda spec, label, actor: [FilterInput(spec.name, label, "select", [("true", "Yes"), ("false", "No")])],
    "number_range": _range("number"),
    "date_range": _range("date"),
    "text_range": _range("text"),
    "relation": _relation_filter,
    "presence": lambda spec, label, actor: [
        FilterInput(f"{spec.name}__isnull", label, "select", [("false", "Set"), ("true", "Empty")])
    ],
    "contains": lambda spec, label, actor: [FilterInput(f"{spec.name}__icontains", f"{label} contains", "text")],
}


def filter_inputs(collection: CollectionDef, actor: Any) -> list[FilterInput]:
    """The filter row: one or two inputs per filterable field, named as the API's filters."""
    out: list[FilterInput] = []
    for spec in collection.fields:
        if spec.filterable:
            out.extend(_FILTER_ROWS[spec.field_type.filter_row](spec, spec.label or spec.name, actor))
    return out


# --- values in forms ------------------------------------------------------------------------------------


def form_text(spec: Field, value: Any) -> str:
    """A stored value as a form input holds it (by the type's widget)."""
    if value is None:
        return ""
    widget = spec.field_type.widget
    if widget == "checkbox":
        return "true" if value else "false"
    if widget == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if widget == "datetime" and isinstance(value, str):
        return value.rstrip("Z")[:19]  # datetime-local: 2026-01-05T09:30:00 (stored times are UTC)
    return str(value)


def submitted_values(
    collection: CollectionDef, form: MultiDict[str, str], *, skip: Collection[str] = ()
) -> dict[str, Any]:
    """The field values of a submitted form as the services take them (``form=True`` strings).

    A checkbox sends nothing when unticked, so a boolean is ``"false"`` unless
    ticked; an empty JSON box is no value; a file field is cleared only when
    its "remove" box is ticked (its upload comes separately). The fields in
    ``skip`` (read-only for the user: its form shows them disabled) give no value.
    """
    values: dict[str, Any] = {}
    for spec in collection.fields:
        widget = spec.field_type.widget
        if spec.read_only or spec.name in skip:
            continue
        if widget == "file":
            if form.get(CLEAR_PREFIX + spec.name):
                values[spec.name] = None
        elif widget == "checkbox":
            values[spec.name] = checkbox_value(form, spec.name)
        elif spec.name in form:
            raw = form.get(spec.name, "")
            values[spec.name] = None if widget == "json" and not raw.strip() else raw
    return values


def checkbox_value(form: MultiDict[str, str], name: str) -> str:
    """A checkbox's value: ``"true"`` when ticked, else ``"false"`` (an unticked box sends nothing)."""
    return "true" if "true" in form.getlist(name) else "false"


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
