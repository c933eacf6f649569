"""Field definitions of a collection: the 14 types of API.md, their options, and value conversion.

A field is written as a JSON object (``{"name": "status", "type": "select",
"choices": ["open", "paid"], "required": true}``). :func:`parse_field` turns
one into a :class:`Field` or names what is wrong with it; :func:`coerce_value`
turns one submitted value into the stored form or raises :class:`FieldError`
with the message to show next to the field.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import regex
from email_validator import EmailNotValidError, validate_email

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
SYSTEM_FIELDS = ("id", "created_at", "updated_at", "created_by", "updated_by")
# Names a field may not take: the record's own columns, and the listing's parameters.
RESERVED_NAMES = frozenset(SYSTEM_FIELDS) | {"page", "page_size", "ordering", "search", "rowid", "rank"}

TYPES = (
    "text",
    "long_text",
    "integer",
    "number",
    "boolean",
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
TEXT_TYPES = frozenset({"text", "long_text", "email", "url", "select"})
# Types whose values the full-text index covers.
SEARCHABLE_TYPES = frozenset({"text", "long_text", "email", "url", "select"})
# The SQLite column type of each field type (computed takes whatever its formula gives).
COLUMN_TYPES = {
    "text": "TEXT",
    "long_text": "TEXT",
    "integer": "INTEGER",
    "number": "REAL",
    "boolean": "INTEGER",
    "date": "TEXT",
    "datetime": "TEXT",
    "email": "TEXT",
    "url": "TEXT",
    "select": "TEXT",
    "relation": "INTEGER",
    "file": "TEXT",
    "json": "TEXT",
    "computed": "",
}
OPTIONS = {
    "name",
    "type",
    "label",
    "required",
    "unique",
    "filterable",
    "min",
    "max",
    "pattern",
    "choices",
    "default",
    "max_size",
    "accept",
    "formula",
    "collection",
    "cascade",
    "rename_from",
}
INT64 = 2**63 - 1
MAX_TEXT = 10_000
MAX_LONG_TEXT = 1_000_000
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A field's ``pattern`` runs with the ``regex`` package under this time bound (seconds), so a pattern
# with catastrophic backtracking such as ``(a|aa)+b`` costs a 422, never seconds of a worker.
PATTERN_TIMEOUT = 0.25
# The words a form, a filter or a CSV cell may use for true and false (one place for all of them).
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
MIME_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$")


class FieldError(ValueError):
    """A value (or a definition) that a field cannot take; ``str(exc)`` is the message to show."""


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
    def column_type(self) -> str:
        return COLUMN_TYPES[self.type]

    @property
    def indexed(self) -> bool:
        """Whether the field gets a (non-unique) index: filterable fields and every relation."""
        return (self.filterable or self.type == "relation") and not self.unique

    @property
    def read_only(self) -> bool:
        return self.type == "computed"

    def to_dict(self) -> dict[str, Any]:
        """The definition as API.md writes it: name, type, label and only the options that are set."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "label": self.label or self.name}
        for key in ("required", "unique", "filterable", "cascade"):
            if getattr(self, key):
                out[key] = True
        for key in ("min", "max", "pattern", "choices", "default", "max_size", "accept", "formula", "collection"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.type == "relation":
            out["cascade"] = self.cascade
        return out


def _bool_option(raw: dict, key: str, errors: list[str]) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        errors.append(f"'{key}' must be true or false")
        return False
    return value


def parse_field(raw: Any) -> Field:
    """A :class:`Field` from its JSON definition; raises :class:`FieldError` naming every problem.

    Checks the name, the type, that each option fits the type and that the
    default (when given) is a valid value. Formulas and relation targets are
    checked by the collection, which knows the other fields and collections.
    """
    if not isinstance(raw, dict):
        raise FieldError("a field must be an object with at least 'name' and 'type'")
    errors: list[str] = []
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or "__" in name:
        raise FieldError(
            "a field name must be 1 to 50 lower-case letters, digits or '_' (no '__'), starting with a letter"
        )
    if name in RESERVED_NAMES:
        raise FieldError(f"'{name}' is reserved")
    kind = raw.get("type")
    if kind not in TYPES:
        raise FieldError(f"type must be one of {', '.join(TYPES)}")
    unknown = sorted(set(raw) - OPTIONS)
    if unknown:
        errors.append(f"unknown option(s): {', '.join(unknown)}")
    label = raw.get("label", "")
    if not isinstance(label, str) or len(label) > 200:
        errors.append("'label' must be text of at most 200 characters")
        label = ""
    spec = Field(name=name, type=kind, label=label)
    spec.required = _bool_option(raw, "required", errors)
    spec.unique = _bool_option(raw, "unique", errors)
    spec.filterable = _bool_option(raw, "filterable", errors)
    spec.cascade = _bool_option(raw, "cascade", errors)
    rename_from = raw.get("rename_from")
    if rename_from is not None and not (isinstance(rename_from, str) and NAME_RE.match(rename_from)):
        errors.append("'rename_from' must name an existing field")
    spec.rename_from = rename_from

    if spec.unique and kind in ("long_text", "boolean", "file", "json", "computed"):
        errors.append(f"a {kind} field cannot be unique")
    if spec.required and kind == "computed":
        errors.append("a computed field cannot be required")
    if spec.cascade and kind != "relation":
        errors.append("'cascade' applies to relation fields only")

    for key in ("min", "max"):
        value = raw.get(key)
        if value is None:
            continue
        if kind in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                errors.append(f"'{key}' must be a number")
                continue
        elif kind in ("text", "long_text", "email", "url"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                errors.append(f"'{key}' must be a length (a whole number, 0 or more)")
                continue
        elif kind == "date":
            if not isinstance(value, str) or not DATE_RE.match(value):
                errors.append(f"'{key}' must be a date (YYYY-MM-DD)")
                continue
        elif kind == "datetime":
            try:
                value = coerce_datetime(value)
            except FieldError:
                errors.append(f"'{key}' must be a date and time (ISO 8601)")
                continue
        else:
            errors.append(f"'{key}' does not apply to a {kind} field")
            continue
        setattr(spec, key, value)
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        errors.append("'min' is greater than 'max'")

    pattern = raw.get("pattern")
    if pattern is not None:
        if kind not in ("text", "long_text", "email", "url"):
            errors.append(f"'pattern' does not apply to a {kind} field")
        elif not isinstance(pattern, str) or len(pattern) > 500:
            errors.append("'pattern' must be a regular expression of at most 500 characters")
        else:
            try:
                regex.compile(pattern)
                spec.pattern = pattern
            except (regex.error, ValueError, OverflowError, RecursionError) as exc:
                errors.append(f"'pattern' is not a valid regular expression: {exc}")

    choices = raw.get("choices")
    if kind == "select":
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, str) and c and len(c) <= 200 for c in choices)
            or len(set(choices)) != len(choices)
        ):
            errors.append("a select field needs 'choices': a list of distinct, non-empty texts")
        else:
            spec.choices = list(choices)
    elif choices is not None:
        errors.append("'choices' applies to select fields only")

    formula = raw.get("formula")
    if kind == "computed":
        if not isinstance(formula, str) or not formula.strip() or len(formula) > 1000:
            errors.append("a computed field needs a 'formula' of at most 1000 characters")
        else:
            spec.formula = formula
    elif formula is not None:
        errors.append("'formula' applies to computed fields only")

    target = raw.get("collection")
    if kind == "relation":
        if not isinstance(target, str) or not NAME_RE.match(target):
            errors.append("a relation field needs 'collection': the name of another collection")
        else:
            spec.collection = target
    elif target is not None:
        errors.append("'collection' applies to relation fields only")

    for key in ("max_size", "accept"):
        if raw.get(key) is not None and kind != "file":
            errors.append(f"'{key}' applies to file fields only")
    if kind == "file":
        max_size = raw.get("max_size")
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
                errors.append("'max_size' must be a number of bytes, 1 or more")
            else:
                spec.max_size = max_size
        accept = raw.get("accept")
        if accept is not None:
            if (
                not isinstance(accept, list)
                or not accept
                or not all(isinstance(a, str) and MIME_RE.match(a.lower()) for a in accept)
            ):
                errors.append("'accept' must be a list of media types such as 'application/pdf' or 'image/*'")
            else:
                spec.accept = [a.lower() for a in accept]

    if "default" in raw and raw["default"] is not None:
        if kind in ("computed", "file", "relation"):
            errors.append(f"a {kind} field cannot have a default")
        elif not errors:
            try:
                spec.default = coerce_value(spec, raw["default"])
            except FieldError as exc:
                errors.append(f"'default' is not valid: {exc}")
    if errors:
        raise FieldError("; ".join(errors))
    return spec


