"""How pages describe a field to a person: its type and options in plain words, and sizes.

``{"type": "integer", "required": true, "min": 1}`` reads "Whole number" and "required; at least 1".
The words of a type come from the table of field types; a byte size is always
:func:`appliance.text.format_bytes` (``2 KB``), beside a file input as in its error.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from appliance.collections.types import FIELD_TYPES
from appliance.records.files import describe_accepted
from appliance.text import format_bytes


def type_words(kind: str) -> str:
    """A field type as a person names it (its label in the table of field types); an unknown type as it is."""
    entry = FIELD_TYPES.get(kind)
    return entry.label if entry is not None else kind


def option_words(definition: dict[str, Any]) -> list[str]:
    """The options of a field definition (API.md's JSON form) as short phrases."""
    entry = FIELD_TYPES.get(definition.get("type", ""))
    bounds = entry.bounds if entry is not None else None
    words: list[str] = []
    if definition.get("required"):
        words.append("required")
    if definition.get("unique"):
        words.append("unique")
    if definition.get("filterable"):
        words.append("filterable")
    low, high = definition.get("min"), definition.get("max")
    if bounds == "length":
        if low is not None:
            words.append(f"at least {low} characters")
        if high is not None:
            words.append(f"at most {high} characters")
    else:
        if low is not None:
            words.append(f"from {low}" if bounds in ("date", "datetime") else f"at least {low}")
        if high is not None:
            words.append(f"until {high}" if bounds in ("date", "datetime") else f"at most {high}")
    if definition.get("pattern"):
        words.append(f"must match {definition['pattern']}")
    if definition.get("choices"):
        words.append("choices: " + ", ".join(str(c) for c in definition["choices"]))
    if definition.get("formula"):
        words.append(f"= {definition['formula']}")
    if definition.get("collection"):
        words.append(f"links to {definition['collection']}")
    if definition.get("cascade"):
        words.append("deleted with the linked record")
    if definition.get("max_size"):
        words.append(f"up to {format_bytes(int(definition['max_size']))}")
    if definition.get("accept"):
        words.append("accepts " + describe_accepted(list(definition["accept"])))
    if definition.get("default") is not None:
        default = definition["default"]
        shown = ("yes" if default else "no") if isinstance(default, bool) else default
        words.append(f"default {shown}")
    return words


def init_app(app: Flask) -> None:
    """The filters the editor's and the record pages' templates use: a type's words, a definition's
    options, a byte size (``{{ size|bytes }}``, the one way sizes are shown), and the table of field
    types (``field_types``)."""
    app.add_template_filter(type_words, "field_type_words")
    app.add_template_filter(option_words, "field_option_words")
    app.add_template_filter(format_bytes, "bytes")
    app.jinja_env.globals["field_types"] = FIELD_TYPES
