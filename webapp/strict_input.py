"""Request input read strictly, once, for every endpoint: JSON bodies, multipart bodies and ids in paths.

Bad input is refused at the edge with a 400 in the API's error shape, before
any view or service sees it, so no endpoint needs its own copy of these checks:

- JSON: nested deeper than :data:`MAX_JSON_DEPTH`, a whole number outside
  SQLite's 64-bit range, ``NaN``/``Infinity`` (not JSON), or a string (or a
  key) with a lone surrogate, which no database can store as UTF-8.
- multipart: a body that has content but yields no field and no file (a
  broken or wrong boundary) is refused instead of being read as an empty form.
- paths: ``<int:...>`` takes only ids SQLite can hold (up to 2^63 - 1); a
  larger one matches no route (404) instead of overflowing in a query.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, Request, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from appliance.errors import BadRequest

MAX_JSON_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise BadRequest(f"The JSON body has a whole number too large to store ({text[:30]}...).")
    return value


def _not_json(name: str) -> Any:
    raise BadRequest(f"The JSON body has {name}, which is not a JSON number.")


def _check(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise BadRequest(f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels).")
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value):
            raise BadRequest("The JSON body has text with a lone surrogate (\\ud800-\\udfff), which cannot be stored.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _too_deep(text: str) -> bool:
    """Whether ``text`` opens more than :data:`MAX_JSON_DEPTH` arrays or objects inside each other.

    Checked before parsing, so the parser never meets a ``RecursionError``: CPython 3.11 can be left
    unable to compile code after one (a later ``compile()``, as Jinja's templates do, then fails).
    Brackets inside strings do not count; a body with few brackets is not scanned at all.
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif mark in "]}":
            depth -= 1
    return False


def loads_strictly(data: str | bytes) -> Any:
    """Parse a JSON body; :class:`BadRequest` (not a ``ValueError``, so no ``silent=True`` hides it) for
    input no endpoint may take; a ``ValueError`` for text that is not JSON at all."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if _too_deep(text):
        raise BadRequest(f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels).")
    value = json.loads(text, parse_int=_whole, parse_constant=_not_json)
    _check(value, 1)
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with :func:`loads_strictly` for every request body."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads_strictly(s)


class StrictRequest(Request):
    """A request whose multipart body must parse into at least one field or file when it has content."""

    def _load_form_data(self) -> None:
        super()._load_form_data()
        if (
            self.mimetype == "multipart/form-data"
            and (self.content_length or 0) > 0
            and not self.form
            and not self.files
        ):
            raise BadRequest("The multipart body could not be read: no part matches its boundary.")


class Int64Converter(IntegerConverter):
    """``<int:...>`` for database ids: 0 up to 2^63 - 1; a larger number is an id nothing has (404), not a
    path another route's methods answer (which was a 405 no document described)."""

    def to_python(self, value: str) -> Any:
        number = int(value)
        if number > INT64_MAX:
            raise NotFound(f"No such id: {value[:40]} is larger than any id stored here.")
        return super().to_python(value)


def only_fields(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """:class:`BadRequest` naming the keys of ``data`` that are not in ``allowed`` (and what is)."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}; accepted: {', '.join(allowed)}.")


def json_object(allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The request's JSON body, which must be an object (and have only ``allowed`` keys when given): the one
    reader of JSON bodies for the API's endpoints. :class:`BadRequest` for anything else."""
    if not request.is_json:
        raise BadRequest("Send a JSON object with 'Content-Type: application/json'.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("The body is not a JSON object.")
    if allowed is not None:
        only_fields(data, allowed)
    return data


def init_app(app: Flask) -> None:
    """Install the strict JSON parser, the strict request and the 64-bit id converter. Call before any
    blueprint is registered (a route takes its converter when it is added)."""
    app.json = StrictJSONProvider(app)
    app.request_class = StrictRequest
    app.url_map.converters["int"] = Int64Converter
