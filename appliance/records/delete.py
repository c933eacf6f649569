"""Deleting records: permission checks, the references that block a delete, and cascades.

A record referred to by a relation field without ``cascade`` cannot be
deleted; with ``cascade`` the referring records go too, in the same
transaction. A deleted record stays in its history, so admins can restore
it (:func:`appliance.records.write.restore_version`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appliance.actors import ActorLike
from appliance.collections.access import access_scope, get_visible_collection, knows_collection, require_access
from appliance.collections.definitions import CollectionDef, referencing_fields
from appliance.collections.fields import Field
from appliance.collections.schema import quote
from appliance.errors import Conflict
from appliance.records.events import DELETED, emit_record_event
from appliance.records.history import field_changes, record_change_event, write_version
from appliance.records.read import check_record_scope, fetch_values, load_record
from appliance.storage.blobs import drop_file_refs, remove_unreferenced
from appliance.storage.db import database, write_transaction


def delete_record(
    collection_name: str,
    record_id: int,
    actor: ActorLike,
    *,
    files_dir: Path | None = None,
    address: str | None = None,
) -> None:
    """Delete a record (it stays in history; admins can restore it).

    Needs delete permission (own records only, when so limited). Raises
    :class:`Conflict` while a relation field without ``cascade`` refers to
    it; with ``cascade`` the referring records are deleted too, however many,
    but only if ``actor`` may delete every one of them (delete permission on
    their collection, and each its own when limited to its own records):
    otherwise :class:`Conflict`, naming no collection the actor cannot see,
    and nothing is deleted (each level is checked before it is deleted, and a
    refusal deeper down rolls back the one transaction).
    """
    collection = get_visible_collection(collection_name, actor)
    with write_transaction():
        before = load_record(collection, record_id, actor)
        scope = require_access(collection, actor, "delete")
        check_record_scope(scope, before, actor, "delete")
        released = _delete(collection, record_id, before, actor, set(), address)
    remove_unreferenced(files_dir, released)


# How many referring ids a refusal names, and how many referring rows a cascade reads at a time.
SHOWN_REFERRERS = 10
CASCADE_BATCH = 1000


def _referrer_ids(other: CollectionDef, spec: Field, record_id: int, after: int, limit: int) -> list[int]:
    rows = database.execute_sql(
        f"SELECT id FROM {quote(other.table)} WHERE {quote(spec.name)} = ? AND id > ? ORDER BY id LIMIT ?",
        (record_id, after, limit),
    ).fetchall()
    return [r[0] for r in rows]


def _cascade_refused(other: CollectionDef, spec: Field, record_id: int, actor: ActorLike) -> bool:
    """Whether some record of ``other`` that refers to ``record_id`` through the cascading ``spec`` is one
    ``actor`` may not delete (no delete permission, or not its own when limited to its own records)."""
    scope = access_scope(other, actor, "delete")
    if scope == "all":
        return False
    sql = f"SELECT 1 FROM {quote(other.table)} WHERE {quote(spec.name)} = ?"
    args: list[Any] = [record_id]
    if scope == "own":
        sql += " AND created_by IS NOT ?"
        args.append(getattr(actor, "id", None))
    return database.execute_sql(sql + " LIMIT 1", args).fetchone() is not None


def _delete(
    collection: CollectionDef,
    record_id: int,
    before: Mapping[str, Any],
    actor: ActorLike,
    seen: set[tuple[str, int]],
    address: str | None = None,
) -> list[str]:
    seen.add((collection.name, record_id))
    released: list[str] = []
    blocking = []
    hidden = 0
    referrers = referencing_fields(collection.name)
    for other, spec in referrers:
        if spec.cascade:
            # The cascade would delete these too: every one must be a record the actor may delete.
            if _cascade_refused(other, spec, record_id, actor):
                if knows_collection(other, actor):
                    blocking.append(f"{other.name}.{spec.name} (records you may not delete)")
                else:
                    hidden += 1
            continue
        ids = [i for i in _referrer_ids(other, spec, record_id, 0, SHOWN_REFERRERS + 1) if (other.name, i) not in seen]
        if not ids:
            continue
        if knows_collection(other, actor):
            shown = ", ".join(map(str, ids[:SHOWN_REFERRERS]))
            more = " and more" if len(ids) > SHOWN_REFERRERS else ""
            blocking.append(f"{other.name}.{spec.name} (records {shown}{more})")
        else:
            hidden += 1
    if blocking or hidden:
        # A collection the actor may not see is never named, only counted.
        parts = [*blocking]
        if hidden:
            parts.append("records you cannot see")
        raise Conflict(f"Record {record_id} is still referred to by {'; '.join(parts)}.")
    for other, spec in referrers:
        if not spec.cascade:
            continue
        # In batches, until none is left: a cascade has no limit (deleted rows leave the table,
        # rows already being deleted up the chain are stepped over by id).
        after = 0
        while True:
            ids = _referrer_ids(other, spec, record_id, after, CASCADE_BATCH)
            if not ids:
                break
            after = ids[-1]
            for other_id in ids:
                if (other.name, other_id) in seen:
                    continue
                values = fetch_values(other, other_id)
                if values is not None:
                    released += _delete(other, other_id, values, actor, seen, address)
    database.execute_sql(f"DELETE FROM {quote(collection.table)} WHERE id = ?", (record_id,))
    database.execute_sql("UPDATE collection SET row_count = row_count - 1 WHERE name = ?", (collection.name,))
    released += drop_file_refs(collection.name, record_id)
    changes = {k: [pair[1], None] for k, pair in field_changes(collection, {}, before).items()}
    write_version(collection.name, record_id, "delete", actor, dict(before), changes)
    record_change_event("record.deleted", collection, record_id, actor, changes, address)
    emit_record_event(DELETED, collection, record_id, actor, before)
    return released
