"""CSV in and out of a collection: streamed export with the listing's filters, all-or-nothing import.

Reading accepts UTF-8 with or without a byte-order mark, ``;`` or ``,``
between cells (whichever the header line uses more), and quoted cells with
line breaks. Line numbers are the file's own: the header is line 1, and a
record that spans lines is named by the line it starts on.

An import is all or nothing, but not one long transaction: a 50,000-row
import written in one transaction would hold SQLite's write lock for
seconds, and every other user's save would fail once it waited out the busy
timeout. So it goes in two phases:

1. Check everything first, without writing: every row through the one
   validation of :mod:`appliance.validation` (types, required, choices,
   relations), plus uniqueness within the file and against the table. Any
   bad row stops the import here, with every bad row named; nothing is
   written.
2. Write in batches of a few hundred rows, each a short transaction, and
   after each leave the lock free for as long as the batch held it, so
   other writers wait milliseconds, not seconds (bench/bench_csv_import.py:
   50,000 rows in about 9 s; a concurrent writer's longest wait 45 ms,
   against 3.6 s when the same import is one transaction). Should a batch still fail
   (a unique value taken by someone else in the meantime, a full disk), the
   rows this import already wrote are deleted again, with their history, and
   the error is raised: the collection ends as it was.

Between the first and the last batch other users can see the rows arrive;
that is the price of not blocking them. Each imported record gets its first
version in the history (as a create), and the import one audit event.

The import page runs an import in the background and shows its progress
from a small job file per import under the folder the caller names (shared
by every worker process of the server); see :func:`save_import_upload`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee

from appliance.audit import record_event
from appliance.collections.definitions import (
    CollectionDef,
    get_collection,
    get_visible_collection,
    quote,
    require_access,
    write_transaction,
)
from appliance.collections.fields import SYSTEM_FIELDS, TEXT_TYPES, from_column, now_text, to_column
from appliance.errors import ApplianceError, BadRequest, Busy, Conflict, NotFound, ValidationFailed
from appliance.records.query import select_records, single_values
from appliance.records.validation import clean_values, relation_errors
from appliance.records.write import computed_values
from appliance.storage.db import database

BATCH_SIZE = 200
# The check phase reports its progress (and so the job's heartbeat) every this many rows.
CHECK_PROGRESS_EVERY = 1000
PAUSE_LIMIT = 0.1
MAX_COLUMNS = 200
PREVIEW_ROWS = 5
# The default of the ``max_import_rows`` setting: most data rows one import may have.
MAX_IMPORT_ROWS = 100_000
# A refused import names at most this many bad rows (and counts the rest), so its error stays small.
MAX_BAD_ROWS = 1000
EXPORT_FETCH = 500
# Cells a spreadsheet would run as a formula; every exported text cell starting so gets a leading '
# (OWASP "CSV injection"), whatever its field's type.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
Progress = Callable[[str, int, int], None]


# --- reading ------------------------------------------------------------------------------------


@dataclass
class CsvTable:
    """A parsed CSV file: its header, its data rows as ``(line, cells)``, and the separator found."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    delimiter: str


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). Save it as 'CSV UTF-8' and try again."
        ) from None


def _delimiter(text: str) -> str:
    # The header names fields, so it holds no separators of its own: the one it uses most is the one.
    first = text.split("\n", 1)[0]
    return ";" if first.count(";") > first.count(",") else ","


def read_csv(data: bytes | str, *, max_rows: int | None = None) -> CsvTable:
    """Parse a CSV file; raises :class:`BadRequest` saying what is wrong (not UTF-8, empty, bad quoting, ...).

    Rows whose cells are all empty are skipped. The header's names are
    stripped of surrounding spaces; an empty or repeated name is refused.
    A file with more than ``max_rows`` data rows is refused, naming both
    numbers (the rows past the limit are counted, never kept).
    """
    text = _decode(data)
    if not text.strip():
        raise BadRequest("The file is empty.")
    if "\x00" in text:
        raise BadRequest("The file holds NUL characters; it is not a CSV text file.")
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    line = 1
    counted = 0
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if header is None:
                header = [c.strip() for c in cells]
                continue
            if not any(c.strip() for c in cells):
                continue
            counted += 1
            if max_rows is None or counted <= max_rows:
                rows.append((start, cells))
    except csv.Error as exc:
        raise BadRequest(f"Line {reader.line_num}: the file is not valid CSV ({exc}).") from None
    if max_rows is not None and counted > max_rows:
        raise BadRequest(
            f"The file has {counted} rows; at most {max_rows} can be imported at once. Split it into smaller files.",
            rows=counted,
            max_rows=max_rows,
        )
    if not header or not any(header):
        raise BadRequest("The first line must name the columns.")
    if len(header) > MAX_COLUMNS:
        raise BadRequest(f"The file has {len(header)} columns; at most {MAX_COLUMNS} are read.")
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if name and name.lower() in seen:
            raise BadRequest(f"Column {position}: the name {name!r} appears twice in the header.")
        seen.add(name.lower())
    return CsvTable(header, rows, delimiter)


