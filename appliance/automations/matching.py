"""Which records a rule's filter matches: the Listing's own filter language, evaluated by the Listing's code.

A filter is a mapping of ``FIELD`` or ``FIELD__OP`` to a value, exactly the
query parameters of ``GET /api/collections/{name}/records`` (``status=open``,
``due_on__lte=tomorrow``). :func:`appliance.records.query.build_filters`
validates it and turns it into SQL, and the rule asks the collection's table
whether the record with that id passes, so a rule and a list page never
disagree on what a filter means.

Relative dates: on a ``date`` or ``datetime`` field (``created_at`` and
``updated_at`` included) a value may be ``today``, ``tomorrow``,
``yesterday`` or ``today+N`` / ``today-N`` (N days, up to 3650), also inside
``__in`` lists. They are replaced by that day's ISO date, in the server
machine's local time zone, at the moment the rule runs; a bare date on a
datetime field means the whole (UTC) day, as in the Listing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from appliance.collections.definitions import CollectionDef
from appliance.collections.fields import SYSTEM_FIELDS, to_column
from appliance.collections.schema import quote
from appliance.errors import BadRequest, ValidationFailed
from appliance.records.query import RESERVED, SYSTEM_FIELD_TYPES, build_filters
from appliance.records.validation import clean_values
from appliance.storage.db import database

_RELATIVE = re.compile(r"^\s*(today|tomorrow|yesterday)\s*(?:([+-])\s*(\d{1,4}))?\s*$", re.IGNORECASE)
_BASE = {"today": 0, "tomorrow": 1, "yesterday": -1}
MAX_FILTER_CONDITIONS = 20
MAX_MATCHING = 500  # records one time rule handles in one day


def local_today(now: dt.datetime) -> dt.date:
    """The date of ``now`` (aware, or naive UTC) in the server machine's local time zone."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return now.astimezone().date()


def relative_date(text: str, today: dt.date) -> str | None:
    """The ISO date ``text`` (``today``, ``tomorrow+2``...) stands for, or ``None`` when it is not one."""
    match = _RELATIVE.match(text)
    if match is None:
        return None
    days = _BASE[match.group(1).lower()]
    if match.group(3):
        offset = int(match.group(3))
        if offset > 3650:
            return None
        days += offset if match.group(2) == "+" else -offset
    return (today + dt.timedelta(days=days)).isoformat()


def _kind(collection: CollectionDef, name: str) -> str | None:
    if name in SYSTEM_FIELD_TYPES:
        return SYSTEM_FIELD_TYPES[name]
    spec = collection.field(name)
    return spec.type if spec else None


def resolve_filter(collection: CollectionDef, conditions: Mapping[str, Any], today: dt.date) -> dict[str, str]:
    """The filter with relative dates replaced by real ones (on date and datetime fields only)."""
    out: dict[str, str] = {}
    for parameter, value in conditions.items():
        text = "" if value is None else str(value)
        name, _, op = parameter.partition("__")
        if _kind(collection, name) in ("date", "datetime") and op != "isnull":
            parts = text.split(",") if op == "in" else [text]
            text = ",".join(relative_date(p, today) or p for p in parts)
        out[parameter] = text
    return out


def check_filter(collection: CollectionDef, conditions: Any) -> dict[str, str]:
    """The filter as stored (every value a text); :class:`ValidationFailed` on ``filter`` naming what is wrong:
    an unknown field or operator, a value the field cannot take, a listing parameter that is no filter."""
    if conditions is None:
        return {}
    if not isinstance(conditions, Mapping):
        raise ValidationFailed({"filter": "Give the filter as FIELD=value or FIELD__OP=value conditions."})
    if len(conditions) > MAX_FILTER_CONDITIONS:
        raise ValidationFailed({"filter": f"A filter has at most {MAX_FILTER_CONDITIONS} conditions."})
    stored: dict[str, str] = {}
    for parameter, value in conditions.items():
        if not isinstance(parameter, str) or parameter in RESERVED:
            raise ValidationFailed({"filter": f"'{parameter}' is not a filter; use FIELD=value or FIELD__OP=value."})
        if isinstance(value, (dict, list)):
            raise ValidationFailed({"filter": f"'{parameter}' takes one value (a list for __in: a,b,c)."})
        stored[parameter] = "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
    try:
        build_filters(collection, resolve_filter(collection, stored, dt.date.today()))
    except BadRequest as exc:
        raise ValidationFailed({"filter": exc.message}) from None
    return stored


def _where(collection: CollectionDef, conditions: Mapping[str, Any], today: dt.date) -> tuple[str, list[Any]]:
    where, args = build_filters(collection, resolve_filter(collection, conditions, today))
    return (" AND " + " AND ".join(where)) if where else "", args


def record_matches(collection: CollectionDef, record_id: int, conditions: Mapping[str, Any], today: dt.date) -> bool:
    """Whether the stored record ``record_id`` passes the filter (``False`` when it is gone)."""
    table = quote(collection.table)
    clause, args = _where(collection, conditions, today)
    row = database.execute_sql(f"SELECT 1 FROM {table} WHERE {table}.id = ?{clause}", [record_id, *args]).fetchone()
    return row is not None


def snapshot_matches(
    collection: CollectionDef, record: Mapping[str, Any], conditions: Mapping[str, Any], today: dt.date
) -> bool:
    """Whether a record that is no longer stored (a deleted one, as its event holds it) passes the filter.

    The record is put back in stored form as a one-row subquery named like the table, each column cast to
    the table's declared type, and the same SQL as the Listing's runs over it.
    """
    if not conditions:
        return True
    columns = [(row[1], row[2]) for row in database.execute_sql(f"PRAGMA table_info({quote(collection.table)})")]
    writable = {f.name: record.get(f.name) for f in collection.fields if not f.read_only and f.type != "file"}
    cleaned, _errors = clean_values(collection, writable, existing=dict(record))
    select: list[str] = []
    args: list[Any] = []
    for name, declared in columns:
        spec = collection.field(name)
        if name in cleaned and spec is not None:
            value = to_column(spec, cleaned[name])
        elif name in SYSTEM_FIELDS or spec is None:
            value = record.get(name)
        else:
            value = record.get(name)
            with contextlib.suppress(Exception):  # a value the column cannot take stays as the event holds it
                value = to_column(spec, value)
        kind = declared or "BLOB"
        select.append(f"CAST(? AS {kind}) AS {quote(name)}" if kind.upper() != "BLOB" else f"? AS {quote(name)}")
        args.append(value if not isinstance(value, (dict, list)) else str(value))
    clause, filter_args = _where(collection, conditions, today)
    sql = f"SELECT 1 FROM (SELECT {', '.join(select)}) AS {quote(collection.table)} WHERE 1{clause}"
    return database.execute_sql(sql, [*args, *filter_args]).fetchone() is not None


def matching_ids(collection: CollectionDef, conditions: Mapping[str, Any], today: dt.date) -> list[int]:
    """The ids of the stored records passing the filter, oldest first, at most :data:`MAX_MATCHING`."""
    table = quote(collection.table)
    clause, args = _where(collection, conditions, today)
    cursor = database.execute_sql(
        f"SELECT {table}.id FROM {table} WHERE 1{clause} ORDER BY {table}.id LIMIT ?", [*args, MAX_MATCHING]
    )
    return [int(row[0]) for row in cursor.fetchall()]
