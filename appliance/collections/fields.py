"""Field definitions of a collection: their options, checking a definition, and a value's stored form.

A field is written as a JSON object (``{"name": "status", "type": "select",
"choices": ["open", "paid"], "required": true}``). :func:`parse_field` turns
one into a :class:`Field` or names what is wrong with it; :func:`coerce_value`
turns one submitted value into the stored form or raises :class:`FieldError`
with the message to show next to the field. What each type takes comes from
the table of field types (:mod:`appliance.collections.types`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import regex

from appliance.collections.types import FIELD_TYPES, SEARCHABLE_TYPES, TYPES, FieldType
from appliance.collections.values import (
    DATE_RE,
    FieldError,
    coerce_datetime,
    match_pattern,
)

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
SYSTEM_FIELDS = ("id", "created_at", "updated_at", "created_by", "updated_by")
# Names a field may not take: the record's own columns, and the listing's parameters.
RESERVED_NAMES = frozenset(SYSTEM_FIELDS) | {"page", "page_size", "ordering", "search", "rowid", "rank"}
# Types whose values are text as typed (the full-text index covers them; a CSV import guards them).
TEXT_TYPES = SEARCHABLE_TYPES
_FLAGS = ("required", "unique", "filterable", "cascade")
# The options a type may take (see FieldType.options), in the order their problems are named.
_TYPE_OPTIONS = ("min", "max", "pattern", "choices", "formula", "collection", "max_size", "accept")
OPTIONS = {"name", "type", "label", *_FLAGS, *_TYPE_OPTIONS, "default", "rename_from"}
MIME_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$")


@dataclass
class Field:
    """One field of a collection, with its options (``None`` when not set)."""

    name: str
    type: str
    label: str = ""
    required: bool = False
    unique: bool = False
    filterable: bool = False
    min: Any = None
    max: Any = None
    pattern: str | None = None
    choices: list[str] | None = None
    default: Any = None
    max_size: int | None = None
    accept: list[str] | None = None
    formula: str | None = None
    collection: str | None = None
    cascade: bool = False
    rename_from: str | None = field(default=None, compare=False)

    @property
    def field_type(self) -> FieldType:
        """The entry of this field's type in the table of field types."""
        return FIELD_TYPES[self.type]

    @property
    def column_type(self) -> str:
        return self.field_type.column

    @property
    def indexed(self) -> bool:
        """Whether the field gets a (non-unique) index: filterable fields and every relation."""
        return (self.filterable or self.field_type.indexed) and not self.unique

    @property
    def read_only(self) -> bool:
        return self.field_type.read_only

    def to_dict(self) -> dict[str, Any]:
        """The definition as API.md writes it: name, type, label and only the options that are set."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "label": self.label or self.name}
        for key in _FLAGS:
            if getattr(self, key):
                out[key] = True
        for key in ("min", "max", "pattern", "choices", "default", "max_size", "accept", "formula", "collection"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if "cascade" in self.field_type.options:
            out["cascade"] = self.cascade
        return out


# --- reading a definition's options --------------------------------------------------------------


def _read_bound(kind: FieldType, key: str, value: Any) -> Any:
    """A ``min``/``max`` as what the type's bounds measure."""
    if kind.bounds == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FieldError(f"'{key}' must be a number", option=key)
    elif kind.bounds == "length":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FieldError(f"'{key}' must be a length (a whole number, 0 or more)", option=key)
    elif kind.bounds == "date":
        if not isinstance(value, str) or not DATE_RE.match(value):
            raise FieldError(f"'{key}' must be a date (YYYY-MM-DD)", option=key)
    else:
        try:
            value = coerce_datetime(value)
        except FieldError:
            raise FieldError(f"'{key}' must be a date and time (ISO 8601)", option=key) from None
    return value


