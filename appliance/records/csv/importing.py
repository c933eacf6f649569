"""Writing an import: the checked rows in short batches under a reserved id range, undone on failure.

An import is all or nothing, but not one long transaction: a 50,000-row
import written in one transaction would hold SQLite's write lock for
seconds, and every other user's save would fail once it waited out the busy
timeout. So it goes in two phases:

1. Check everything first, without writing (:mod:`appliance.records.csv.checks`).
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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import peewee

from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.collections.access import get_visible_collection, require_access
from appliance.collections.definitions import CollectionDef, get_collection
from appliance.collections.fields import from_column, to_column
from appliance.collections.schema import quote
from appliance.collections.values import now_text
from appliance.errors import BadRequest, Busy, Conflict, NotFound
from appliance.records.csv.checks import Progress, check_mapping, check_rows
from appliance.records.csv.reading import read_csv
from appliance.records.events import drop_events_of_records, emit_created_many
from appliance.records.read import row_to_values
from appliance.storage.db import database, write_transaction

BATCH_SIZE = 200
PAUSE_LIMIT = 0.1
# The default of the ``max_import_rows`` setting: most data rows one import may have.
MAX_IMPORT_ROWS = 100_000


_VERSION_SQL = (
    "INSERT INTO record_version (collection, record_id, version, action, actor_id, actor, at, data, changes) "
    "VALUES (?, ?, 1, 'create', ?, ?, ?, ?, ?)"
)


def _write_batch(collection: CollectionDef, batch: list[dict[str, Any]], actor: ActorLike, first_id: int) -> None:
    """Insert ``batch`` (checked rows, computed values included) with the ids ``first_id``, ``first_id + 1``, ..."""
    actor_id = getattr(actor, "id", None)
    actor_email = str(getattr(actor, "email", "") or "")[:320]
    specs = [f for f in collection.fields if f.name]
    names = [f.name for f in specs]
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
                *(to_column(f, values.get(f.name)) for f in specs),
            ]
            database.execute_sql(sql, params)
            stored = {f.name: from_column(f, to_column(f, values.get(f.name))) for f in specs}
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


def _imported_values(collection: CollectionDef, first: int, last: int) -> list[dict[str, Any]]:
    """The stored values of the records ``first``..``last``, in one query, as ``fetch_values`` gives one."""
    cursor = database.execute_sql(
        f"SELECT * FROM {quote(collection.table)} WHERE id BETWEEN ? AND ? ORDER BY id", (first, last)
    )
    names = [d[0] for d in cursor.description]
    return [row_to_values(collection, names, row) for row in cursor.fetchall()]


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
                    drop_events_of_records(collection_name, start, end)
                gone_total += gone
                break
            except peewee.OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
    return gone_total


def rows_left(collection_name: str, first: int, last: int) -> int:
    """How many records with ids ``first``..``last`` the collection still has (0 once it is gone)."""
    try:
        table = quote(get_collection(collection_name).table)
    except NotFound:
        return 0
    return int(
        database.execute_sql(f"SELECT COUNT(*) FROM {table} WHERE id BETWEEN ? AND ?", (first, last)).fetchone()[0]
    )


# Set when the process is stopping (see :func:`stop_running_imports`): imports stop between batches and undo.
_STOPPING = threading.Event()
_ACTIVE = threading.Condition()
_active_count = 0

INTERRUPTED = "The import was interrupted (the server stopped); nothing was kept."


def stopping() -> bool:
    """Whether this process is stopping (:func:`stop_running_imports` was called): imports stop and undo."""
    return _STOPPING.is_set()


def import_csv(
    collection_name: str,
    data: bytes | str,
    actor: ActorLike,
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
    positions = check_mapping(collection, table.header, mapping, actor)
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
            if stopping() or (should_stop is not None and should_stop()):
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
            # The import's events, one per record, in the transaction that makes the import final: a crash
            # before it undoes the rows (and leaves no event); after it, rows and events are both there.
            emit_created_many(collection, actor, _imported_values(collection, first, last))
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


@contextlib.contextmanager
def running_import() -> Iterator[None]:
    """Count an import as running for as long as the block runs (:func:`stop_running_imports` waits for it)."""
    global _active_count
    with _ACTIVE:
        _active_count += 1
    try:
        yield
    finally:
        with _ACTIVE:
            _active_count -= 1
            _ACTIVE.notify_all()