# --- mapping columns to fields ------------------------------------------------------------------


def importable_fields(collection: CollectionDef) -> list[str]:
    """The fields a CSV column can fill: all but computed and file fields."""
    return [f.name for f in collection.fields if f.type not in ("computed", "file")]


def suggest_mapping(collection: CollectionDef, header: list[str]) -> dict[str, str]:
    """For each column, the field it fills by default: the field of that name or label (any case), else ``""``.

    Columns an export writes but an import cannot fill (``id``, times,
    computed and file fields) map to ``""`` (skipped).
    """
    by_key: dict[str, str] = {}
    for spec in collection.fields:
        if spec.type in ("computed", "file"):
            continue
        by_key.setdefault(spec.name.lower(), spec.name)
        if spec.label:
            by_key.setdefault(spec.label.strip().lower(), spec.name)
    return {column: by_key.get(column.lower(), "") for column in header}


def _ignorable(collection: CollectionDef, column: str) -> bool:
    """Columns an export of this collection writes that an import leaves alone."""
    spec = collection.field(column)
    return column in SYSTEM_FIELDS or (spec is not None and spec.type in ("computed", "file")) or column == ""


def check_mapping(collection: CollectionDef, header: list[str], mapping: Mapping[str, str] | None) -> dict[int, str]:
    """Which field each column position fills, from ``mapping`` (column name to field name, ``""`` skips).

    Without a mapping the suggested one is used, and a column that matches no
    field (and is not one an export writes, like ``id``) is refused rather
    than dropped unseen. Raises :class:`ValidationFailed` (key ``mapping``)
    for an unknown or read-only field, a field filled twice, or no column used.
    """
    errors: dict[str, str] = {}
    chosen = dict(mapping) if mapping is not None else suggest_mapping(collection, header)
    if mapping is None:
        unknown = [c for c in header if not chosen.get(c) and not _ignorable(collection, c)]
        if unknown:
            names = ", ".join(repr(c) for c in unknown[:10])
            errors["mapping"] = f"These columns match no field: {names}. Rename them after the fields, or remove them."
    writable = set(importable_fields(collection))
    positions: dict[int, str] = {}
    used: dict[str, str] = {}
    for position, column in enumerate(header):
        target = (chosen.get(column) or "").strip()
        if not target:
            continue
        if target not in writable:
            errors["mapping"] = f"Column {column!r}: there is no field {target!r} that an import can fill."
            continue
        if target in used:
            errors["mapping"] = f"Columns {used[target]!r} and {column!r} both fill the field {target!r}."
            continue
        used[target] = column
        positions[position] = target
    if not positions and "mapping" not in errors:
        errors["mapping"] = "No column fills a field; choose at least one."
    if errors:
        raise ValidationFailed(errors, message="The columns do not fit the collection")
    return positions


def preview_csv(
    collection: CollectionDef, data: bytes | str, rows: int = PREVIEW_ROWS, *, max_rows: int | None = None
) -> dict[str, Any]:
    """What the import page shows before importing: header, first rows, row count, suggested mapping.
    Raises as :func:`read_csv` (a file over ``max_rows`` included)."""
    table = read_csv(data, max_rows=max_rows)
    return {
        "header": table.header,
        "rows": [{"line": line, "cells": cells} for line, cells in table.rows[:rows]],
        "total_rows": len(table.rows),
        "delimiter": table.delimiter,
        "mapping": suggest_mapping(collection, table.header),
    }


# --- checking every row -------------------------------------------------------------------------


def _unescape(kind: str, cell: str) -> str:
    # Undo the export's guard against spreadsheet formulas, so an export imports back as it was.
    if kind in TEXT_TYPES and len(cell) > 1 and cell[0] == "'" and cell[1] in _FORMULA_START:
        return cell[1:]
    return cell


