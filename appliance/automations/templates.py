"""Mail templates of rules: ``{field}`` replaced by the record's value of that field, nothing more.

There is no expression language here on purpose: a placeholder is a field
name, never an attribute, an index or a call, so a template cannot reach any
Python object (Jinja is not allowed in the core, and its sandbox would be
more than a subject line needs). ``{{`` and ``}}`` write a literal brace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")
MAX_TEMPLATE_LENGTH = 10_000


class TemplateError(ValueError):
    """A template that names an unknown field or has a brace that opens nothing."""


def template_names(template: str, known: Iterable[str]) -> set[str]:
    """The field names ``template`` uses; :class:`TemplateError` for an unknown name or a stray brace."""
    if len(template) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(f"a template is at most {MAX_TEMPLATE_LENGTH} characters")
    allowed = set(known)
    used: set[str] = set()
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            raise TemplateError("a lone brace: write {{ or }} for a brace, {field} for a field's value")
        name = _NAME.match(match.group(1) or "")
        if name is None:
            raise TemplateError(f"{token} is not a field name: write {{field}} with the field's name only")
        if name.group(1) not in allowed:
            raise TemplateError(f"{token} names no field of this collection")
        used.add(name.group(1))
    return used


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        if isinstance(value, dict) and "filename" in value:
            return str(value["filename"])
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render_template(template: str, record: Mapping[str, Any]) -> str:
    """``template`` with each ``{field}`` replaced by the record's value as text (empty when missing)."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = _NAME.match(match.group(1) or "")
        return _text(record.get(name.group(1))) if name else token

    return _TOKEN.sub(replace, template)
