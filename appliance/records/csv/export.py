"""Exporting a collection as CSV: every record the listing's filters select, streamed a few hundred rows
at a time, text cells guarded against spreadsheet formulas; the fields hidden from the caller are not
exported (nor filtered, ordered or searched by)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from appliance.actors import ActorLike
from appliance.collections.access import field_rules, get_visible_collection, require_access
from appliance.collections.definitions import CollectionDef
from appliance.collections.fields import SYSTEM_FIELDS, Field, from_column
from appliance.collections.schema import quote
from appliance.records.csv.cells import guard_formula
from appliance.records.query import select_records, single_values
from appliance.storage.db import database

EXPORT_FETCH = 500


def _cell(spec: Field | None, value: Any) -> str:
    """One exported cell. Every text cell, whatever its field's type (text, select, email, url, a
    computed text, a file's name, ...), that starts like a spreadsheet formula gets a leading ``'``;
    numbers are written as they are (``-5`` stays a number). JSON is never guarded: its text starts
    with ``{``, ``[``, ``"``, a letter or a digit, or ``-`` only for a number. Import undoes the
    guard for the types it fills (see :func:`~appliance.records.csv.cells.unguard_formula`)."""
    if value is None:
        return ""
    if spec is not None and spec.type == "boolean":
        return "true" if value else "false"
    if spec is not None and spec.type == "json":
        return json.dumps(value, ensure_ascii=False)
    if spec is not None and spec.type == "file":
        value = str(value.get("name", "")) if isinstance(value, dict) else ""
    if not isinstance(value, str):
        return str(value)
    return guard_formula(value)


def export_csv(collection_name: str, actor: ActorLike, params: Mapping[str, Any]) -> Iterator[str]:
    """The CSV text of every record ``actor`` may view that the listing ``params`` select, in pieces.

    Filters, ``search`` and ``ordering`` work as in the listing; ``page`` and
    ``page_size`` are ignored (every matching record is exported). The header
    names the system fields then every field ``actor`` may see. Checks happen before the first
    piece is returned: raises :class:`NotFound`, :class:`PermissionDenied`,
    :class:`BadRequest` (bad filter) at the call. Rows are read from the
    database a few hundred at a time, never all at once.
    """
    collection = get_visible_collection(collection_name, actor)
    scope = require_access(collection, actor, "view")
    params = single_values(params)  # a repeated parameter is refused, as in the listing
    source, where, args, order = select_records(collection, scope, actor, params)
    table = quote(collection.table)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    sql = f"SELECT {table}.* FROM {source}{clause} ORDER BY {', '.join(order)}"
    header = [*SYSTEM_FIELDS, *(f.name for f in field_rules(collection, actor).visible(collection.fields))]
    return _export_rows(collection, sql, args, header)


def _export_rows(collection: CollectionDef, sql: str, args: list[Any], header: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield buffer.getvalue()
    cursor = database.execute_sql(sql, args)
    index = {d[0]: i for i, d in enumerate(cursor.description)}
    plan = [(index[name], collection.field(name)) for name in header]
    try:
        while True:
            chunk = cursor.fetchmany(EXPORT_FETCH)
            if not chunk:
                break
            buffer.seek(0)
            buffer.truncate()
            for row in chunk:
                writer.writerow(
                    _cell(spec, from_column(spec, row[i]) if spec is not None else row[i]) for i, spec in plan
                )
            yield buffer.getvalue()
    finally:
        cursor.close()
