"""How the collection editor describes a field to a person: its type and options in plain words.

``{"type": "integer", "required": true, "min": 1}`` reads "Whole number" and "required; at least 1".
"""

from __future__ import annotations

from typing import Any

from flask import Flask

TYPE_WORDS = {
    "text": "Text",
    "long_text": "Long text",
    "integer": "Whole number",
    "number": "Number",
    "boolean": "Yes / no",
    "date": "Date",
    "datetime": "Date and time",
    "email": "Email address",
    "url": "Web address",
    "select": "Choice from a list",
    "relation": "Link to a record",
    "file": "File",
    "json": "Structured data (JSON)",
    "computed": "Computed",
}
_LENGTH_TYPES = frozenset({"text", "long_text", "email", "url"})


def type_words(kind: str) -> str:
    """A field type as a person names it; an unknown type as it is."""
    return TYPE_WORDS.get(kind, kind)


def _size(size: int) -> str:
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def option_words(definition: dict[str, Any]) -> list[str]:
    """The options of a field definition (API.md's JSON form) as short phrases."""
    from appliance.records.files import describe_accepted

    kind = definition.get("type", "")
    words: list[str] = []
    if definition.get("required"):
        words.append("required")
    if definition.get("unique"):
        words.append("unique")
    if definition.get("filterable"):
        words.append("filterable")
    low, high = definition.get("min"), definition.get("max")
    if kind in _LENGTH_TYPES:
        if low is not None:
            words.append(f"at least {low} characters")
        if high is not None:
            words.append(f"at most {high} characters")
    else:
        if low is not None:
            words.append(f"at least {low}" if kind not in ("date", "datetime") else f"from {low}")
        if high is not None:
            words.append(f"at most {high}" if kind not in ("date", "datetime") else f"until {high}")
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
        words.append(f"up to {_size(int(definition['max_size']))}")
    if definition.get("accept"):
        words.append("accepts " + describe_accepted(list(definition["accept"])))
    if definition.get("default") is not None:
        default = definition["default"]
        shown = ("yes" if default else "no") if isinstance(default, bool) else default
        words.append(f"default {shown}")
    return words


def init_app(app: Flask) -> None:
    app.add_template_filter(type_words, "field_type_words")
    app.add_template_filter(option_words, "field_option_words")