def coerce_datetime(value: Any) -> str:
    """An ISO 8601 date and time in the stored form (UTC, fixed width); raises :class:`FieldError`."""
    if not isinstance(value, str) or len(value) > 40:
        raise FieldError("Enter a date and time (ISO 8601, e.g. 2026-01-05T09:30:00Z).")
    text = value.strip()
    if not DATE_RE.match(text[:10]) or len(text) < 16 or text[10] not in "Tt ":
        raise FieldError("Enter a date and time (ISO 8601, e.g. 2026-01-05T09:30:00Z).")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise FieldError("Enter a date and time (ISO 8601, e.g. 2026-01-05T09:30:00Z).") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return format_datetime(moment)


def format_datetime(moment: dt.datetime) -> str:
    """The stored form of a UTC datetime: fixed width, so text order is time order."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_text() -> str:
    """The current time in the stored form (``2026-01-05T12:00:00.123Z``)."""
    return format_datetime(dt.datetime.now(dt.UTC).replace(tzinfo=None))


def parse_bool(text: str) -> bool:
    """``True``/``False`` for one of :data:`TRUE_WORDS`/:data:`FALSE_WORDS` (any case); raises :class:`FieldError`."""
    lowered = text.strip().lower() if isinstance(text, str) else ""
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise FieldError("Enter true or false.")


def match_pattern(pattern: str, value: str) -> bool:
    """Whether the whole of ``value`` matches ``pattern``, within :data:`PATTERN_TIMEOUT`; raises :class:`FieldError` when it takes longer."""
    try:
        return regex.fullmatch(pattern, value, timeout=PATTERN_TIMEOUT) is not None
    except TimeoutError:
        raise FieldError("This value takes too long to check against the field's pattern; shorten it.") from None


def coerce_value(spec: Field, value: Any, *, form: bool = False) -> Any:
    """``value`` converted to the stored form of ``spec``; ``None`` for an empty value.

    Accepts JSON values and also the strings a form sends (``"12"`` for an
    integer, ``"on"`` for a boolean). Checks type, min/max, pattern and
    choices; not ``required`` (see :func:`appliance.validation.validate_record`),
    not uniqueness or relation targets (they need the database). With
    ``form`` a JSON field's value is JSON text to parse. Raises
    :class:`FieldError` with the message for the person.
    """
    kind = spec.type
    if value is None or (isinstance(value, str) and value == "" and kind != "json"):
        return None
    if kind in ("text", "long_text"):
        if not isinstance(value, str):
            raise FieldError("Enter text.")
        limit = MAX_TEXT if kind == "text" else MAX_LONG_TEXT
        if len(value) > limit:
            raise FieldError(f"Enter at most {limit} characters.")
        if "\x00" in value:
            raise FieldError("Text may not contain NUL characters.")
        result: Any = value
    elif kind == "integer":
        result = coerce_integer(value)
    elif kind == "number":
        result = coerce_number(value)
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return parse_bool(value)
        raise FieldError("Enter true or false.")
    elif kind == "date":
        if not isinstance(value, str) or not DATE_RE.match(value.strip()):
            raise FieldError("Enter a date as YYYY-MM-DD.")
        try:
            result = dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise FieldError("Enter a real date as YYYY-MM-DD.") from None
    elif kind == "datetime":
        result = coerce_datetime(value)
    elif kind == "email":
        if not isinstance(value, str) or len(value) > 320:
            raise FieldError("Enter a valid email address.")
        try:
            result = validate_email(value.strip(), check_deliverability=False).normalized
        except EmailNotValidError:
            raise FieldError("Enter a valid email address.") from None
    elif kind == "url":
        result = coerce_url(value)
    elif kind == "select":
        if not isinstance(value, str) or value not in (spec.choices or []):
            raise FieldError(f"Choose one of: {', '.join(spec.choices or [])}.")
        return value
    elif kind == "relation":
        try:
            result = coerce_integer(value)
        except FieldError:
            raise FieldError("Enter the id of a record.") from None
        if result < 1:
            raise FieldError("Enter the id of a record.")
        return result
    elif kind == "json":
        if isinstance(value, str) and form:
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise FieldError("Enter valid JSON.") from None
        try:
            text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError):
            raise FieldError("Enter valid JSON.") from None
        except RecursionError:
            raise FieldError("This JSON value is nested too deeply.") from None
        if len(text) > MAX_LONG_TEXT:
            raise FieldError("This JSON value is too large.")
        return value
    elif kind == "file":
        raise FieldError("Upload the file as multipart/form-data (or send null to remove it).")
    elif kind == "computed":
        raise FieldError("This field is computed and read-only.")
    else:  # pragma: no cover - TYPES is closed
        raise FieldError("Unknown field type.")
    _check_bounds(spec, result)
    if spec.pattern is not None and isinstance(result, str) and not match_pattern(spec.pattern, result):
        raise FieldError("Enter a value in the expected format.")
    return result


def coerce_integer(value: Any) -> int:
    """A whole number (int, integral float or digits text) within 64 bits; raises :class:`FieldError`."""
    if isinstance(value, bool):
        raise FieldError("Enter a whole number.")
    if isinstance(value, int):
        result = value
    elif (isinstance(value, float) and math.isfinite(value) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,19}\s*", value)
    ):
        result = int(value)
    else:
        raise FieldError("Enter a whole number.")
    if not -INT64 - 1 <= result <= INT64:
        raise FieldError("This number is too large.")
    return result


def coerce_number(value: Any) -> float | int:
    """A finite number (int, float or numeric text); raises :class:`FieldError`."""
    if isinstance(value, bool):
        raise FieldError("Enter a number.")
    if isinstance(value, int):
        if not -INT64 - 1 <= value <= INT64:
            raise FieldError("This number is too large.")
        return value
    if isinstance(value, float):
        result = value
    elif isinstance(value, str) and len(value) <= 50:
        try:
            result = float(value)
        except ValueError:
            raise FieldError("Enter a number.") from None
    else:
        raise FieldError("Enter a number.")
    if not math.isfinite(result):
        raise FieldError("Enter a finite number.")
    return result


def coerce_url(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise FieldError("Enter a valid URL (http or https).")
    text = value.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise FieldError("Enter a valid URL (http or https).") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        raise FieldError("Enter a valid URL (http or https).")
    return text


def _check_bounds(spec: Field, value: Any) -> None:
    if spec.type in ("text", "long_text", "email", "url"):
        if spec.min is not None and len(value) < spec.min:
            raise FieldError(f"Enter at least {spec.min} characters.")
        if spec.max is not None and len(value) > spec.max:
            raise FieldError(f"Enter at most {spec.max} characters.")
    elif spec.type in ("integer", "number", "date", "datetime"):
        if spec.min is not None and value < spec.min:
            raise FieldError(f"Enter {spec.min} or more.")
        if spec.max is not None and value > spec.max:
            raise FieldError(f"Enter {spec.max} or less.")


def to_column(spec: Field, value: Any) -> Any:
    """A coerced value as the SQLite column holds it (booleans as 0/1, JSON and files as text)."""
    if value is None:
        return None
    if spec.type == "boolean":
        return 1 if value else 0
    if spec.type in ("json", "file"):
        return json.dumps(value, ensure_ascii=False, sort_keys=spec.type == "file")
    return value


def from_column(spec: Field, value: Any) -> Any:
    """A column value back in its API form."""
    if value is None:
        return None
    if spec.type == "boolean":
        return bool(value)
    if spec.type in ("json", "file"):
        return json.loads(value)
    return value
