"""The table of field types: one :class:`FieldType` entry for each of the 14 types of API.md.

An entry holds everything the rest of the appliance knows about a type: its
column, how a value is checked and stored, which options and filter
operators it takes, its JSON Schema, the form's widget and the words people
read. ``fields`` (definitions, coercion), ``records.query`` (filters),
``webapp.openapi``, the collection editor and the record pages all read
:data:`FIELD_TYPES`; a new type is one entry here (plus its tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.collections.values import (
    MAX_LONG_TEXT,
    MAX_TEXT,
    FieldError,
    coerce_boolean,
    coerce_date,
    coerce_datetime,
    coerce_email,
    coerce_integer,
    coerce_json,
    coerce_number,
    coerce_relation,
    coerce_text,
    coerce_url,
    parse_bool,
)

# Filter operators ("eq" is the bare ``FIELD=value``), as each kind of type takes them.
TEXT_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "contains", "icontains", "startswith", "in", "isnull")
ORDER_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "isnull")
FLAG_OPERATORS = ("eq", "ne", "isnull")
PRESENCE_OPERATORS = ("isnull",)
# What ``min``/``max`` measure on a type: a text's length, a number, a date or a date and time.
BOUNDS = ("length", "number", "date", "datetime")
WIDGETS = (
    "text",
    "textarea",
    "integer",
    "number",
    "checkbox",
    "date",
    "datetime",
    "email",
    "url",
    "select",
    "relation",
    "file",
    "json",
    "computed",
)
# How the record list's filter row offers a filterable field.
FILTER_ROWS = ("choices", "yes_no", "number_range", "date_range", "text_range", "relation", "presence", "contains")

# A date, or a date and time with an optional offset, as the filters take them (ISO 8601); days up to
# the 28th, so that every text it matches is a real day.
ISO_MOMENT_PATTERN = (
    "^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    "([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])?)?$"
)


class Spec(Protocol):
    """What a type's coercion reads of a field (a :class:`appliance.collections.fields.Field`)."""

    @property
    def choices(self) -> list[str] | None: ...


Coerce = Callable[[Spec, Any, bool], Any]


@dataclass(frozen=True)
class FieldType:
    """One field type: what it stores, checks, offers and is called."""

    name: str
    label: str  # the type as people read it ("Long text")
    column: str  # the SQLite column type; "" takes whatever a formula gives
    coerce: Coerce  # (field, value, form) -> the stored value; raises FieldError
    operators: tuple[str, ...]  # the filter operators it takes
    filter_value: Callable[[str], Any]  # one filter value as its column compares it; raises FieldError
    schema: Mapping[str, Any]  # JSON Schema of a value before the field's options narrow it; no "type": any
    widget: str  # the form's input for it, and how a page shows a value (see WIDGETS)
    filter_row: str  # how the list's filter row offers it (see FILTER_ROWS)
    options: frozenset[str] = frozenset()  # the options of its own (min, max, pattern, choices, ...)
    needs: frozenset[str] = frozenset()  # of those, the ones a definition must give
    bounds: str | None = None  # what min/max measure (see BOUNDS); None: it takes none
    unique: bool = True  # whether a field of it may be unique
    default: bool = True  # whether a field of it may have a default
    read_only: bool = False  # computed, never written
    upload: bool = False  # its value comes as an uploaded file (multipart), never in JSON
    searchable: bool = False  # text as typed: the full-text index covers it, filters take it unstripped
    orderable: bool = True  # a listing may order by it
    indexed: bool = False  # always indexed (a relation), not only when filterable
    in_lists: bool = True  # a record list shows it as a column
    blank_is_empty: bool = True  # "" means no value (JSON: "" is a value)
    title_rank: int | None = None  # may name a record; the lowest rank is preferred
    filter_schema: Mapping[str, Any] | None = None  # JSON Schema of one filter value; None: a string
    input_schema: Mapping[str, Any] | None = None  # JSON Schema of what may be sent, when not ``schema``
    to_column: Callable[[Any], Any] | None = None  # a stored value as the column holds it; None: as is
    from_column: Callable[[Any], Any] | None = None  # a column value back in its API form; None: as is


