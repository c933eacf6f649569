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

import csv
import datetime as dt
import io
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee

from appliance.audit import record_event
from appliance.collections import (
    CollectionDef,
    get_visible_collection,
    quote,
    require_access,
    write_transaction,
)
from appliance.db import database
from appliance.errors import BadRequest, Conflict, NotFound, ValidationFailed
from appliance.fields import SYSTEM_FIELDS, TEXT_TYPES, from_column, now_text, to_column
from appliance.formulas import evaluate_formula
from appliance.record_query import build_filters, build_ordering, search_expression
from appliance.validation import clean_values, relation_errors

BATCH_SIZE = 200
PAUSE_LIMIT = 0.1
MAX_COLUMNS = 200
PREVIEW_ROWS = 5
EXPORT_FETCH = 500
# Cells a spreadsheet would run as a formula; exported text starting so gets a leading ' (OWASP "CSV injection").
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


def read_csv(data: bytes | str) -> CsvTable:
    """Parse a CSV file; raises :class:`BadRequest` saying what is wrong (not UTF-8, empty, bad quoting, ...).

    Rows whose cells are all empty are skipped. The header's names are
    stripped of surrounding spaces; an empty or repeated name is refused.
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
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if header is None:
                header = [c.strip() for c in cells]
                continue
            if not any(c.strip() for c in cells):
                continue
            rows.append((start, cells))
    except csv.Error as exc:
        raise BadRequest(f"Line {reader.line_num}: the file is not valid CSV ({exc}).") from None
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


def preview_csv(collection: CollectionDef, data: bytes | str, rows: int = PREVIEW_ROWS) -> dict[str, Any]:
    """What the import page shows before importing: header, first rows, row count, suggested mapping."""
    table = read_csv(data)
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
    collection: CollectionDef, table: CsvTable, positions: Mapping[int, str], actor: Any
) -> list[dict[str, Any]]:
    """Every row's values in stored form, in file order; raises :class:`ValidationFailed` listing every bad row.

    The error carries ``rows``: ``[{"line": 7, "fields": {"quantity": "Enter a whole number."}}]``,
    in line order. Nothing is written.
    """
    width = len(table.header)
    cleaned_rows: list[tuple[int, dict[str, Any]]] = []
    bad: dict[int, dict[str, str]] = {}
    for line, cells in table.rows:
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            bad[line] = {"_row": f"This line has {len(cells)} cells; the header names {width} columns."}
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
        if errors:
            bad[line] = errors
        else:
            cleaned_rows.append((line, cleaned))
    for line, errors in _unique_errors(collection, cleaned_rows).items():
        bad.setdefault(line, {}).update(errors)
    if bad:
        count = len(bad)
        raise ValidationFailed(
            {},
            message=f"{count} row{'' if count == 1 else 's'} of the file {'is' if count == 1 else 'are'} invalid; "
            "nothing was imported",
            rows=[{"line": line, "fields": bad[line]} for line in sorted(bad)],
        )
    return [values for _line, values in cleaned_rows]


# --- writing ------------------------------------------------------------------------------------


def _computed(collection: CollectionDef, values: Mapping[str, Any]) -> dict[str, Any]:
    plain = {f.name: values.get(f.name) for f in collection.fields if f.type not in ("computed", "file")}
    return {f.name: evaluate_formula(f.formula or "", plain) for f in collection.computed_fields}


_VERSION_SQL = (
    "INSERT INTO record_version (collection, record_id, version, action, actor_id, actor, at, data, changes) "
    "VALUES (?, ?, 1, 'create', ?, ?, ?, ?, ?)"
)


def _write_batch(collection: CollectionDef, batch: list[dict[str, Any]], actor: Any, created: list[int]) -> None:
    actor_id = getattr(actor, "id", None)
    actor_email = str(getattr(actor, "email", "") or "")[:320]
    names = [n for n in (f.name for f in collection.fields) if n]
    columns = ["created_at", "updated_at", "created_by", "updated_by", *names]
    sql = (
        f"INSERT INTO {quote(collection.table)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    versions = []
    # As the history's DateTimeField stores it (peewee writes str(datetime)).
    at = str(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    with write_transaction():
        for cleaned in batch:
            values = {f.name: cleaned.get(f.name) for f in collection.fields if f.type != "computed"}
            values.update(_computed(collection, values))
            now = now_text()
            params = [now, now, actor_id, actor_id, *(to_column(collection.field(n), values.get(n)) for n in names)]
            record_id = database.execute_sql(sql, params).lastrowid
            created.append(record_id)
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


def _undo(collection: CollectionDef, created: list[int], batch_size: int) -> None:
    """Delete the records an import wrote (and their history), in short transactions; retried while busy."""
    for start in range(0, len(created), batch_size):
        chunk = created[start : start + batch_size]
        marks = ", ".join("?" for _ in chunk)
        for attempt in range(5):
            try:
                with write_transaction():
                    gone = database.execute_sql(
                        f"DELETE FROM {quote(collection.table)} WHERE id IN ({marks})", chunk
                    ).rowcount
                    database.execute_sql(
                        f"DELETE FROM record_version WHERE collection = ? AND record_id IN ({marks})",
                        [collection.name, *chunk],
                    )
                    database.execute_sql(
                        "UPDATE collection SET row_count = row_count - ? WHERE name = ?", (gone, collection.name)
                    )
                break
            except peewee.OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))


def import_csv(
    collection_name: str,
    data: bytes | str,
    actor: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> int:
    """Create one record per data row of a CSV file, all or none; returns how many were created.

    ``mapping`` maps column names to field names (``""`` skips a column);
    without it columns fill the field of their name or label. Needs create
    permission. Raises :class:`BadRequest` (unreadable file),
    :class:`ValidationFailed` (``mapping`` problems in ``fields``, bad rows in
    ``rows``), :class:`Conflict` (a unique value taken while the import was
    writing), :class:`NotFound`, :class:`PermissionDenied`. ``progress`` is
    called as ``progress(phase, done, total)`` with phase ``"checking"`` or
    ``"writing"``.
    """
    collection = get_visible_collection(collection_name, actor)
    require_access(collection, actor, "create")
    table = read_csv(data)
    positions = check_mapping(collection, table.header, mapping)
    total = len(table.rows)
    if progress:
        progress("checking", 0, total)
    rows = check_rows(collection, table, positions, actor)
    if not rows:
        raise BadRequest("The file has a header but no rows to import.")
    created: list[int] = []
    try:
        for start in range(0, len(rows), batch_size):
            if progress:
                progress("writing", start, total)
            began = time.monotonic()
            _write_batch(collection, rows[start : start + batch_size], actor, created)
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
                details={"collection": collection.name, "created": len(created), "ids": [created[0], created[-1]]},
            )
    except BaseException as exc:
        _undo(collection, created, batch_size)
        if isinstance(exc, peewee.IntegrityError):
            raise Conflict(
                "A unique value of the file was taken by another record while importing; nothing was imported."
            ) from None
        raise
    if progress:
        progress("writing", total, total)
    return len(created)


# --- export -------------------------------------------------------------------------------------


def _cell(spec: Any, value: Any) -> str:
    if value is None:
        return ""
    if spec is None:
        return str(value)
    if spec.type == "boolean":
        return "true" if value else "false"
    if spec.type == "json":
        return json.dumps(value, ensure_ascii=False)
    if spec.type == "file":
        return str(value.get("name", "")) if isinstance(value, dict) else ""
    text = str(value)
    if spec.type in TEXT_TYPES and text.startswith(_FORMULA_START):
        return "'" + text
    return text


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

JOB_STATES = ("uploaded", "running", "done", "failed")
_JOB_ID_LENGTH = 22
JOB_MAX_AGE = dt.timedelta(days=1)


def _job_paths(jobs_dir: Path, job_id: str) -> tuple[Path, Path]:
    if (
        not isinstance(job_id, str)
        or len(job_id) != _JOB_ID_LENGTH
        or not (job_id.isascii() and job_id.replace("-", "").replace("_", "").isalnum())
    ):
        raise NotFound("No such import.")
    return jobs_dir / f"{job_id}.json", jobs_dir / f"{job_id}.csv"


def _write_job(jobs_dir: Path, job: dict[str, Any]) -> None:
    meta, _ = _job_paths(jobs_dir, job["id"])
    tmp = meta.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(job), encoding="utf-8")
    os.replace(tmp, meta)


def _prune_jobs(jobs_dir: Path) -> None:
    limit = time.time() - JOB_MAX_AGE.total_seconds()
    for path in jobs_dir.glob("*.*"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass


def save_import_upload(jobs_dir: Path, collection_name: str, filename: str, data: bytes, actor: Any) -> dict:
    """Keep an uploaded CSV file for the import page: check it parses, and return its job with a preview.

    The job (``id``, ``collection``, ``filename``, ``state`` "uploaded",
    ``preview``...) lives beside the file under ``jobs_dir``, readable by
    every worker process; jobs older than a day are removed. Raises like
    :func:`read_csv`, and :class:`NotFound` / :class:`PermissionDenied`
    without create permission.
    """
    collection = get_visible_collection(collection_name, actor)
    require_access(collection, actor, "create")
    preview = preview_csv(collection, data)
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
    """The import job ``job_id`` of ``actor``; :class:`NotFound` for another person's or an unknown one."""
    meta, _ = _job_paths(jobs_dir, job_id)
    try:
        job = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotFound("No such import (imports are kept for a day).") from None
    if job.get("actor_id") != getattr(actor, "id", None):
        raise NotFound("No such import (imports are kept for a day).")
    return job


