"""Writing records of a collection: create, change and restore, with permissions and history
(deleting is :mod:`appliance.records.delete`).

Every write first checks the values and computes the computed fields
*outside* any transaction (field checks, patterns under a time bound,
formulas under size bounds), then runs one short transaction that re-checks
only what must be atomic (relation targets, unique values) and writes: the
row, the full-text index (triggers), the collection's record count, the file
references, a record version and an audit event; a failure leaves none of
them behind. Stored files that no record refers to any more are removed
after the commit.

A computed field whose formula hits a size bound for the given values (a
number or text too large to store) makes the write a 422 naming that field;
nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import peewee

from appliance.actors import ActorLike, is_admin
from appliance.collections.access import field_rules, get_visible_collection, require_access
from appliance.collections.definitions import CollectionDef
from appliance.collections.fields import SYSTEM_FIELDS, to_column
from appliance.collections.formulas import FormulaLimit, compute_formula
from appliance.collections.schema import quote
from appliance.collections.values import now_text
from appliance.errors import Conflict, NotFound, ValidationFailed
from appliance.records.events import CREATED, UPDATED, emit_record_event
from appliance.records.files import Upload, store_checked
from appliance.records.history import field_changes, get_version, record_change_event, write_version
from appliance.records.read import check_record_scope, fetch_values, load_record, serialize_record
from appliance.records.validation import check_record, recheck_record
from appliance.storage.blobs import blob_path, remove_unreferenced, set_file_refs
from appliance.storage.db import database, write_transaction


def computed_values(collection: CollectionDef, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The computed fields' values over ``values`` (a record's fields), and an error per field whose formula
    hits a size bound (a write refuses such a record)."""
    plain = {f.name: values.get(f.name) for f in collection.fields if f.type not in ("computed", "file")}
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in collection.computed_fields:
        try:
            out[spec.name] = compute_formula(spec.formula or "", plain)
        except FormulaLimit as exc:
            errors[spec.name] = f"This computed field cannot be stored for these values: {exc}."
    return out, errors


def _compute(collection: CollectionDef, values: Mapping[str, Any]) -> dict[str, Any]:
    """The computed fields' values over ``values``; :class:`ValidationFailed` naming a field whose formula hits a bound."""
    out, errors = computed_values(collection, values)
    if errors:
        raise ValidationFailed(errors)
    return out


def _file_refs(collection: CollectionDef, values: Mapping[str, Any]) -> dict[str, str | None]:
    return {
        f.name: (values.get(f.name) or {}).get("sha256") if values.get(f.name) else None
        for f in collection.fields
        if f.type == "file"
    }


def _insert(collection: CollectionDef, values: dict[str, Any]) -> int:
    columns = [n for n in values if n == "id" or n in SYSTEM_FIELDS or collection.field(n) is not None]
    params = [to_column(spec, values[n]) if (spec := collection.field(n)) else values[n] for n in columns]
    marks = ", ".join("?" for _ in columns)
    cursor = database.execute_sql(
        f"INSERT INTO {quote(collection.table)} ({', '.join(quote(c) for c in columns)}) VALUES ({marks})", params
    )
    database.execute_sql("UPDATE collection SET row_count = row_count + 1 WHERE name = ?", (collection.name,))
    return int(values.get("id") or cursor.lastrowid)


def _update(collection: CollectionDef, record_id: int, values: Mapping[str, Any]) -> None:
    names = list(values)
    sets = ", ".join(f"{quote(n)} = ?" for n in names)
    params = [to_column(spec, values[n]) if (spec := collection.field(n)) else values[n] for n in names]
    database.execute_sql(f"UPDATE {quote(collection.table)} SET {sets} WHERE id = ?", [*params, record_id])


def _unique_violation(collection: CollectionDef, exc: peewee.IntegrityError) -> Conflict:
    # A race between the uniqueness check and the insert: the index has the last word.
    text = str(exc)
    fields = {
        f.name: "Another record already has this value." for f in collection.fields if f.unique and f".{f.name}" in text
    }
    return Conflict("A unique value is taken", fields=fields or None)


