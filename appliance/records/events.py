"""The outbox: one event per record change, written in the same transaction as the change.

Every create, update, delete and restore of a record (and every record a CSV
import creates) appends a row to ``outbox_event`` inside the write's own
transaction, so an acknowledged write always has its event and a rolled-back
write never has one. Consumers (webhook deliveries, automation rules) run in
the scheduler's process: each keeps its own cursor, the id of the last event
it handled, and reads on with :func:`events_after`; nothing here is deleted
by reading. Event ids grow in commit order: SQLite runs one write
transaction at a time, so an event with a lower id is never committed after
one with a higher id.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from appliance.actors import ActorLike
from appliance.clock import iso, utcnow
from appliance.collections.definitions import CollectionDef
from appliance.records.read import serialize_record
from appliance.storage.db import database
from appliance.storage.models import OutboxEvent

CREATED, UPDATED, DELETED = "record.created", "record.updated", "record.deleted"
EVENT_TYPES = (CREATED, UPDATED, DELETED)

_INSERT_SQL = (
    "INSERT INTO outbox_event (event_id, type, collection, record_id, data, actor_id, actor, at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def new_event_id() -> str:
    """A stable, unique event id (``evt_`` and 24 hex digits): receivers drop duplicates by it."""
    return "evt_" + secrets.token_hex(12)


def _payload(collection: CollectionDef, record: Mapping[str, Any], previous: Mapping[str, Any] | None) -> str:
    data: dict[str, Any] = {"record": serialize_record(collection, record)}
    if previous is not None:
        data["previous"] = serialize_record(collection, previous)
    return json.dumps(data, ensure_ascii=False, default=str)


def _row(
    kind: str,
    collection: CollectionDef,
    record_id: int,
    actor: ActorLike | None,
    record: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
) -> tuple[Any, ...]:
    return (
        new_event_id(),
        kind,
        collection.name,
        record_id,
        _payload(collection, record, previous),
        getattr(actor, "id", None),
        str(getattr(actor, "email", "") or "")[:320],
        str(utcnow()),
    )


def emit_record_event(
    kind: str,
    collection: CollectionDef,
    record_id: int,
    actor: ActorLike | None,
    record: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
) -> None:
    """Append the event of one record change; call inside the write's transaction.

    ``record`` is the record as stored after the change (for a delete: as it was);
    ``previous`` the record before an update.
    """
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    database.execute_sql(_INSERT_SQL, _row(kind, collection, record_id, actor, record, previous))


def emit_created_many(collection: CollectionDef, actor: ActorLike | None, records: Iterable[Mapping[str, Any]]) -> int:
    """Append one ``record.created`` event per record (a CSV import's); call inside its transaction."""
    rows = [_row(CREATED, collection, int(r["id"]), actor, r, None) for r in records]
    if rows:
        database.cursor().executemany(_INSERT_SQL, rows)
    return len(rows)


def drop_events_of_records(collection: str, first: int, last: int) -> int:
    """Remove the events of records ``first``..``last`` (an undone import's); call inside a transaction."""
    removed: int = database.execute_sql(
        "DELETE FROM outbox_event WHERE collection = ? AND record_id BETWEEN ? AND ?", (collection, first, last)
    ).rowcount
    return removed


def events_after(cursor: int, limit: int = 100) -> list[OutboxEvent]:
    """The next ``limit`` events after the event id ``cursor`` (0 for the first), oldest first."""
    return list(OutboxEvent.select().where(OutboxEvent.id > cursor).order_by(OutboxEvent.id).limit(limit))


def newest_event_id() -> int:
    """The id of the newest event (0 when there is none): a new consumer starts here, not at the beginning."""
    row = OutboxEvent.select(OutboxEvent.id).order_by(OutboxEvent.id.desc()).first()
    return int(row.id) if row is not None else 0


def serialize_event(row: OutboxEvent) -> dict[str, Any]:
    """An event as consumers send it on: ``{"id", "type", "timestamp", "data": {"collection", "record",
    "previous"?}}`` (the shape of a webhook delivery's body)."""
    data = json.loads(row.data)
    return {
        "id": row.event_id,
        "type": row.type,
        "timestamp": iso(row.at),
        "data": {"collection": row.collection, **data},
    }