def _text(limit: int) -> Coerce:
    return lambda spec, value, form: coerce_text(value, limit)


def _long_text(spec: Spec, value: Any, form: bool) -> str:
    # Browsers send a textarea's line breaks as CRLF (the HTML standard): store one kind of line break,
    # so saving a form unchanged is no change (it used to record every line as changed).
    return coerce_text(value, MAX_LONG_TEXT).replace("\r\n", "\n").replace("\r", "\n")


def _select(spec: Spec, value: Any, form: bool) -> str:
    choices = spec.choices or []
    if not isinstance(value, str) or value not in choices:
        raise FieldError(f"Choose one of: {', '.join(choices)}.")
    return value


def _refuse(message: str) -> Coerce:
    def refuse(spec: Spec, value: Any, form: bool) -> Any:
        raise FieldError(message)

    return refuse


def _as_is(raw: str) -> str:
    return raw


def _computed_filter(raw: str) -> Any:
    """A formula gives a number or text: a filter value compares as a number when it reads as one."""
    try:
        return coerce_number(raw)
    except FieldError:
        return raw


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _file_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


_TEXT_OPTIONS = frozenset({"min", "max", "pattern"})
_RANGE_OPTIONS = frozenset({"min", "max"})
_STRING = {"type": "string"}

_ENTRIES = (
    FieldType(
        name="text",
        label="Text",
        column="TEXT",
        coerce=_text(MAX_TEXT),
        operators=TEXT_OPERATORS,
        filter_value=_as_is,
        schema={"type": "string", "maxLength": MAX_TEXT},
        widget="text",
        filter_row="contains",
        options=_TEXT_OPTIONS,
        bounds="length",
        searchable=True,
        title_rank=0,
    ),
    FieldType(
        name="long_text",
        label="Long text",
        column="TEXT",
        coerce=_long_text,
        operators=TEXT_OPERATORS,
        filter_value=_as_is,
        schema={"type": "string", "maxLength": MAX_LONG_TEXT},
        widget="textarea",
        filter_row="contains",
        options=_TEXT_OPTIONS,
        bounds="length",
        unique=False,
        searchable=True,
        in_lists=False,
    ),
    FieldType(
        name="integer",
        label="Whole number",
        column="INTEGER",
        coerce=lambda spec, value, form: coerce_integer(value),
        operators=ORDER_OPERATORS,
        filter_value=coerce_integer,
        schema={"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
        widget="integer",
        filter_row="number_range",
        options=_RANGE_OPTIONS,
        bounds="number",
        filter_schema={"type": "integer"},
    ),
    FieldType(
        name="number",
        label="Number",
        column="REAL",
        coerce=lambda spec, value, form: coerce_number(value),
        operators=ORDER_OPERATORS,
        filter_value=coerce_number,
        schema={"type": "number"},
        widget="number",
        filter_row="number_range",
        options=_RANGE_OPTIONS,
        bounds="number",
        filter_schema={"type": "number"},
    ),
    FieldType(
        name="boolean",
        label="Yes / no",
        column="INTEGER",
        coerce=lambda spec, value, form: coerce_boolean(value),
        operators=FLAG_OPERATORS,
        filter_value=lambda raw: 1 if parse_bool(raw) else 0,
        schema={"type": "boolean"},
        widget="checkbox",
        filter_row="yes_no",
        unique=False,
        filter_schema={"type": "boolean"},
        to_column=lambda value: 1 if value else 0,
        from_column=bool,
    ),
    FieldType(
        name="date",
        label="Date",
        column="TEXT",
        coerce=lambda spec, value, form: coerce_date(value),
        operators=ORDER_OPERATORS,
        filter_value=coerce_date,
        schema={"type": "string", "format": "date"},
        widget="date",
        filter_row="date_range",
        options=_RANGE_OPTIONS,
        bounds="date",
        filter_schema={"type": "string", "format": "date"},
    ),
    FieldType(
        name="datetime",
        label="Date and time",
        column="TEXT",
        coerce=lambda spec, value, form: coerce_datetime(value),
        operators=ORDER_OPERATORS,
        filter_value=coerce_datetime,
        schema={"type": "string", "format": "date-time"},
        widget="datetime",
        filter_row="date_range",
        options=_RANGE_OPTIONS,
        bounds="datetime",
        filter_schema={
            "type": "string",
            "pattern": ISO_MOMENT_PATTERN,
            "description": "A date and time (ISO 8601), or a date for that whole UTC day.",
        },
    ),
    FieldType(
        name="email",
        label="Email address",
        column="TEXT",
        coerce=lambda spec, value, form: coerce_email(value),
        operators=TEXT_OPERATORS,
        filter_value=_as_is,
        schema={"type": "string", "format": "email", "maxLength": 320},
        widget="email",
        filter_row="contains",
        options=_TEXT_OPTIONS,
        bounds="length",
        searchable=True,
        title_rank=1,
    ),
    FieldType(
        name="url",
        label="Web address",
        column="TEXT",
        coerce=lambda spec, value, form: coerce_url(value),
        operators=TEXT_OPERATORS,
        filter_value=_as_is,
        schema={"type": "string", "format": "uri", "maxLength": 2048},
        widget="url",
        filter_row="contains",
        options=_TEXT_OPTIONS,
        bounds="length",
        searchable=True,
        title_rank=1,
    ),
    FieldType(
        name="select",
        label="Choice from a list",
        column="TEXT",
        coerce=_select,
        operators=TEXT_OPERATORS,
        filter_value=_as_is,
        schema=_STRING,
        widget="select",
        filter_row="choices",
        options=frozenset({"choices"}),
        needs=frozenset({"choices"}),
        searchable=True,
        title_rank=1,
    ),
    FieldType(
        name="relation",
        label="Link to a record",
        column="INTEGER",
        coerce=lambda spec, value, form: coerce_relation(value),
        operators=ORDER_OPERATORS,
        filter_value=coerce_integer,
        schema={"type": "integer", "minimum": 1},
        widget="relation",
        filter_row="relation",
        options=frozenset({"collection", "cascade"}),
        needs=frozenset({"collection"}),
        default=False,
        indexed=True,
        filter_schema={"type": "integer"},
    ),
    FieldType(
        name="file",
        label="File",
        column="TEXT",
        coerce=_refuse("Upload the file as multipart/form-data (or send null to remove it)."),
        operators=PRESENCE_OPERATORS,
        filter_value=_as_is,
        schema={
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "size": {"type": "integer"},
                "type": {"type": "string"},
                "url": {"type": "string"},
            },
        },
        widget="file",
        filter_row="presence",
        upload=True,
        options=frozenset({"max_size", "accept"}),
        unique=False,
        default=False,
        orderable=False,
        input_schema={"type": "null", "description": "Send null to remove the file; upload it with multipart."},
        to_column=_file_text,
        from_column=json.loads,
    ),
    FieldType(
        name="json",
        label="Structured data (JSON)",
        column="TEXT",
        coerce=lambda spec, value, form: coerce_json(value, form=form),
        operators=PRESENCE_OPERATORS,
        filter_value=_as_is,
        schema={"description": "Any JSON value."},
        widget="json",
        filter_row="presence",
        unique=False,
        orderable=False,
        in_lists=False,
        blank_is_empty=False,
        to_column=_json_text,
        from_column=json.loads,
    ),
    FieldType(
        name="computed",
        label="Computed",
        column="",
        coerce=_refuse("This field is computed and read-only."),
        operators=ORDER_OPERATORS,
        filter_value=_computed_filter,
        schema={"readOnly": True},
        widget="computed",
        filter_row="text_range",
        options=frozenset({"formula"}),
        needs=frozenset({"formula"}),
        unique=False,
        default=False,
        read_only=True,
    ),
)
FIELD_TYPES: Mapping[str, FieldType] = {entry.name: entry for entry in _ENTRIES}
TYPES = tuple(FIELD_TYPES)
# Types whose values are text as typed; the full-text index covers them.
SEARCHABLE_TYPES = frozenset(t.name for t in _ENTRIES if t.searchable)


def field_type(name: str) -> FieldType:
    """The entry of the type called ``name``; raises :class:`KeyError` for a name not in :data:`TYPES`."""
    return FIELD_TYPES[name]