def _read_pattern(kind: FieldType, key: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 500:
        raise FieldError("'pattern' must be a regular expression of at most 500 characters", option=key)
    try:
        regex.compile(value)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise FieldError(f"'pattern' is not a valid regular expression: {exc}", option=key) from None
    return value


def _read_choices(kind: FieldType, key: str, value: Any) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(c, str) and c and len(c) <= 200 for c in value)
        or len(set(value)) != len(value)
    ):
        raise FieldError("a select field needs 'choices': a list of distinct, non-empty texts", option=key)
    return list(value)


def _read_formula(kind: FieldType, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 1000:
        raise FieldError(
            "a computed field needs a 'formula' of at most 1000 characters",
            option=key,
            form_message="Enter a formula (at most 1000 characters)",
        )
    return value


def _read_collection(kind: FieldType, key: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise FieldError(
            "a relation field needs 'collection': the name of another collection",
            option=key,
            form_message="Choose the related collection",
        )
    return value


def _read_max_size(kind: FieldType, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FieldError(
            "'max_size' must be a number of bytes, 1 or more",
            option=key,
            form_message="Enter the largest file size in bytes (1 or more)",
        )
    return value


def _read_accept(kind: FieldType, key: str, value: Any) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(a, str) and MIME_RE.match(a.lower()) for a in value)
    ):
        raise FieldError(
            "'accept' must be a list of media types such as 'application/pdf' or 'image/*'",
            option=key,
            form_message="Enter the accepted file types separated by commas, such as application/pdf, image/*",
        )
    return [a.lower() for a in value]


_READERS: dict[str, Callable[[FieldType, str, Any], Any]] = {
    "min": _read_bound,
    "max": _read_bound,
    "pattern": _read_pattern,
    "choices": _read_choices,
    "formula": _read_formula,
    "collection": _read_collection,
    "max_size": _read_max_size,
    "accept": _read_accept,
}


def _misplaced(option: str, kind: FieldType) -> FieldError:
    """The error for an option the type does not take: which type it belongs to, when only one."""
    owners = [t.name for t in FIELD_TYPES.values() if option in t.options]
    if len(owners) == 1:
        return FieldError(f"'{option}' applies to {owners[0]} fields only", option=option)
    return FieldError(f"'{option}' does not apply to a {kind.name} field", option=option)


def _read_general(spec: Field, raw: dict[str, Any], problems: list[FieldError]) -> None:
    """The label, the true/false flags and ``rename_from``, which every type takes."""
    label = raw.get("label", "")
    if not isinstance(label, str) or len(label) > 200:
        problems.append(FieldError("'label' must be text of at most 200 characters", option="label"))
        label = ""
    spec.label = label
    for key in _FLAGS:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            problems.append(FieldError(f"'{key}' must be true or false", option=key))
            value = False
        setattr(spec, key, value)
    rename_from = raw.get("rename_from")
    if rename_from is not None and not (isinstance(rename_from, str) and NAME_RE.match(rename_from)):
        problems.append(FieldError("'rename_from' must name an existing field", option="rename_from"))
    spec.rename_from = rename_from


def _check_flags(spec: Field, kind: FieldType) -> list[FieldError]:
    problems = []
    if spec.unique and not kind.unique:
        problems.append(FieldError(f"a {kind.name} field cannot be unique", option="unique"))
    if spec.required and kind.read_only:
        problems.append(FieldError(f"a {kind.name} field cannot be required", option="required"))
    if spec.cascade and "cascade" not in kind.options:
        problems.append(_misplaced("cascade", kind))
    return problems


def _read_type_options(spec: Field, kind: FieldType, raw: dict[str, Any], problems: list[FieldError]) -> None:
    """The options of one type or a few (min and max, pattern, choices ...), each checked by its reader."""
    for key in _TYPE_OPTIONS:
        value = raw.get(key)
        if key not in kind.options:
            if value is not None:
                problems.append(_misplaced(key, kind))
        elif value is not None or key in kind.needs:
            try:
                setattr(spec, key, _READERS[key](kind, key, value))
            except FieldError as exc:
                problems.append(exc)
        if key == "max" and spec.min is not None and spec.max is not None and spec.min > spec.max:
            problems.append(
                FieldError(
                    "'min' is greater than 'max'",
                    option="min",
                    form_message="The smallest value is larger than the largest",
                )
            )


def _name_and_type(raw: Any) -> tuple[str, FieldType]:
    if not isinstance(raw, dict):
        raise FieldError("a field must be an object with at least 'name' and 'type'")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or "__" in name:
        raise FieldError(
            "a field name must be 1 to 50 lower-case letters, digits or '_' (no '__'), starting with a letter",
            option="name",
        )
    if name in RESERVED_NAMES:
        raise FieldError(f"'{name}' is reserved", option="name")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in FIELD_TYPES:
        raise FieldError(f"type must be one of {', '.join(TYPES)}", option="type")
    return name, FIELD_TYPES[kind]


def parse_field(raw: Any) -> Field:
    """A :class:`Field` from its JSON definition; raises :class:`FieldError` naming every problem.

    Checks the name, the type, that each option fits the type and that the
    default (when given) is a valid value. Formulas and relation targets are
    checked by the collection, which knows the other fields and collections.
    The error's ``problems`` carry one :class:`FieldError` per problem, each
    with the ``option`` it is about.
    """
    name, kind = _name_and_type(raw)
    spec = Field(name=name, type=kind.name)
    problems: list[FieldError] = []
    unknown = sorted(set(raw) - OPTIONS)
    if unknown:
        problems.append(FieldError(f"unknown option(s): {', '.join(unknown)}"))
    _read_general(spec, raw, problems)
    problems.extend(_check_flags(spec, kind))
    _read_type_options(spec, kind, raw, problems)
    if raw.get("default") is not None:
        if not kind.default:
            problems.append(FieldError(f"a {kind.name} field cannot have a default", option="default"))
        elif not problems:
            try:
                spec.default = coerce_value(spec, raw["default"])
            except FieldError as exc:
                problems.append(FieldError(f"'default' is not valid: {exc}", option="default"))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise FieldError("; ".join(p.message for p in problems), problems=problems)
    return spec


# --- values ----------------------------------------------------------------------------------------


def coerce_value(spec: Field, value: Any, *, form: bool = False) -> Any:
    """``value`` converted to the stored form of ``spec``; ``None`` for an empty value.

    Accepts JSON values and also the strings a form sends (``"12"`` for an
    integer, ``"on"`` for a boolean). Checks type, min/max, pattern and
    choices; not ``required`` (see :func:`appliance.records.validation.validate_record`),
    not uniqueness or relation targets (they need the database). With
    ``form`` a JSON field's value is JSON text to parse. Raises
    :class:`FieldError` with the message for the person.
    """
    kind = spec.field_type
    if value is None or (isinstance(value, str) and value == "" and kind.blank_is_empty):
        return None
    result = kind.coerce(spec, value, form)
    if kind.bounds is not None:
        _check_bounds(spec, kind.bounds, result)
    if spec.pattern is not None and isinstance(result, str) and not match_pattern(spec.pattern, result):
        raise FieldError("Enter a value in the expected format.")
    return result


def _check_bounds(spec: Field, bounds: str, value: Any) -> None:
    if bounds == "length":
        if spec.min is not None and len(value) < spec.min:
            raise FieldError(f"Enter at least {spec.min} characters.")
        if spec.max is not None and len(value) > spec.max:
            raise FieldError(f"Enter at most {spec.max} characters.")
        return
    if spec.min is not None and value < spec.min:
        raise FieldError(f"Enter {spec.min} or more.")
    if spec.max is not None and value > spec.max:
        raise FieldError(f"Enter {spec.max} or less.")


def to_column(spec: Field, value: Any) -> Any:
    """A coerced value as the SQLite column holds it (booleans as 0/1, JSON and files as text)."""
    convert = spec.field_type.to_column
    return value if value is None or convert is None else convert(value)


def from_column(spec: Field, value: Any) -> Any:
    """A column value back in its API form."""
    convert = spec.field_type.from_column
    return value if value is None or convert is None else convert(value)