def _unique_errors(collection: CollectionDef, cleaned_rows: list[tuple[int, dict[str, Any]]]) -> dict[int, dict]:
    """Unique values repeated within the file (later lines are named) or already in the table."""
    errors: dict[int, dict[str, str]] = {}
    for spec in collection.fields:
        if not spec.unique:
            continue
        first_line: dict[Any, int] = {}
        for line, values in cleaned_rows:
            value = values.get(spec.name)
            if value is None:
                continue
            key = to_column(spec, value)
            if key in first_line:
                errors.setdefault(line, {})[spec.name] = f"Line {first_line[key]} has this value too."
            else:
                first_line[key] = line
        keys = list(first_line)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            taken = database.execute_sql(
                f"SELECT {quote(spec.name)} FROM {quote(collection.table)} WHERE {quote(spec.name)} IN ({marks})",
                chunk,
            ).fetchall()
            for (value,) in taken:
                errors.setdefault(first_line[value], {})[spec.name] = "Another record already has this value."
    return errors


def check_rows(
    collection: CollectionDef,
    table: CsvTable,
    positions: Mapping[int, str],
    actor: Any,
    *,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Every row's values in stored form, computed fields included, in file order; raises
    :class:`ValidationFailed` naming the bad rows.

    The error carries ``rows``: ``[{"line": 7, "fields": {"quantity": "Enter a whole number."}}]``,
    in line order; a computed field whose formula hits a size bound for a row's
    values is that row's error, named by the field. Nothing is written. Every
    row is checked, but at most :data:`MAX_BAD_ROWS` bad rows are named (the
    first ones found); the others are counted in ``more_bad_rows`` and the
    message ("... and N more bad rows"), so the error stays small however bad
    the file.
    ``progress("checking", done, total)`` is called every
    :data:`CHECK_PROGRESS_EVERY` rows.
    """
    width = len(table.header)
    total = len(table.rows)
    cleaned_rows: list[tuple[int, dict[str, Any]]] = []
    bad: dict[int, dict[str, str]] = {}
    # Bad lines past the first MAX_BAD_ROWS: counted, their errors not kept.
    more: set[int] = set()

    def mark_bad(line: int, errors: dict[str, str]) -> None:
        if line in bad:
            bad[line].update(errors)
        elif line not in more:
            if len(bad) < MAX_BAD_ROWS:
                bad[line] = errors
            else:
                more.add(line)

    for done, (line, cells) in enumerate(table.rows):
        if progress and done and done % CHECK_PROGRESS_EVERY == 0:
            progress("checking", done, total)
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            mark_bad(line, {"_row": f"This line has {len(cells)} cells; the header names {width} columns."})
            continue
        values = {}
        for position, name in positions.items():
            spec = collection.field(name)
            cell = cells[position] if position < len(cells) else ""
            # An empty cell gives no value: the field takes its default (and 'required' still applies).
            if cell != "":
                values[name] = _unescape(spec.type if spec else "", cell)
        cleaned, errors = clean_values(collection, values, form=True)
        errors.update({k: v for k, v in relation_errors(collection, cleaned, actor).items() if k not in errors})
        if not errors:
            computed, formula_errors = computed_values(collection, cleaned)
            errors.update(formula_errors)
            cleaned.update(computed)
        if errors:
            mark_bad(line, errors)
        else:
            cleaned_rows.append((line, cleaned))
    for line, errors in sorted(_unique_errors(collection, cleaned_rows).items()):
        mark_bad(line, errors)
    if bad:
        count = len(bad) + len(more)
        tail = f" (the first {len(bad)} are listed, and {len(more)} more bad rows)" if more else ""
        raise ValidationFailed(
            {},
            message=f"{count} row{'' if count == 1 else 's'} of the file {'is' if count == 1 else 'are'} invalid"
            f"{tail}; nothing was imported",
            rows=[{"line": line, "fields": bad[line]} for line in sorted(bad)],
            more_bad_rows=len(more),
        )
    return [values for _line, values in cleaned_rows]


# --- writing ------------------------------------------------------------------------------------


_VERSION_SQL = (
    "INSERT INTO record_version (collection, record_id, version, action, actor_id, actor, at, data, changes) "
    "VALUES (?, ?, 1, 'create', ?, ?, ?, ?, ?)"
)


def _write_batch(collection: CollectionDef, batch: list[dict[str, Any]], actor: Any, first_id: int) -> None:
    """Insert ``batch`` (checked rows, computed values included) with the ids ``first_id``, ``first_id + 1``, ..."""
    actor_id = getattr(actor, "id", None)
    actor_email = str(getattr(actor, "email", "") or "")[:320]
    names = [n for n in (f.name for f in collection.fields) if n]
    columns = ["id", "created_at", "updated_at", "created_by", "updated_by", *names]
    sql = (
        f"INSERT INTO {quote(collection.table)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    versions = []
    # As the history's DateTimeField stores it (peewee writes str(datetime)).
    at = str(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    with write_transaction():
        for record_id, cleaned in enumerate(batch, start=first_id):
            values = {f.name: cleaned.get(f.name) for f in collection.fields}
            now = now_text()
            params = [
                record_id,
                now,
                now,
                actor_id,
                actor_id,
                *(to_column(collection.field(n), values.get(n)) for n in names),
            ]
            database.execute_sql(sql, params)
            stored = {n: from_column(collection.field(n), to_column(collection.field(n), values.get(n))) for n in names}
            data = {
                "id": record_id,
                "created_at": now,
                "updated_at": now,
                "created_by": actor_id,
                "updated_by": actor_id,
                **stored,
            }
            changes = {n: [None, v] for n, v in stored.items() if v is not None}
            versions.append(
                (
                    collection.name,
                    record_id,
                    actor_id,
                    actor_email,
                    at,
                    json.dumps(data, ensure_ascii=False, default=str),
                    json.dumps(changes, ensure_ascii=False, default=str),
                )
            )
        # executemany: one statement, however many rows (insert_many would bind 9 variables a row).
        database.cursor().executemany(_VERSION_SQL, versions)
        database.execute_sql(
            "UPDATE collection SET row_count = row_count + ? WHERE name = ?", (len(batch), collection.name)
        )


def _reserve_ids(collection: CollectionDef, count: int) -> tuple[int, int]:
    """Take ``count`` ids for an import: ``(first, last)``, committed before any row is written.

    The table is AUTOINCREMENT, so SQLite hands out ids above ``sqlite_sequence``
    only; moving the sequence past the range makes the range the import's alone
    (no other insert will get one of its ids, and a restored record keeps its
    old, lower id). That is what lets a crashed import be undone by its range:
    every row with an id in it is the import's, whatever else happened meanwhile.
    """
    with write_transaction():
        row = database.execute_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (collection.table,)).fetchone()
        top = database.execute_sql(f"SELECT COALESCE(MAX(id), 0) FROM {quote(collection.table)}").fetchone()[0]
        first = max(row[0] if row else 0, top) + 1
        last = first + count - 1
        if row:
            database.execute_sql("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (last, collection.table))
        else:
            database.execute_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (collection.table, last))
    return first, last


UNDO_CHUNK = 1000


def undo_import_range(collection_name: str, first: int, last: int, chunk: int = UNDO_CHUNK) -> int:
    """Delete the records with ids ``first``..``last`` of a collection (an import's range) and their history.

    In short transactions, each retried a few times while the database is
    busy; returns how many records were deleted. Safe to repeat.
    """
    gone_total = 0
    try:
        table = quote(get_collection(collection_name).table)
    except NotFound:  # the collection was deleted meanwhile, with its rows
        table = None
    for start in range(first, last + 1, chunk):
        end = min(start + chunk - 1, last)
        for attempt in range(5):
            try:
                with write_transaction():
                    gone = 0
                    if table is not None:
                        gone = database.execute_sql(
                            f"DELETE FROM {table} WHERE id BETWEEN ? AND ?", (start, end)
                        ).rowcount
                        database.execute_sql(
                            "UPDATE collection SET row_count = MAX(row_count - ?, 0) WHERE name = ?",
                            (gone, collection_name),
                        )
                    database.execute_sql(
                        "DELETE FROM record_version WHERE collection = ? AND record_id BETWEEN ? AND ?",
                        (collection_name, start, end),
                    )
                gone_total += gone
                break
            except peewee.OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
    return gone_total


def _rows_left(collection_name: str, first: int, last: int) -> int:
    try:
        table = quote(get_collection(collection_name).table)
    except NotFound:
        return 0
    return database.execute_sql(f"SELECT COUNT(*) FROM {table} WHERE id BETWEEN ? AND ?", (first, last)).fetchone()[0]


# Set when the process is stopping (see :func:`stop_running_imports`): imports stop between batches and undo.
_STOPPING = threading.Event()
_ACTIVE = threading.Condition()
_active_count = 0

INTERRUPTED = "The import was interrupted (the server stopped); nothing was kept."


def import_csv(
    collection_name: str,
    data: bytes | str,
    actor: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    on_reserved: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_rows: int = MAX_IMPORT_ROWS,
) -> int:
    """Create one record per data row of a CSV file, all or none; returns how many were created.

    ``mapping`` maps column names to field names (``""`` skips a column);
    without it columns fill the field of their name or label. Needs create
    permission. Raises :class:`BadRequest` (unreadable file, or more than
    ``max_rows`` data rows: the ``max_import_rows`` setting),
    :class:`ValidationFailed` (``mapping`` problems in ``fields``, bad rows in
    ``rows``), :class:`Conflict` (a unique value taken while the import was
    writing), :class:`Busy` (stopped: the process is stopping or
    ``should_stop()`` said so between two batches; what was written is
    undone), :class:`NotFound`, :class:`PermissionDenied`. ``progress`` is
    called as ``progress(phase, done, total)`` with phase ``"checking"`` or
    ``"writing"``.

    Before the first row is written the import takes its id range (see
    :func:`_reserve_ids`) and calls ``on_reserved(collection, first, last)``,
    which must record it durably: should the process die while writing, the
    rows with ids in that range are exactly the ones to delete
    (:func:`undo_import_range`).
    """
    collection = get_visible_collection(collection_name, actor)
    require_access(collection, actor, "create")
    table = read_csv(data, max_rows=max_rows)
    positions = check_mapping(collection, table.header, mapping)
    total = len(table.rows)
    if progress:
        progress("checking", 0, total)
    rows = check_rows(collection, table, positions, actor, progress=progress)
    if not rows:
        raise BadRequest("The file has a header but no rows to import.")
    first, last = _reserve_ids(collection, len(rows))
    if on_reserved:
        on_reserved(collection.name, first, last)
    try:
        for start in range(0, len(rows), batch_size):
            if _STOPPING.is_set() or (should_stop is not None and should_stop()):
                raise Busy(INTERRUPTED)
            if progress:
                progress("writing", start, total)
            began = time.monotonic()
            _write_batch(collection, rows[start : start + batch_size], actor, first + start)
            if start + batch_size < len(rows):
                # Leave the lock free as long as the batch held it. A writer waiting in SQLite's busy
                # handler polls at growing intervals (up to 100 ms); an import that took the lock back
                # at once would starve it for seconds (bench/bench_csv_import.py measured 2.6 s).
                time.sleep(min(time.monotonic() - began, PAUSE_LIMIT))
        with write_transaction():
            record_event(
                "records.imported",
                actor=actor,
                target=f"collection:{collection.name}",
                details={"collection": collection.name, "created": len(rows), "ids": [first, last]},
            )
    except BaseException as exc:
        undo_import_range(collection.name, first, last)
        if isinstance(exc, peewee.IntegrityError):
            raise Conflict(
                "A unique value of the file was taken by another record while importing; nothing was imported."
            ) from None
        raise
    if progress:
        progress("writing", total, total)
    return len(rows)


def stop_running_imports(timeout: float = 8.0) -> None:
    """Ask every import of this process to stop (they undo what they wrote) and wait up to ``timeout`` s.

    For a process that is stopping (the web worker calls it at exit): an
    import running in a background thread would otherwise die with the process
    and leave its rows behind until the next start.
    """
    _STOPPING.set()
    deadline = time.monotonic() + timeout
    with _ACTIVE:
        while _active_count and time.monotonic() < deadline:
            _ACTIVE.wait(max(0.0, deadline - time.monotonic()))


class _Active:
    def __enter__(self) -> None:
        global _active_count
        with _ACTIVE:
            _active_count += 1

    def __exit__(self, *_exc: object) -> None:
        global _active_count
        with _ACTIVE:
            _active_count -= 1
            _ACTIVE.notify_all()


# --- export -------------------------------------------------------------------------------------


def _cell(spec: Any, value: Any) -> str:
    """One exported cell. Every text cell, whatever its field's type (text, select, email, url, a
    computed text, a file's name, ...), that starts like a spreadsheet formula gets a leading ``'``;
    numbers are written as they are (``-5`` stays a number). JSON is never guarded: its text starts
    with ``{``, ``[``, ``"``, a letter or a digit, or ``-`` only for a number. Import undoes the
    guard for the types it fills (:data:`TEXT_TYPES`, see :func:`_unescape`)."""
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
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_csv(collection_name: str, actor: Any, params: Mapping[str, Any]) -> Iterator[str]:
    """The CSV text of every record ``actor`` may view that the listing ``params`` select, in pieces.

    Filters, ``search`` and ``ordering`` work as in the listing; ``page`` and
    ``page_size`` are ignored (every matching record is exported). The header
    names the system fields then every field. Checks happen before the first
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
    header = [*SYSTEM_FIELDS, *(f.name for f in collection.fields)]
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


# --- import jobs (the page's progress) ----------------------------------------------------------
#
# A job is a JSON file ``<id>.json`` under the jobs folder (every worker reads it), beside the
# uploaded ``<id>.csv``. While it runs, its ``updated_at`` is the heartbeat (written at least every
# CHECK_PROGRESS_EVERY checked rows and every batch) and ``pid`` the process running it. Before the
# first row is written, the import's id range goes to ``<id>.ids``, written and fsync'ed once: the
# journal. It is removed only once the job's outcome is on disk, so a job that died while writing
# (kill -9, power cut, a stop that outlived the grace) still names the rows to delete, however far
# it got, and a crash between a batch's commit and the next job write loses nothing: the range was
# known before the batch began. Such a job is undone and marked failed when read after its heartbeat
# went stale (:func:`get_import_job`) and when the server starts (:func:`recover_interrupted_imports`).

JOB_STATES = ("uploaded", "running", "done", "failed")
_JOB_ID_LENGTH = 22
JOB_MAX_AGE = dt.timedelta(days=1)
# A running job whose heartbeat is older than this, and whose process is gone, died.
STALE_SECONDS = 30.0
# ... and older than this it died, whatever holds its process id now.
DEAD_SECONDS = 600.0
INTERRUPTED_ERROR = {"code": "interrupted", "message": "The import was interrupted; nothing was kept."}


def _job_paths(jobs_dir: Path, job_id: str) -> tuple[Path, Path]:
    if (
        not isinstance(job_id, str)
        or len(job_id) != _JOB_ID_LENGTH
        or not (job_id.isascii() and job_id.replace("-", "").replace("_", "").isalnum())
    ):
        raise NotFound("No such import.")
    return jobs_dir / f"{job_id}.json", jobs_dir / f"{job_id}.csv"


def _journal_path(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / f"{job_id}.ids"


def _durable_write(path: Path, text: str) -> None:
    """Replace ``path`` by ``text``, on disk (file and folder fsync'ed) when this returns."""
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    if os.name == "posix":
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _write_job(jobs_dir: Path, job: dict[str, Any], *, durable: bool = False) -> None:
    meta, _ = _job_paths(jobs_dir, job["id"])
    if durable:
        _durable_write(meta, json.dumps(job))
        return
    tmp = meta.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(job), encoding="utf-8")
    os.replace(tmp, meta)


def _read_job(jobs_dir: Path, job_id: str) -> dict[str, Any] | None:
    meta, _ = _job_paths(jobs_dir, job_id)
    try:
        job = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return job if isinstance(job, dict) else None


def _prune_jobs(jobs_dir: Path) -> None:
    limit = time.time() - JOB_MAX_AGE.total_seconds()
    for path in jobs_dir.glob("*.*"):
        if path.suffix == ".ids":
            continue  # a journal goes only once its rows are dealt with
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass


def _process_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.name != "posix":  # no cheap, harmless check there: rely on DEAD_SECONDS
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_dead(job: Mapping[str, Any]) -> bool:
    """Whether a ``running`` job's runner is gone: stale heartbeat and no process, or a very stale heartbeat."""
    if job.get("state") != "running":
        return False
    age = time.time() - float(job.get("updated_at") or 0)
    return age > DEAD_SECONDS or (age > STALE_SECONDS and not _process_alive(job.get("pid")))


def _recover_job(jobs_dir: Path, job_id: str) -> str | None:
    """Undo a dead job's rows (from its journal) and mark it failed; what was done, or ``None``.

    The journal is claimed by renaming it, so two workers reading the same dead
    job undo it once. Call only for a job known to be dead.
    """
    journal = _journal_path(jobs_dir, job_id)
    claimed = journal.with_suffix(f".ids.undoing-{os.getpid()}-{threading.get_ident()}")
    job = _read_job(jobs_dir, job_id)
    undone = 0
    try:
        os.rename(journal, claimed)
    except FileNotFoundError:
        if list(jobs_dir.glob(f"{job_id}.ids.undoing-*")):
            return None  # another worker is undoing it
    except OSError:
        return None
    if claimed.exists():
        if job is not None and job.get("state") == "done":
            claimed.unlink(missing_ok=True)
            return None
        try:
            entry = json.loads(claimed.read_text(encoding="utf-8"))
            undone = undo_import_range(str(entry["collection"]), int(entry["first"]), int(entry["last"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        else:
            with write_transaction():
                record_event(
                    "records.import_interrupted",
                    actor=None,
                    target=f"collection:{entry['collection']}",
                    details={
                        "collection": entry["collection"],
                        "ids": [entry["first"], entry["last"]],
                        "undone": undone,
                    },
                )
    if job is not None and job.get("state") == "running":
        job.update(state="failed", error=dict(INTERRUPTED_ERROR), created=0, updated_at=time.time())
        _write_job(jobs_dir, job, durable=True)
    claimed.unlink(missing_ok=True)
    return f"import {job_id}: interrupted; {undone} record(s) it had written were deleted"


def recover_interrupted_imports(paths: Any) -> list[str]:
    """At server start (no worker runs yet): undo and fail every import that was still running.

    ``paths`` is the home's :class:`~appliance.home.Paths`; needs the database
    open. Returns one line per recovered import, for the log.
    """
    jobs_dir = Path(paths.run_dir) / "imports"
    if not jobs_dir.is_dir():
        return []
    ids: set[str] = set()
    for path in jobs_dir.iterdir():
        name = path.name
        if name.endswith(".ids") or ".ids.undoing-" in name:
            if ".ids.undoing-" in name:
                # A recovery that died itself: take its claim back.
                with contextlib.suppress(OSError):
                    os.replace(path, jobs_dir / (name.split(".ids.undoing-")[0] + ".ids"))
            ids.add(name.split(".", 1)[0])
        elif name.endswith(".json"):
            job = _read_job(jobs_dir, name[: -len(".json")]) if len(name) == _JOB_ID_LENGTH + 5 else None
            if job is not None and job.get("state") == "running":
                ids.add(job["id"])
    out = []
    with database.connection_context():
        for job_id in sorted(ids):
            try:
                _job_paths(jobs_dir, job_id)
            except NotFound:
                continue
            line = _recover_job(jobs_dir, job_id)
            if line:
                out.append(line)
    return out


def save_import_upload(
    jobs_dir: Path, collection_name: str, filename: str, data: bytes, actor: Any, *, max_rows: int = MAX_IMPORT_ROWS
) -> dict:
    """Keep an uploaded CSV file for the import page: check it parses, and return its job with a preview.

    The job (``id``, ``collection``, ``filename``, ``state`` "uploaded",
    ``preview``...) lives beside the file under ``jobs_dir``, readable by
    every worker process; jobs older than a day are removed. Raises like
    :func:`read_csv` (and :class:`BadRequest` for a file with a header but no
    rows, or more than ``max_rows``), and :class:`NotFound` / :class:`PermissionDenied` without create
    permission.
    """
    collection = get_visible_collection(collection_name, actor)
    require_access(collection, actor, "create")
    preview = preview_csv(collection, data, max_rows=max_rows)
    if not preview["total_rows"]:
        raise BadRequest("The file has a header but no rows to import.")
    jobs_dir.mkdir(parents=True, exist_ok=True)
    _prune_jobs(jobs_dir)
    job = {
        "id": secrets.token_urlsafe(16)[:_JOB_ID_LENGTH],
        "collection": collection.name,
        "filename": (filename or "file.csv")[:200],
        "actor_id": getattr(actor, "id", None),
        "state": "uploaded",
        "phase": "",
        "done": 0,
        "total": preview["total_rows"],
        "created": 0,
        "error": None,
        "preview": preview,
        "mapping": preview["mapping"],
        "updated_at": time.time(),
    }
    _, csv_path = _job_paths(jobs_dir, job["id"])
    csv_path.write_bytes(data)
    _write_job(jobs_dir, job)
    return job


def get_import_job(jobs_dir: Path, job_id: str, actor: Any) -> dict:
    """The import job ``job_id`` of ``actor``; :class:`NotFound` for another person's or an unknown one.

    A ``running`` job whose runner died (see :data:`STALE_SECONDS`) is undone
    first and comes back ``failed`` with the error code ``interrupted``.
    """
    _job_paths(jobs_dir, job_id)
    job = _read_job(jobs_dir, job_id)
    if job is None or job.get("actor_id") != getattr(actor, "id", None):
        raise NotFound("No such import (imports are kept for a day).")
    if _is_dead(job):
        _recover_job(jobs_dir, job_id)
        job = _read_job(jobs_dir, job_id) or job
    return job


def start_import_job(jobs_dir: Path, job_id: str, mapping: Mapping[str, str], actor: Any) -> dict:
    """Mark an uploaded job as running with ``mapping`` (checked now); :class:`Conflict` if it already ran.

    Call :func:`run_import_job` next (the page does, in a background thread).
    """
    job = get_import_job(jobs_dir, job_id, actor)
    if job["state"] not in ("uploaded", "failed") or job.get("created"):
        raise Conflict("This import has already run; upload the file again to import it again.")
    if _journal_path(jobs_dir, job_id).exists() or list(jobs_dir.glob(f"{job_id}.ids.undoing-*")):
        raise Conflict("The last run of this import is still being undone; try again in a moment.")
    collection = get_visible_collection(job["collection"], actor)
    require_access(collection, actor, "create")
    job["mapping"] = {c: (mapping.get(c) or "") for c in job["preview"]["header"]}
    check_mapping(collection, job["preview"]["header"], job["mapping"])
    job.update(state="running", phase="checking", done=0, error=None, pid=os.getpid(), updated_at=time.time())
    _write_job(jobs_dir, job)
    return job


def _error_of(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ApplianceError):
        return exc.to_dict()["error"]
    return {"code": "internal_error", "message": f"The import stopped: {type(exc).__name__}; nothing was kept."}


def _run_journaled(
    jobs_dir: Path,
    job: dict[str, Any],
    data: bytes,
    actor: Any,
    *,
    mapping: Mapping[str, str] | None,
    batch_size: int,
    max_rows: int = MAX_IMPORT_ROWS,
) -> int:
    """Run :func:`import_csv` with ``job`` as its progress and its journal; the job file ends done or failed."""
    job_id = job["id"]
    journal = _journal_path(jobs_dir, job_id)
    job.update(state="running", pid=os.getpid(), updated_at=time.time())
    _write_job(jobs_dir, job)

    def report(phase: str, done: int, total: int) -> None:
        job.update(phase=phase, done=done, total=total, updated_at=time.time())
        _write_job(jobs_dir, job)

    def reserved(collection: str, first: int, last: int) -> None:
        _durable_write(journal, json.dumps({"collection": collection, "first": first, "last": last}))
        job.update(ids=[first, last], updated_at=time.time())
        _write_job(jobs_dir, job)

    def should_stop() -> bool:
        # Someone found this job dead (a very long stall) and undid it: stop rather than write on.
        current = _read_job(jobs_dir, job_id)
        return current is None or current.get("state") != "running"

    with _Active():
        try:
            created = import_csv(
                job["collection"],
                data,
                actor,
                mapping=mapping,
                batch_size=batch_size,
                progress=report,
                on_reserved=reserved,
                should_stop=should_stop,
                max_rows=max_rows,
            )
        except BaseException as exc:
            error = _error_of(exc)
            if isinstance(exc, Busy) and exc.message == INTERRUPTED:
                error = dict(INTERRUPTED_ERROR)
            job.update(state="failed", error=error, updated_at=time.time())
            _write_job(jobs_dir, job, durable=True)
            ids = job.get("ids")
            # The import undid its rows; should that have failed, the journal stays for the next recovery.
            if not ids or not _rows_left(job["collection"], ids[0], ids[1]):
                journal.unlink(missing_ok=True)
            raise
        job.update(state="done", created=created, done=job["total"], updated_at=time.time())
        _write_job(jobs_dir, job, durable=True)
        journal.unlink(missing_ok=True)
    return created


def run_import_job(
    jobs_dir: Path, job_id: str, actor: Any, *, batch_size: int = BATCH_SIZE, max_rows: int = MAX_IMPORT_ROWS
) -> dict:
    """Run a started import job, writing its progress to the job after each batch; returns the finished job.

    The job ends ``done`` (with ``created``) or ``failed`` (with ``error``:
    the error shape of API.md, bad rows included; code ``interrupted`` when
    the process was stopping). Never raises for the import's own errors: they
    are the job's outcome.
    """
    job = get_import_job(jobs_dir, job_id, actor)
    _, csv_path = _job_paths(jobs_dir, job_id)
    try:
        _run_journaled(
            jobs_dir,
            job,
            csv_path.read_bytes(),
            actor,
            mapping=job["mapping"],
            batch_size=batch_size,
            max_rows=max_rows,
        )
    except (BadRequest, ValidationFailed, Conflict, NotFound):
        pass
    else:
        csv_path.unlink(missing_ok=True)
    return job


def import_csv_journaled(
    jobs_dir: Path,
    collection_name: str,
    data: bytes,
    actor: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    batch_size: int = BATCH_SIZE,
    max_rows: int = MAX_IMPORT_ROWS,
) -> int:
    """:func:`import_csv` for a caller that waits for it (the API), with a job file as its journal,
    so that it too is undone should the process die while it writes. Raises as :func:`import_csv`.
    """
    jobs_dir.mkdir(parents=True, exist_ok=True)
    job = {
        "id": secrets.token_urlsafe(16)[:_JOB_ID_LENGTH],
        "collection": collection_name,
        "filename": "",
        "source": "api",
        "actor_id": getattr(actor, "id", None),
        "state": "running",
        "phase": "checking",
        "done": 0,
        "total": 0,
        "created": 0,
        "error": None,
        "updated_at": time.time(),
    }
    return _run_journaled(jobs_dir, job, data, actor, mapping=mapping, batch_size=batch_size, max_rows=max_rows)


__all__ = [
    "CsvTable",
    "check_mapping",
    "check_rows",
    "export_csv",
    "get_import_job",
    "import_csv",
    "import_csv_journaled",
    "importable_fields",
    "preview_csv",
    "read_csv",
    "recover_interrupted_imports",
    "run_import_job",
    "save_import_upload",
    "start_import_job",
    "stop_running_imports",
    "suggest_mapping",
    "undo_import_range",
]
