"""Record versions: every create, update, delete and restore, with who, when and what changed (and the
audit event each change writes beside its version).

A version row holds the whole record as it stood after the change (before
it, for a delete), so any version can be brought back, and the changes as
``{"field": [old, new]}``. It is written in the transaction of the change.
A caller is never shown the changes of a field hidden from it
(:func:`appliance.collections.access.field_rules`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import peewee

from appliance.actors import ActorLike, is_admin
from appliance.audit import record_event
from appliance.clock import iso, utcnow
from appliance.collections.access import NO_RULES, FieldRules, field_rules, require_access
from appliance.collections.definitions import CollectionDef
from appliance.collections.schema import quote
from appliance.collections.values import INT64
from appliance.errors import NotFound, PermissionDenied
from appliance.storage.db import database
from appliance.storage.models import RecordVersion
from appliance.storage.pagination import paginate, parse_paging


def acting_through(actor: ActorLike) -> dict[str, Any] | None:
    """What an actor carries about the way it acts (``{"via": "mcp", "token": 7}`` for an AI agent's
    token: an actor with a ``details`` mapping), or ``None`` for a person or a script acting directly."""
    details = getattr(actor, "details", None)
    return dict(details) if isinstance(details, Mapping) and details else None


def write_version(
    collection: str, record_id: int, action: str, actor: ActorLike, data: Mapping[str, Any], changes: Mapping[str, Any]
) -> int:
    """Append a version of the record; returns its number (1 for the first). Call inside the write's transaction."""
    row = database.execute_sql(
        "SELECT MAX(version) FROM record_version WHERE collection = ? AND record_id = ?", (collection, record_id)
    ).fetchone()
    number = (row[0] or 0) + 1
    RecordVersion.create(
        collection=collection,
        record_id=record_id,
        version=number,
        action=action,
        actor_id=getattr(actor, "id", None),
        actor=str(getattr(actor, "email", "") or "")[:320],
        at=utcnow(),
        data=json.dumps(dict(data), ensure_ascii=False, default=str),
        changes=json.dumps(dict(changes), ensure_ascii=False, default=str),
        details=json.dumps(through, default=str) if (through := acting_through(actor)) else None,
    )
    return number