def create_record(
    collection_name: str,
    values: Mapping[str, Any],
    actor: ActorLike,
    *,
    uploads: Mapping[str, Upload] | None = None,
    files_dir: Path | None = None,
    form: bool = False,
    upload_limit: int | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Create a record and return it as the API shows it.

    ``values`` are field values (JSON values, or form strings with ``form``);
    ``uploads`` the files of file fields, stored under ``files_dir``;
    ``address`` the client's address for the audit event. Raises
    :class:`NotFound` (collection unknown to the actor), :class:`PermissionDenied`,
    :class:`ValidationFailed`, :class:`Conflict` (unique), :class:`TooLarge` (file).
    """
    collection = get_visible_collection(collection_name, actor)
    require_access(collection, actor, "create")
    cleaned, stored, created = store_checked(
        collection,
        lambda files: check_record(collection, values, actor=actor, form=form, file_fields=files),
        dict(uploads or {}),
        files_dir,
        upload_limit,
    )
    try:
        # Everything that may take time happens before the write lock is taken.
        cleaned.update(stored)
        cleaned.update(_compute(collection, cleaned))
        with write_transaction():
            recheck_record(collection, cleaned, actor=actor)
            now = now_text()
            row = {
                "created_at": now,
                "updated_at": now,
                "created_by": getattr(actor, "id", None),
                "updated_by": getattr(actor, "id", None),
                **cleaned,
            }
            try:
                record_id = _insert(collection, row)
            except peewee.IntegrityError as exc:
                raise _unique_violation(collection, exc) from None
            set_file_refs(collection.name, record_id, {k: v["sha256"] for k, v in stored.items()})
            saved = fetch_values(collection, record_id) or {}
            changes = field_changes(collection, {}, saved)
            write_version(collection.name, record_id, "create", actor, saved, changes)
            record_change_event("record.created", collection, record_id, actor, changes, address)
            emit_record_event(CREATED, collection, record_id, actor, saved)
    except BaseException:
        remove_unreferenced(files_dir, created)
        raise
    return serialize_record(collection, saved, actor)


def update_record(
    collection_name: str,
    record_id: int,
    values: Mapping[str, Any],
    actor: ActorLike,
    *,
    uploads: Mapping[str, Upload] | None = None,
    files_dir: Path | None = None,
    form: bool = False,
    upload_limit: int | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Change some fields of a record; returns it as the API shows it.

    Needs update permission (on own records only, when so limited) and view
    permission. Raises as :func:`create_record`. A replaced or cleared file
    is removed from storage when nothing else refers to it.
    """
    collection = get_visible_collection(collection_name, actor)
    before = load_record(collection, record_id, actor)
    scope = require_access(collection, actor, "update")
    check_record_scope(scope, before, actor, "change")
    cleaned, stored, created = store_checked(
        collection,
        lambda files: check_record(collection, values, actor=actor, existing=before, form=form, file_fields=files),
        dict(uploads or {}),
        files_dir,
        upload_limit,
    )
    released: list[str] = []
    try:
        cleaned.update(stored)
        computed = _compute(collection, {**before, **cleaned})
        with write_transaction():
            current = load_record(collection, record_id, actor)
            check_record_scope(scope, current, actor, "change")
            if current != before:
                # Changed by someone else since it was read: compute over what is stored now (bounded, quick).
                computed = _compute(collection, {**current, **cleaned})
            recheck_record(collection, cleaned, actor=actor, record_id=record_id)
            released = _apply_update(collection, record_id, current, cleaned, computed, actor, "update", address)
            saved = fetch_values(collection, record_id) or {}
    except BaseException:
        remove_unreferenced(files_dir, created)
        raise
    remove_unreferenced(files_dir, released)
    return serialize_record(collection, saved, actor)


def _apply_update(
    collection: CollectionDef,
    record_id: int,
    before: Mapping[str, Any],
    cleaned: dict[str, Any],
    computed: Mapping[str, Any],
    actor: ActorLike,
    action: str,
    address: str | None,
) -> list[str]:
    cleaned.update(computed)
    merged = {**before, **cleaned}
    changes = field_changes(collection, before, merged)
    released: list[str] = []
    if changes or action == "restore":
        row = {**{k: cleaned[k] for k in changes}, "updated_at": now_text(), "updated_by": getattr(actor, "id", None)}
        try:
            _update(collection, record_id, row)
        except peewee.IntegrityError as exc:
            raise _unique_violation(collection, exc) from None
        file_changes = {k: v for k, v in _file_refs(collection, merged).items() if k in changes}
        released = set_file_refs(collection.name, record_id, file_changes)
        saved = fetch_values(collection, record_id) or {}
        write_version(collection.name, record_id, action, actor, saved, changes)
        record_change_event(
            "record.restored" if action == "restore" else "record.updated",
            collection,
            record_id,
            actor,
            changes,
            address,
        )
        emit_record_event(UPDATED, collection, record_id, actor, saved, before)
    return released


def restore_version(
    collection_name: str,
    record_id: int,
    version: int,
    actor: ActorLike,
    *,
    files_dir: Path | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Bring back version ``version`` of a record as a new version; returns the record.

    A live record needs update permission (own records only, when so
    limited); a deleted record may be restored by admins only, with its id.
    Fields added since take their current value (or default), fields removed
    since are ignored; a version's file comes back with it (stored files stay while any version refers
    to them, see :mod:`appliance.storage.blobs`); one whose content is gone leaves the field as it is.
    The fields ``actor`` may not set (hidden from it or read-only for it, see
    :func:`~appliance.collections.access.field_rules`) keep their current values:
    a restore never writes what the actor could not write directly.
    Raises :class:`NotFound`, :class:`PermissionDenied`,
    :class:`ValidationFailed` or :class:`Conflict` (a unique value taken since,
    or the record deleted or brought back by someone else meanwhile).
    """
    collection = get_visible_collection(collection_name, actor)
    snapshot_row = get_version(collection.name, record_id, version)
    snapshot = json.loads(snapshot_row.data)
    values: dict[str, Any] = {}
    files: dict[str, Any] = {}
    unwritable = field_rules(collection, actor).unwritable
    for spec in collection.fields:
        if spec.read_only or spec.name not in snapshot or spec.name in unwritable:
            continue
        if spec.type == "file":
            value = snapshot[spec.name]
            present = (
                isinstance(value, dict) and files_dir is not None and blob_path(files_dir, value["sha256"]).exists()
            )
            if present or value is None:
                files[spec.name] = value
            # else: its content is gone (removed by an older version); the field keeps what it holds now
        else:
            values[spec.name] = snapshot[spec.name]
    # Checked and computed before the write lock is taken; the transaction re-checks what must be atomic.
    before = fetch_values(collection, record_id)
    if before is None:
        if not is_admin(actor):
            raise NotFound(f"No record {record_id} in {collection.name!r}.")
        cleaned = check_record(collection, values, actor=actor, file_fields=files)
        cleaned.update(files)
        computed = _compute(collection, cleaned)
    else:
        load_record(collection, record_id, actor)
        scope = require_access(collection, actor, "update")
        check_record_scope(scope, before, actor, "change")
        cleaned = check_record(collection, values, actor=actor, existing=before, file_fields=files)
        cleaned.update(files)
        computed = _compute(collection, {**before, **cleaned})
    released: list[str] = []
    with write_transaction():
        current = fetch_values(collection, record_id)
        if (current is None) != (before is None):
            raise Conflict(f"Record {record_id} was deleted or restored meanwhile; try again.")
        recheck_record(collection, cleaned, actor=actor, record_id=None if current is None else record_id)
        if current is None:
            cleaned.update(computed)
            row = {
                "id": record_id,
                "created_at": snapshot.get("created_at") or now_text(),
                "updated_at": now_text(),
                "created_by": snapshot.get("created_by"),
                "updated_by": getattr(actor, "id", None),
                **cleaned,
            }
            try:
                _insert(collection, row)
            except peewee.IntegrityError as exc:
                raise _unique_violation(collection, exc) from None
            set_file_refs(collection.name, record_id, {k: (v or {}).get("sha256") for k, v in files.items() if v})
            saved = fetch_values(collection, record_id) or {}
            changes = field_changes(collection, {}, saved)
            write_version(collection.name, record_id, "restore", actor, saved, changes)
            record_change_event("record.restored", collection, record_id, actor, changes, address)
            emit_record_event(CREATED, collection, record_id, actor, saved)  # a deleted record comes back
        else:
            scope = require_access(collection, actor, "update")
            check_record_scope(scope, current, actor, "change")
            if current != before:
                computed = _compute(collection, {**current, **cleaned})
            released = _apply_update(collection, record_id, current, cleaned, computed, actor, "restore", address)
            saved = fetch_values(collection, record_id) or {}
    remove_unreferenced(files_dir, released)
    return serialize_record(collection, saved, actor)
