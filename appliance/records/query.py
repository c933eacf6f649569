"""Listing records: paging, ordering, full-text search and ``FIELD__OP`` filters, as API.md writes them.

``list_records(collection, actor, params)`` takes the query parameters as a
plain mapping (the API and the pages pass theirs), refuses an unknown field
or operator with :class:`BadRequest` naming it, and answers in the listing
shape. The total of an unfiltered listing comes from the collection's
maintained record count, so it costs nothing however big the table is; a
filtered total is a ``COUNT(*)`` that the filter's index serves.

A field hidden from the caller (:func:`appliance.collections.access.field_rules`)
is, to the listing, a field that does not exist: filtering or ordering by it
is the same 400 as for an unknown field, and a search matches only the
columns of the full-text index the caller may see.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from typing import Any

from appliance.collections.access import field_rules, get_visible_collection, require_access
from appliance.collections.definitions import CollectionDef
from appliance.collections.fields import SYSTEM_FIELDS, Field
from appliance.collections.schema import quote
from appliance.collections.types import FIELD_TYPES
from appliance.collections.values import DATE_RE, FieldError, coerce_datetime
from appliance.errors import BadRequest
from appliance.records.read import row_to_values, serialize_record
from appliance.storage.db import database
from appliance.storage.pagination import parse_paging
from appliance.text import bool_from_word

# Every operator some type takes (the bare ``FIELD=value`` is "eq").
OPERATORS = tuple(dict.fromkeys(op for t in FIELD_TYPES.values() for op in t.operators if op != "eq"))
RESERVED = frozenset({"page", "page_size", "ordering", "search"})
_COMPARE = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
# A date on a datetime field: the condition over that UTC day [start, end), and which bound it takes.
_DAY_COMPARE = {
    "eq": ("({column} >= ? AND {column} < ?)", "both"),
    "ne": ("({column} IS NULL OR {column} < ? OR {column} >= ?)", "both"),
    "lt": ("{column} < ?", "start"),
    "lte": ("{column} < ?", "end"),
    "gt": ("{column} >= ?", "end"),
    "gte": ("{column} >= ?", "start"),
}
SYSTEM_FIELD_TYPES = {
    "id": "integer",
    "created_at": "datetime",
    "updated_at": "datetime",
    "created_by": "integer",
    "updated_by": "integer",
}
MAX_IN_VALUES = 100
_WORD = re.compile(r"\w+", re.UNICODE)


def _kind(collection: CollectionDef, name: str, hidden: Collection[str] = ()) -> str | None:
    if name in SYSTEM_FIELD_TYPES:
        return SYSTEM_FIELD_TYPES[name]
    if name in hidden:
        return None  # as if there were no such field
    spec = collection.field(name)
    return spec.type if spec else None


def operators_for(kind: str) -> tuple[str, ...]:
    """The operators a field of type ``kind`` can be filtered with (``eq`` is the bare ``FIELD=value``)."""
    return FIELD_TYPES[kind].operators


def _bad_value(kind: str, raw: str, parameter: str) -> BadRequest:
    return BadRequest(f"Filter '{parameter}': {raw[:60]!r} is not a valid {kind} value.", parameter=parameter)


def _parse_one(kind: str, raw: str, parameter: str) -> Any:
    """One filter value as the column compares it; :class:`BadRequest` when the type cannot read it."""
    try:
        return FIELD_TYPES[kind].filter_value(raw)
    except FieldError:
        raise _bad_value(kind, raw, parameter) from None


def _day_range(raw: str, parameter: str) -> tuple[str, str] | None:
    """For a bare date given to a datetime filter, the stored-form bounds ``[start, end)`` of that UTC day."""
    if not DATE_RE.match(raw.strip()):
        return None
    day = dt.date.fromisoformat(_parse_one("date", raw, parameter))
    start = dt.datetime.combine(day, dt.time())
    return coerce_datetime(start.isoformat()), coerce_datetime((start + dt.timedelta(days=1)).isoformat())


def single_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """The query parameters with one value each; :class:`BadRequest` naming one given more than once.

    A parameter's value may be a list (all the values a query string gave
    it, as ``MultiDict.to_dict(flat=False)`` answers): one value is taken,
    several are refused, since ``name=Acme&name=Bob`` has no one meaning.
    """
    out: dict[str, Any] = {}
    for parameter, value in params.items():
        if isinstance(value, (list, tuple)):
            if len(value) > 1:
                hint = (
                    f"; to match any of several values use {parameter.partition('__')[0]}__in=a,b"
                    if (parameter not in RESERVED)
                    else ""
                )
                raise BadRequest(f"Give '{parameter}' once{hint}.", parameter=parameter)
            value = value[0] if value else ""
        out[parameter] = value
    return out


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def build_filters(
    collection: CollectionDef, params: Mapping[str, Any], hidden: Collection[str] = ()
) -> tuple[list[str], list[Any]]:
    """SQL conditions and their parameters for every ``FIELD`` / ``FIELD__OP`` parameter.

    Raises :class:`BadRequest` naming an unknown (or ``hidden``) field, an unknown operator,
    an operator the field's type does not take, or a value of the wrong type.
    """
    where: list[str] = []
    args: list[Any] = []
    for parameter, value in single_values(params).items():
        if parameter in RESERVED:
            continue
        name, _, op = parameter.partition("__")
        op = op or "eq"
        kind = _kind(collection, name, hidden)
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
            empty = bool_from_word(raw)
            if empty is None:
                raise BadRequest(f"Filter '{parameter}' takes true or false.", parameter=parameter)
            where.append(f"{column} IS NULL" if empty else f"{column} IS NOT NULL")
        elif op in _COMPARE and kind == "datetime" and (day := _day_range(raw, parameter)) is not None:
            # A bare date on a datetime field stands for the whole UTC day.
            start, end = day
            condition, bound = _DAY_COMPARE[op]
            where.append(condition.format(column=column))
            args.extend([start, end] if op in ("eq", "ne") else [start if bound == "start" else end])
        elif op in _COMPARE:
            where.append(f"{column} {_COMPARE[op]} ?")
            args.append(_parse_one(kind, raw, parameter))
            if op == "ne":
                where[-1] = f"({column} IS NULL OR {column} != ?)"
        elif op == "in":
            parts = list(raw.split(","))
            if not raw or len(parts) > MAX_IN_VALUES:
                raise BadRequest(
                    f"Filter '{parameter}' takes 1 to {MAX_IN_VALUES} comma-separated values.", parameter=parameter
                )
            conditions = []
            for part in parts:
                day = _day_range(part, parameter) if kind == "datetime" else None
                if day is not None:
                    conditions.append(f"({column} >= ? AND {column} < ?)")
                    args.extend(day)
                else:
                    conditions.append(f"{column} = ?")
                    args.append(_parse_one(kind, part if FIELD_TYPES[kind].searchable else part.strip(), parameter))
            where.append(f"({' OR '.join(conditions)})")
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


def build_ordering(collection: CollectionDef, ordering: str | None, hidden: Collection[str] = ()) -> list[str]:
    """ORDER BY terms for ``ordering`` (``-created_at,name``); the id always ends it, so pages are stable.
    A ``hidden`` field is refused as an unknown one."""
    terms: list[str] = []
    seen: set[str] = set()
    for part in (ordering or "").split(","):
        part = part.strip()
        if not part:
            continue
        descending = part.startswith("-")
        name = part.lstrip("-")
        kind = _kind(collection, name, hidden)
        if kind is None:
            raise BadRequest(f"Cannot order by '{name}': there is no such field.", parameter="ordering")
        if not FIELD_TYPES[kind].orderable:
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


def select_records(
    collection: CollectionDef, scope: str, actor: Any, params: Mapping[str, Any]
) -> tuple[str, list[str], list[Any], list[str]]:
    """The SQL pieces that select the records ``actor`` may view (``scope`` as :func:`require_access` gave it)
    that the single-valued listing ``params`` ask for: the FROM source (joined to the full-text table when
    ``search`` has words), the WHERE conditions and their arguments, and the ORDER BY terms (by relevance
    for a search without ``ordering``). Raises :class:`BadRequest` for a bad filter, ordering or search.
    The fields hidden from ``actor`` can be neither filtered nor ordered by, and a search matches only the
    text fields it may see (an FTS5 column filter), so a hidden field's text never makes a record found."""
    hidden = field_rules(collection, actor).hidden
    where, args = build_filters(collection, params, hidden)
    if scope == "own":
        where.append(f"{quote(collection.table)}.created_by = ?")
        args.append(getattr(actor, "id", None))
    table = quote(collection.table)
    source = table
    searched = str(params.get("search") or "")
    match = search_expression(searched)
    ordering = params.get("ordering")
    if match is None and searched.strip():
        # Something was searched for, but no word in it (``☃``, ``"``): nothing matches, not everything.
        where.append("0")
    if match is not None:
        searchable = [f.name for f in collection.text_fields if f.name not in hidden]
        if not searchable:
            raise BadRequest(f"{collection.label!r} has no text fields to search.", parameter="search")
        # Always the columns it may see, named: then even a definition shown with its hidden fields left
        # out (:func:`~appliance.collections.access.visible_definition`) never searches them.
        match = "{" + " ".join(f'"{name}"' for name in searchable) + "} : (" + match + ")"
        fts = quote(collection.fts_table)
        source = f"{table} JOIN {fts} ON {fts}.rowid = {table}.id"
        where.insert(0, f"{fts} MATCH ?")
        args.insert(0, match)
        order = [f"{fts}.rank", f"{table}.id ASC"] if not ordering else build_ordering(collection, ordering, hidden)
    else:
        order = build_ordering(collection, ordering, hidden)
    return source, where, args, order


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
    params = single_values(params)
    page, page_size = parse_paging(params)
    source, where, args, order = select_records(collection, scope, actor, params)
    table = quote(collection.table)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    if not where:
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
        rules = field_rules(collection, actor)
        items = [
            serialize_record(collection, row_to_values(collection, columns, row), rules=rules)
            for row in cursor.fetchall()
        ]
    return {
        "items": items,
        "page": page,
        "page_size": page_size,
        "total_items": total,
        "total_pages": (total + page_size - 1) // page_size,
    }


__all__ = [
    "OPERATORS",
    "SYSTEM_FIELDS",
    "SYSTEM_FIELD_TYPES",
    "Field",
    "build_filters",
    "build_ordering",
    "list_records",
    "operators_for",
    "select_records",
    "single_values",
]