def field_changes(
    collection: CollectionDef, before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """``{"field": [old, new]}`` for each field whose value differs between ``before`` and ``after``."""
    out = {}
    for spec in collection.fields:
        old, new = before.get(spec.name), after.get(spec.name)
        if old != new:
            out[spec.name] = [old, new]
    return out


def record_change_event(
    action: str,
    collection: CollectionDef,
    record_id: int,
    actor: ActorLike,
    changes: Mapping[str, list[Any]],
    address: str | None = None,
) -> None:
    """The audit event of a record change (a file value named by its file name, never its digest)."""
    details = {
        "collection": collection.name,
        "id": record_id,
        "fields": sorted(changes),
        "changes": {
            k: [v if not isinstance(v, dict) or "sha256" not in v else v.get("name") for v in pair]
            for k, pair in changes.items()
        },
    }
    details.update(acting_through(actor) or {})
    record_event(action, actor=actor, target=f"{collection.name}/{record_id}", address=address, details=details)


def get_version(collection: str, record_id: int, version: int) -> RecordVersion:
    if not (1 <= record_id <= INT64 and 1 <= version <= INT64):
        raise NotFound(f"Record {record_id} has no version {version}.")
    row = RecordVersion.get_or_none(
        (RecordVersion.collection == collection)
        & (RecordVersion.record_id == record_id)
        & (RecordVersion.version == version)
    )
    if row is None:
        raise NotFound(f"Record {record_id} has no version {version}.")
    return row


def _public(value: Any) -> Any:
    # A file value's digest is an internal detail; history shows what a person recognises.
    if isinstance(value, dict) and "sha256" in value:
        return {k: v for k, v in value.items() if k != "sha256"}
    return value


def serialize_version(row: RecordVersion, rules: FieldRules = NO_RULES) -> dict[str, Any]:
    """A history item of API.md: ``{"version", "actor", "at", "action", "changes": {"field": [old, new]}}``,
    plus ``"details"`` (``{"via": "mcp", "token": 7}``) for a change an AI agent made. The changes of the
    fields ``rules`` hide are left out (a version that changed only those shows no changes)."""
    changes = rules.strip(json.loads(row.changes or "{}"))
    item: dict[str, Any] = {
        "version": row.version,
        "actor": row.actor or None,
        "at": iso(row.at),
        "action": row.action,
        "changes": {k: [_public(v[0]), _public(v[1])] for k, v in changes.items()},
    }
    if row.details:
        item["details"] = json.loads(row.details)
    return item


def record_owner(collection: CollectionDef, record_id: int) -> tuple[bool, int | None]:
    """``(exists, created_by)`` of a live record."""
    if not 1 <= record_id <= INT64:
        return (False, None)
    row = database.execute_sql(
        f"SELECT created_by FROM {quote(collection.table)} WHERE id = ?", (record_id,)
    ).fetchone()
    return (row is not None, row[0] if row else None)


def list_history(
    collection: CollectionDef, record_id: int, actor: ActorLike, params: Mapping[str, Any]
) -> dict[str, Any]:
    """The record's versions, newest first, in the listing shape.

    Needs view permission on the record (own records only, when so limited).
    A deleted record's history is shown to admins only. Raises
    :class:`NotFound` or :class:`PermissionDenied`.
    """
    scope = require_access(collection, actor, "view")
    page, page_size = parse_paging(params)
    if not isinstance(record_id, int) or not 1 <= record_id <= INT64:
        raise NotFound(f"No record {record_id} in {collection.name!r}.")  # SQLite cannot even compare it
    exists, owner = record_owner(collection, record_id)
    if not exists and not is_admin(actor):
        raise NotFound(f"No record {record_id} in {collection.name!r}.")
    if exists and scope == "own" and owner != getattr(actor, "id", None):
        raise NotFound(f"No record {record_id} in {collection.name!r}.")
    query = (
        RecordVersion.select()
        .where((RecordVersion.collection == collection.name) & (RecordVersion.record_id == record_id))
        .order_by(RecordVersion.version.desc())
    )
    if not exists and not query.exists():
        raise NotFound(f"No record {record_id} in {collection.name!r}.")
    rules = field_rules(collection, actor)
    return paginate(query, page, page_size, lambda row: serialize_version(row, rules))


def list_deleted_records(collection: CollectionDef, actor: ActorLike, params: Mapping[str, Any]) -> dict[str, Any]:
    """Deleted records of the collection (admins only), newest deletion first, in the listing shape.

    Each item is the record as it was when deleted, plus ``deleted_at``,
    ``deleted_by`` and ``version`` (the one to restore with).
    """
    if not is_admin(actor):
        raise PermissionDenied("Only admins may list deleted records.")
    page, page_size = parse_paging(params)
    table = quote(collection.table)
    latest = (
        RecordVersion.select(RecordVersion.record_id, peewee.fn.MAX(RecordVersion.version).alias("latest"))
        .where(RecordVersion.collection == collection.name)
        .group_by(RecordVersion.record_id)
    )
    query = (
        RecordVersion.select()
        .join(
            latest,
            on=((RecordVersion.record_id == latest.c.record_id) & (RecordVersion.version == latest.c.latest)),
        )
        .where(
            (RecordVersion.collection == collection.name)
            & (RecordVersion.action == "delete")
            & ~peewee.fn.EXISTS(peewee.SQL(f"SELECT 1 FROM {table} WHERE {table}.id = t1.record_id"))
        )
        .order_by(RecordVersion.at.desc(), RecordVersion.id.desc())
    )

    rules = field_rules(collection, actor)  # none for admins today; kept so that the rule has no exception

    def serialize(row: RecordVersion) -> dict[str, Any]:
        data = {k: _public(v) for k, v in rules.strip(json.loads(row.data)).items()}
        data.update(deleted_at=iso(row.at), deleted_by=row.actor or None, version=row.version)
        return data

    return paginate(query, page, page_size, serialize)
