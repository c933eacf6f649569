"""Listing records: paging, ordering, full-text search and ``FIELD__OP`` filters, as API.md writes them.

``list_records(collection, actor, params)`` takes the query parameters as a
plain mapping (the API and the pages pass theirs), refuses an unknown field
or operator with :class:`BadRequest` naming it, and answers in the listing
shape. The total of an unfiltered listing comes from the collection's
maintained record count, so it costs nothing however big the table is; a
filtered total is a ``COUNT(*)`` that the filter's index serves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from appliance.collections import CollectionDef, get_visible_collection, quote, require_access
from appliance.db import database
from appliance.errors import BadRequest
from appliance.fields import (
    DATE_RE,
    SYSTEM_FIELDS,
    TEXT_TYPES,
    Field,
    FieldError,
    _coerce_datetime,
    _coerce_integer,
    _coerce_number,
)
from appliance.pagination import parse_paging
from appliance.records import row_to_values, serialize_record

OPERATORS = ("ne", "lt", "lte", "gt", "gte", "contains", "icontains", "startswith", "in", "isnull")
RESERVED = frozenset({"page", "page_size", "ordering", "search"})
_COMPARE = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_SYSTEM_TYPES = {
    "id": "integer",
    "created_at": "datetime",
    "updated_at": "datetime",
    "created_by": "integer",
    "updated_by": "integer",
}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
MAX_IN_VALUES = 100
_WORD = re.compile(r"\w+", re.UNICODE)


def _kind(collection: CollectionDef, name: str) -> str | None:
    if name in _SYSTEM_TYPES:
        return _SYSTEM_TYPES[name]
    spec = collection.field(name)
    return spec.type if spec else None


def operators_for(kind: str) -> tuple[str, ...]:
    """The operators a field of type ``kind`` can be filtered with (``eq`` is the bare ``FIELD=value``)."""
    if kind in TEXT_TYPES:
        return ("eq", *OPERATORS)
    if kind == "boolean":
        return ("eq", "ne", "isnull")
    if kind in ("json", "file"):
        return ("isnull",)
    return ("eq", "ne", "lt", "lte", "gt", "gte", "in", "isnull")


def _parse_one(kind: str, raw: str, parameter: str) -> Any:
    try:
        if kind in ("integer", "relation"):
            return _coerce_integer(raw)
        if kind == "number":
            return _coerce_number(raw)
        if kind == "boolean":
            lowered = raw.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise FieldError("not true or false")
            return 1 if lowered in _TRUE else 0
        if kind == "date":
            if not DATE_RE.match(raw):
                raise FieldError("not a date")
            return raw
        if kind == "datetime":
            return raw if DATE_RE.match(raw) else _coerce_datetime(raw)
        if kind == "computed":
            try:
                return _coerce_number(raw)
            except FieldError:
                return raw
    except FieldError:
        raise BadRequest(
            f"Filter '{parameter}': {raw[:60]!r} is not a valid {kind} value.", parameter=parameter
        ) from None
    return raw


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def build_filters(collection: CollectionDef, params: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    """SQL conditions and their parameters for every ``FIELD`` / ``FIELD__OP`` parameter.

    Raises :class:`BadRequest` naming an unknown field, an unknown operator,
    an operator the field's type does not take, or a value of the wrong type.
    """
    where: list[str] = []
    args: list[Any] = []
    for parameter, value in params.items():
        if parameter in RESERVED:
            continue
        name, _, op = parameter.partition("__")
        op = op or "eq"
        kind = _kind(collection, name)
        if kind is None:
            raise BadRequest(f"Unknown filter '{parameter}': there is no field '{name}'.", parameter=parameter)
        if op not in OPERATORS and op != "eq":
            raise BadRequest(
                f"Unknown operator '{op}' in '{parameter}'; use one of {', '.join(OPERATORS)}.", parameter=parameter
            )
        if op not in operators_for(kind):
            raise BadRequest(f"A {kind} field cannot be filtered with '{op}' ('{parameter}').", parameter=parameter)
        raw = value if isinstance(value, str) else str(value)
        # Qualified: the search's FTS table has columns of the same names.
        column = f"{quote(collection.table)}.{quote(name)}"
        if op == "isnull":
            lowered = raw.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise BadRequest(f"Filter '{parameter}' takes true or false.", parameter=parameter)
            where.append(f"{column} IS NULL" if lowered in _TRUE else f"{column} IS NOT NULL")
        elif op in _COMPARE:
            where.append(f"{column} {_COMPARE[op]} ?")
            args.append(_parse_one(kind, raw, parameter))
            if op == "ne":
                where[-1] = f"({column} IS NULL OR {column} != ?)"
        elif op == "in":
            parts = [p for p in raw.split(",")]
            if not raw or len(parts) > MAX_IN_VALUES:
                raise BadRequest(f"Filter '{parameter}' takes 1 to {MAX_IN_VALUES} comma-separated values.")
            where.append(f"{column} IN ({', '.join('?' for _ in parts)})")
            args.extend(_parse_one(kind, p.strip() if kind not in TEXT_TYPES else p, parameter) for p in parts)
        elif op == "contains":
            where.append(f"instr({column}, ?) > 0")
            args.append(raw)
        elif op == "icontains":
            where.append(f"{column} LIKE ? ESCAPE '\\'")
            args.append(f"%{_like_escape(raw)}%")
        elif op == "startswith":
            where.append(f"{column} GLOB ?")
            args.append(_glob_escape(raw) + "*")
    return where, args


def build_ordering(collection: CollectionDef, ordering: str | None) -> list[str]:
    """ORDER BY terms for ``ordering`` (``-created_at,name``); the id always ends it, so pages are stable."""
    terms: list[str] = []
    seen: set[str] = set()
    for part in (ordering or "").split(","):
        part = part.strip()
        if not part:
            continue
        descending = part.startswith("-")
        name = part.lstrip("-")
        kind = _kind(collection, name)
        if kind is None:
            raise BadRequest(f"Cannot order by '{name}': there is no such field.", parameter="ordering")
        if kind in ("json", "file"):
            raise BadRequest(f"Cannot order by '{name}': a {kind} field has no order.", parameter="ordering")
        if name in seen:
            continue
        seen.add(name)
        terms.append(f"{quote(collection.table)}.{quote(name)} {'DESC' if descending else 'ASC'}")
    if "id" not in seen:
        last = "DESC" if terms and terms[0].endswith("DESC") else "ASC"
        terms.append(f"{quote(collection.table)}.id {last}")
    return terms


def search_expression(text: str) -> str | None:
    """An FTS5 query for what a person typed: every word must appear (as a prefix); ``None`` when no words."""
    words = _WORD.findall(text or "")[:20]
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def list_records(collection: CollectionDef | str, actor: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """One page of the records ``actor`` may view, in the listing shape of API.md.

    ``params`` are the query parameters: ``page``, ``page_size``,
    ``ordering``, ``search`` and filters. Raises :class:`NotFound` for a
    collection unknown to the actor, :class:`PermissionDenied` without view
    permission, :class:`BadRequest` for a bad parameter.
    """
    if isinstance(collection, str):
        collection = get_visible_collection(collection, actor)
    scope = require_access(collection, actor, "view")
    page, page_size = parse_paging(params)
    where, args = build_filters(collection, params)
    if scope == "own":
        where.append(f"{quote(collection.table)}.created_by = ?")
        args.append(getattr(actor, "id", None))
    table = quote(collection.table)
    source = table
    match = search_expression(str(params.get("search") or ""))
    ordering = params.get("ordering")
    if match is not None:
        if not collection.text_fields:
            raise BadRequest(f"{collection.label!r} has no text fields to search.", parameter="search")
        fts = quote(collection.fts_table)
        source = f"{table} JOIN {fts} ON {fts}.rowid = {table}.id"
        where.insert(0, f"{fts} MATCH ?")
        args.insert(0, match)
        order = [f"{fts}.rank", f"{table}.id ASC"] if not ordering else build_ordering(collection, ordering)
    else:
        order = build_ordering(collection, ordering)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    if not clause:
        total = database.execute_sql("SELECT row_count FROM collection WHERE name = ?", (collection.name,)).fetchone()[
            0
        ]
    else:
        total = database.execute_sql(f"SELECT COUNT(*) FROM {source}{clause}", args).fetchone()[0]
    items: list[dict[str, Any]] = []
    if total and (page - 1) * page_size < total:
        cursor = database.execute_sql(
            f"SELECT {table}.* FROM {source}{clause} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?",
            [*args, page_size, (page - 1) * page_size],
        )
        columns = [d[0] for d in cursor.description]
        items = [serialize_record(collection, row_to_values(collection, columns, row)) for row in cursor.fetchall()]
    return {
        "items": items,
        "page": page,
        "page_size": page_size,
        "total_items": total,
        "total_pages": (total + page_size - 1) // page_size,
    }


__all__ = ["OPERATORS", "SYSTEM_FIELDS", "Field", "build_filters", "build_ordering", "list_records", "operators_for"]
