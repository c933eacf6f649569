"""Single field values: :class:`FieldError` and the checks that turn one submitted value into its stored form.

Each ``coerce_*`` takes a JSON value or the text a form, a filter or a CSV
cell sends and answers the stored form, or raises :class:`FieldError` with
the message to show next to the field. The table of field types
(:mod:`appliance.collections.types`) puts them together per type.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import regex
from email_validator import EmailNotValidError, validate_email

from appliance.text import bool_from_word

INT64 = 2**63 - 1
MAX_TEXT = 10_000
MAX_LONG_TEXT = 1_000_000
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A field's ``pattern`` runs with the ``regex`` package under this time bound (seconds), so a pattern
# with catastrophic backtracking such as ``(a|aa)+b`` costs a 422, never seconds of a worker.
PATTERN_TIMEOUT = 0.25
_DATETIME_HINT = "Enter a date and time (ISO 8601, e.g. 2026-01-05T09:30:00Z)."


class FieldError(ValueError):
    """A value (or a definition) that a field cannot take; ``str(exc)`` is the message to show.

    ``option`` names the option of a field definition the error is about (``"max"``, ``"choices"``),
    ``None`` for a value or for a definition as a whole. ``problems`` holds every error found, each
    with its own option (``(self,)`` for a single error), so a form can put each beside its input.
    ``form_message`` is the message as it reads beside that input, where the JSON key the message
    names means nothing (the message itself when not given).
    """

    def __init__(
        self,
        message: str,
        *,
        option: str | None = None,
        problems: Sequence[FieldError] = (),
        form_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.option = option
        self.problems: tuple[FieldError, ...] = tuple(problems) or (self,)
        self.form_message = form_message or message


def coerce_text(value: Any, limit: int) -> str:
    """Text of at most ``limit`` characters, without NUL; raises :class:`FieldError`."""
    if not isinstance(value, str):
        raise FieldError("Enter text.")
    if len(value) > limit:
        raise FieldError(f"Enter at most {limit} characters.")
    if "\x00" in value:
        raise FieldError("Text may not contain NUL characters.")
    return value


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


def coerce_boolean(value: Any) -> bool:
    """``True``/``False`` for a JSON boolean or a true/false word; raises :class:`FieldError`."""
    if isinstance(value, bool):
        return value
    return parse_bool(value)


def parse_bool(text: Any) -> bool:
    """``True``/``False`` for one of :data:`appliance.text.TRUE_WORDS`/``FALSE_WORDS`` (any case);
    raises :class:`FieldError`."""
    answer = bool_from_word(text) if isinstance(text, str) else None
    if answer is None:
        raise FieldError("Enter true or false.")
    return answer


def coerce_date(value: Any) -> str:
    """A date as ``YYYY-MM-DD``; raises :class:`FieldError`."""
    if not isinstance(value, str) or not DATE_RE.match(value.strip()):
        raise FieldError("Enter a date as YYYY-MM-DD.")
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise FieldError("Enter a real date as YYYY-MM-DD.") from None


def coerce_datetime(value: Any) -> str:
    """An ISO 8601 date and time in the stored form (UTC, fixed width); raises :class:`FieldError`."""
    if not isinstance(value, str) or len(value) > 40:
        raise FieldError(_DATETIME_HINT)
    text = value.strip()
    if not DATE_RE.match(text[:10]) or len(text) < 16 or text[10] not in "Tt ":
        raise FieldError(_DATETIME_HINT)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(_DATETIME_HINT) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return format_datetime(moment)


def format_datetime(moment: dt.datetime) -> str:
    """The stored form of a UTC datetime: fixed width, so text order is time order."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_text() -> str:
    """The current time in the stored form (``2026-01-05T12:00:00.123Z``)."""
    return format_datetime(dt.datetime.now(dt.UTC).replace(tzinfo=None))


def coerce_email(value: Any) -> str:
    """An email address in its normalised form; raises :class:`FieldError`."""
    if not isinstance(value, str) or len(value) > 320:
        raise FieldError("Enter a valid email address.")
    try:
        return str(validate_email(value.strip(), check_deliverability=False).normalized)
    except EmailNotValidError:
        raise FieldError("Enter a valid email address.") from None


def coerce_url(value: Any) -> str:
    """An http or https URL with a host (spaces around removed); raises :class:`FieldError`."""
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


def coerce_relation(value: Any) -> int:
    """The id of a record (a whole number, 1 or more); raises :class:`FieldError`."""
    try:
        result = coerce_integer(value)
    except FieldError:
        raise FieldError("Enter the id of a record.") from None
    if result < 1:
        raise FieldError("Enter the id of a record.")
    return result


def coerce_json(value: Any, *, form: bool) -> Any:
    """Any JSON value of at most :data:`MAX_LONG_TEXT` characters (``form``: JSON text to parse first);
    raises :class:`FieldError`."""
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


def match_pattern(pattern: str, value: str) -> bool:
    """Whether the whole of ``value`` matches ``pattern``, within :data:`PATTERN_TIMEOUT`; raises
    :class:`FieldError` when it takes longer."""
    try:
        return regex.fullmatch(pattern, value, timeout=PATTERN_TIMEOUT) is not None
    except TimeoutError:
        raise FieldError("This value takes too long to check against the field's pattern; shorten it.") from None
