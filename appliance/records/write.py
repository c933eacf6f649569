"""Records of a collection: create, read, change, delete and restore, with permissions and history.

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

import peewee

from appliance.actors import is_admin
from appliance.audit import record_event
from appliance.collections.definitions import (
    CollectionDef,
    access_scope,
    get_collection,
    get_visible_collection,
    knows_collection,
    quote,
    referencing_fields,
    require_access,
    write_transaction,
)
from appliance.collections.fields import INT64, SYSTEM_FIELDS, FieldError, from_column, now_text, to_column
from appliance.collections.formulas import FormulaLimit, compute_formula
from appliance.errors import Conflict, NotFound, PermissionDenied, TooLarge, ValidationFailed
from appliance.records.files import (
    Upload,
    UploadTooLarge,
    blob_path,
    drop_file_refs,
    public_file_value,
    remove_unreferenced,
    set_file_refs,
    store_upload,
)
from appliance.records.history import get_version, write_version
from appliance.records.validation import check_record, recheck_record
from appliance.storage.db import database

# --- reading ------------------------------------------------------------------------------------


def row_to_values(collection: CollectionDef, columns: list[str], row: tuple) -> dict[str, Any]:
    """A table row as a dict of API-form values (file values still carry their digest)."""
    out: dict[str, Any] = {}
    for name, value in zip(columns, row, strict=True):
        spec = collection.field(name)
        out[name] = from_column(spec, value) if spec is not None else value
    return out


def fetch_values(collection: CollectionDef, record_id: int) -> dict[str, Any] | None:
    """The stored record ``record_id`` (no permission check), or ``None``."""
    if not isinstance(record_id, int) or not 1 <= record_id <= INT64:
        return None
    cursor = database.execute_sql(f"SELECT * FROM {quote(collection.table)} WHERE id = ?", (record_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    return row_to_values(collection, [d[0] for d in cursor.description], row)


def file_url(collection: str, record_id: int, field_name: str, filename: str) -> str:
    return f"/api/files/{collection}/{record_id}/{field_name}/{url_quote(filename, safe='')}"


def serialize_record(collection: CollectionDef, values: Mapping[str, Any]) -> dict[str, Any]:
    """A record as the API answers it: system fields, then each field in order (files as name/size/type/url)."""
    out = {name: values.get(name) for name in SYSTEM_FIELDS}
    for spec in collection.fields:
        value = values.get(spec.name)
        if spec.type == "file" and value is not None:
            value = public_file_value(value, file_url(collection.name, values["id"], spec.name, value.get("name", "")))
        out[spec.name] = value
    return out


def _check_record_scope(scope: str, values: Mapping[str, Any], actor: Any, action: str) -> None:
    if scope == "own" and values.get("created_by") != getattr(actor, "id", None):
        raise PermissionDenied(f"You may {action} only the records you created.")


def load_record(collection: CollectionDef, record_id: int, actor: Any) -> dict[str, Any]:
    """The stored values of a record ``actor`` may view; :class:`NotFound` otherwise (also when limited to own)."""
    scope = require_access(collection, actor, "view")
    values = fetch_values(collection, record_id)
    if values is None or (scope == "own" and values.get("created_by") != getattr(actor, "id", None)):
        raise NotFound(f"No record {record_id} in {collection.name!r}.")
    return values


def get_record(collection_name: str, record_id: int, actor: Any) -> dict[str, Any]:
    """One record as the API shows it. Raises :class:`NotFound` or :class:`PermissionDenied`."""
    collection = get_visible_collection(collection_name, actor)
    return serialize_record(collection, load_record(collection, record_id, actor))


# --- writing ------------------------------------------------------------------------------------


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


def _size_text(size: int, *, megabytes: bool) -> str:
    """A size limit as the forms state it: whole MB for the upload limit (``max_upload_mb``), else as
    Jinja's ``filesizeformat`` writes a field's ``max_size`` beside the file input."""
    if megabytes:
        return f"{size // (1024 * 1024)} MB"
    if size < 1000:
        return f"{size} Bytes"
    for exponent, unit in enumerate(("kB", "MB", "GB"), start=1):
        scaled = size / 1000**exponent
        if scaled < 1000 or unit == "GB":
            return f"{scaled:.1f} {unit}"
    return f"{size} Bytes"  # pragma: no cover (the loop always returns)


def _store_uploads(
    collection: CollectionDef, uploads: Mapping[str, Upload], files_dir: Path | None, limit: int | None
) -> tuple[dict[str, dict], list[str], dict[str, str], bool]:
    """Check and store each upload: ``(values by field, digests newly written, errors by field, too large?)``.

    Never raises for a bad upload: the caller merges these errors with the
    other fields' (see :func:`_checked`).
    """
    values: dict[str, dict] = {}
    created: list[str] = []
    errors: dict[str, str] = {}
    too_large = False
    for name, upload in uploads.items():
        spec = collection.field(name)
        if spec is None or spec.type != "file":
            errors[name] = "Unknown field." if spec is None else "This field does not take a file."
            continue
        if files_dir is None:
            raise ValueError("files_dir is needed to store uploads")
        try:
            value, new = store_upload(files_dir, spec, upload, limit=limit)
        except UploadTooLarge:
            too_large = True
            own = spec.max_size
            by_setting = own is None or (limit is not None and limit < own)
            size = limit if by_setting else own
            errors[name] = f"The file is larger than {_size_text(size or 0, megabytes=by_setting)}."
            continue
        except FieldError as exc:
            errors[name] = str(exc)
            continue
        values[name] = value
        if new:
            created.append(value["sha256"])
    return values, created, errors, too_large


def _checked(
    collection: CollectionDef,
    check: Callable[[dict[str, dict]], dict[str, Any]],
    uploads: Mapping[str, Upload],
    files_dir: Path | None,
    limit: int | None,
) -> tuple[dict[str, Any], dict[str, dict], list[str]]:
    """Store the uploads and run ``check(stored_files)`` on the other values; ``(cleaned, stored, created)``.

    Every field is checked whatever else is wrong: the errors of the files and
    of the other values come in one :class:`ValidationFailed` (or
    :class:`TooLarge` when a file is over its limit), and the files just
    stored are removed again.
    """
    stored, created, upload_errors, too_large = (
        _store_uploads(collection, uploads, files_dir, limit) if uploads else ({}, [], {}, False)
    )
    try:
        try:
            cleaned = check(stored)
            errors: dict[str, str] = {}
        except ValidationFailed as exc:
            cleaned, errors = {}, dict(exc.fields)
        if upload_errors or errors:
            merged = {**errors, **upload_errors}
            if too_large:
                raise TooLarge("The file is too large", fields=merged)
            raise ValidationFailed(merged)
    except BaseException:
        remove_unreferenced(files_dir, created)
        raise
    return cleaned, stored, created


def _changes(collection: CollectionDef, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list]:
    out = {}
    for spec in collection.fields:
        old, new = before.get(spec.name), after.get(spec.name)
        if old != new:
            out[spec.name] = [old, new]
    return out


def _file_refs(collection: CollectionDef, values: Mapping[str, Any]) -> dict[str, str | None]:
    return {
        f.name: (values.get(f.name) or {}).get("sha256") if values.get(f.name) else None
        for f in collection.fields
        if f.type == "file"
    }


def _insert(collection: CollectionDef, values: dict[str, Any]) -> int:
    columns = [n for n in values if n == "id" or n in SYSTEM_FIELDS or collection.field(n) is not None]
    params = [to_column(collection.field(n), values[n]) if collection.field(n) else values[n] for n in columns]
    marks = ", ".join("?" for _ in columns)
    cursor = database.execute_sql(
        f"INSERT INTO {quote(collection.table)} ({', '.join(quote(c) for c in columns)}) VALUES ({marks})", params
    )
    database.execute_sql("UPDATE collection SET row_count = row_count + 1 WHERE name = ?", (collection.name,))
    return values.get("id") or cursor.lastrowid


def _update(collection: CollectionDef, record_id: int, values: Mapping[str, Any]) -> None:
    names = list(values)
    sets = ", ".join(f"{quote(n)} = ?" for n in names)
    params = [to_column(collection.field(n), values[n]) if collection.field(n) else values[n] for n in names]
    database.execute_sql(f"UPDATE {quote(collection.table)} SET {sets} WHERE id = ?", [*params, record_id])


def _unique_violation(collection: CollectionDef, exc: peewee.IntegrityError) -> Conflict:
    # A race between the uniqueness check and the insert: the index has the last word.
    text = str(exc)
    fields = {
        f.name: "Another record already has this value." for f in collection.fields if f.unique and f".{f.name}" in text
    }
    return Conflict("A unique value is taken", fields=fields or None)


def _audit(
    action: str,
    collection: CollectionDef,
    record_id: int,
    actor: Any,
    changes: Mapping[str, list],
    address: str | None = None,
) -> None:
    details = {
        "collection": collection.name,
        "id": record_id,
        "fields": sorted(changes),
        "changes": {
            k: [v if not isinstance(v, dict) or "sha256" not in v else v.get("name") for v in pair]
            for k, pair in changes.items()
        },
    }
    record_event(action, actor=actor, target=f"{collection.name}/{record_id}", address=address, details=details)


def create_record(
    collection_name: str,
    values: Mapping[str, Any],
    actor: Any,
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
    cleaned, stored, created = _checked(
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
            changes = _changes(collection, {}, saved)
            write_version(collection.name, record_id, "create", actor, saved, changes)
            _audit("record.created", collection, record_id, actor, changes, address)
    except BaseException:
        remove_unreferenced(files_dir, created)
        raise
    return serialize_record(collection, saved)


def update_record(
    collection_name: str,
    record_id: int,
    values: Mapping[str, Any],
    actor: Any,
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
    _check_record_scope(scope, before, actor, "change")
    cleaned, stored, created = _checked(
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
            _check_record_scope(scope, current, actor, "change")
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
    return serialize_record(collection, saved)


def _apply_update(
    collection: CollectionDef,
    record_id: int,
    before: Mapping[str, Any],
    cleaned: dict[str, Any],
    computed: Mapping[str, Any],
    actor: Any,
    action: str,
    address: str | None,
) -> list[str]:
    cleaned.update(computed)
    merged = {**before, **cleaned}
    changes = _changes(collection, before, merged)
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
        _audit(
            "record.restored" if action == "restore" else "record.updated",
            collection,
            record_id,
            actor,
            changes,
            address,
        )
    return released


def delete_record(
    collection_name: str,
    record_id: int,
    actor: Any,
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
        _check_record_scope(scope, before, actor, "delete")
        released = _delete(collection, record_id, before, actor, set(), address)
    remove_unreferenced(files_dir, released)


# How many referring ids a refusal names, and how many referring rows a cascade reads at a time.
SHOWN_REFERRERS = 10
CASCADE_BATCH = 1000


def _referrer_ids(other: CollectionDef, spec: Any, record_id: int, after: int, limit: int) -> list[int]:
    rows = database.execute_sql(
        f"SELECT id FROM {quote(other.table)} WHERE {quote(spec.name)} = ? AND id > ? ORDER BY id LIMIT ?",
        (record_id, after, limit),
    ).fetchall()
    return [r[0] for r in rows]


def _cascade_refused(other: CollectionDef, spec: Any, record_id: int, actor: Any) -> bool:
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
    actor: Any,
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
    changes = {k: [pair[1], None] for k, pair in _changes(collection, {}, before).items()}
    write_version(collection.name, record_id, "delete", actor, dict(before), changes)
    _audit("record.deleted", collection, record_id, actor, changes, address)
    return released


def restore_version(
    collection_name: str,
    record_id: int,
    version: int,
    actor: Any,
    *,
    files_dir: Path | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Bring back version ``version`` of a record as a new version; returns the record.

    A live record needs update permission (own records only, when so
    limited); a deleted record may be restored by admins only, with its id.
    Fields added since take their current value (or default), fields removed
    since are ignored; a file whose content is gone comes back empty.
    Raises :class:`NotFound`, :class:`PermissionDenied`,
    :class:`ValidationFailed` or :class:`Conflict` (a unique value taken since,
    or the record deleted or brought back by someone else meanwhile).
    """
    collection = get_visible_collection(collection_name, actor)
    snapshot_row = get_version(collection.name, record_id, version)
    snapshot = json.loads(snapshot_row.data)
    values: dict[str, Any] = {}
    files: dict[str, Any] = {}
    for spec in collection.fields:
        if spec.read_only or spec.name not in snapshot:
            continue
        if spec.type == "file":
            value = snapshot[spec.name]
            present = (
                isinstance(value, dict) and files_dir is not None and blob_path(files_dir, value["sha256"]).exists()
            )
            files[spec.name] = value if present else None
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
        _check_record_scope(scope, before, actor, "change")
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
            changes = _changes(collection, {}, saved)
            write_version(collection.name, record_id, "restore", actor, saved, changes)
            _audit("record.restored", collection, record_id, actor, changes, address)
        else:
            scope = require_access(collection, actor, "update")
            _check_record_scope(scope, current, actor, "change")
            if current != before:
                computed = _compute(collection, {**current, **cleaned})
            released = _apply_update(collection, record_id, current, cleaned, computed, actor, "restore", address)
            saved = fetch_values(collection, record_id) or {}
    remove_unreferenced(files_dir, released)
    return serialize_record(collection, saved)


def get_record_file(collection_name: str, record_id: int, field_name: str, filename: str, actor: Any) -> dict:
    """The stored file value of a record's file field, if ``actor`` may view the record and the name matches.

    Returns ``{"name", "size", "type", "sha256"}``; raises :class:`NotFound` otherwise.
    """
    collection = get_visible_collection(collection_name, actor)
    spec = collection.field(field_name)
    values = load_record(collection, record_id, actor)
    value = values.get(field_name) if spec is not None and spec.type == "file" else None
    if not value or value.get("name") != filename:
        raise NotFound("No such file.")
    return value


__all__ = [
    "create_record",
    "delete_record",
    "fetch_values",
    "get_collection",
    "get_record",
    "get_record_file",
    "load_record",
    "restore_version",
    "serialize_record",
    "update_record",
]