def start_import_job(jobs_dir: Path, job_id: str, mapping: Mapping[str, str], actor: Any) -> dict:
    """Mark an uploaded job as running with ``mapping`` (checked now); :class:`Conflict` if it already ran.

    Call :func:`run_import_job` next (the page does, in a background thread).
    """
    job = get_import_job(jobs_dir, job_id, actor)
    if job["state"] not in ("uploaded", "failed") or job.get("created"):
        raise Conflict("This import has already run; upload the file again to import it again.")
    collection = get_visible_collection(job["collection"], actor)
    require_access(collection, actor, "create")
    job["mapping"] = {c: (mapping.get(c) or "") for c in job["preview"]["header"]}
    check_mapping(collection, job["preview"]["header"], job["mapping"])
    job.update(state="running", phase="checking", done=0, error=None, updated_at=time.time())
    _write_job(jobs_dir, job)
    return job


def run_import_job(jobs_dir: Path, job_id: str, actor: Any, *, batch_size: int = BATCH_SIZE) -> dict:
    """Run a started import job, writing its progress to the job after each batch; returns the finished job.

    The job ends ``done`` (with ``created``) or ``failed`` (with ``error``:
    the error shape of API.md, bad rows included). Never raises for the
    import's own errors: they are the job's outcome.
    """
    job = get_import_job(jobs_dir, job_id, actor)
    _, csv_path = _job_paths(jobs_dir, job_id)

    def report(phase: str, done: int, total: int) -> None:
        job.update(phase=phase, done=done, total=total, updated_at=time.time())
        _write_job(jobs_dir, job)

    try:
        created = import_csv(
            job["collection"],
            csv_path.read_bytes(),
            actor,
            mapping=job["mapping"],
            batch_size=batch_size,
            progress=report,
        )
    except (BadRequest, ValidationFailed, Conflict, NotFound) as exc:
        job.update(state="failed", error=exc.to_dict()["error"], updated_at=time.time())
    except Exception as exc:  # the page must learn that it ended; the server log gets the detail
        job.update(
            state="failed",
            error={"code": "internal_error", "message": f"The import stopped: {type(exc).__name__}; nothing was kept."},
            updated_at=time.time(),
        )
        _write_job(jobs_dir, job)
        raise
    else:
        job.update(state="done", created=created, done=job["total"], updated_at=time.time())
        csv_path.unlink(missing_ok=True)
    _write_job(jobs_dir, job)
    return job


__all__ = [
    "CsvTable",
    "check_mapping",
    "check_rows",
    "export_csv",
    "get_import_job",
    "import_csv",
    "importable_fields",
    "preview_csv",
    "read_csv",
    "run_import_job",
    "save_import_upload",
    "start_import_job",
    "suggest_mapping",
]
