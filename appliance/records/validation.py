"""The one validation of a record's values, used by the API and the pages alike.

It comes in two parts, so that a write transaction (which holds SQLite's
one write lock) only does what must be atomic:

- :func:`check_record`, run *before* the transaction: every submitted value
  against its field (type, required, min/max, pattern under a time bound,
  choices, email, url, dates) and the relation targets (they exist and the
  actor may view them), raising :class:`ValidationFailed` (422) naming every
  bad field.
- :func:`recheck_record`, run *inside* the transaction: the relation targets
  again (one may have gone meanwhile) and uniqueness, raising
  :class:`ValidationFailed` or :class:`Conflict` (409).

:func:`validate_record` runs both, for callers that need no split. Nothing
is written here. Messages never name a collection the actor may not see.

The field rules of the actor's role (:func:`appliance.collections.access.field_rules`)
apply here, for every write: a value (or an upload) for a read-only field is
:class:`PermissionDenied` (403) naming the field, and a hidden field is
unknown to the actor, as a field that does not exist ("Unknown field.").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from appliance.collections.access import access_scope, field_rules
from appliance.collections.definitions import CollectionDef, get_collection
from appliance.collections.fields import SYSTEM_FIELDS, coerce_value, to_column
from appliance.collections.schema import quote
from appliance.collections.values import FieldError
from appliance.errors import BadRequest, Conflict, NotFound, PermissionDenied, ValidationFailed
from appliance.storage.db import database

REQUIRED = "This field is required."


def clean_values(
    collection: CollectionDef,
    values: Mapping[str, Any],
    *,
    existing: Mapping[str, Any] | None = None,
    form: bool = False,
    file_fields: Iterable[str] = (),
    unknown: Iterable[str] = (),
) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted values in stored form, and the field errors; no database access.

    For a new record (``existing`` is ``None``) missing fields take their
    default; for a change only the submitted fields are returned. Unknown,
    system and computed fields are errors, and so are the fields named in
    ``unknown`` (hidden from the writer: told apart from no field). ``file_fields``
    names the file fields that get an upload alongside (they count as given for ``required``).
    """
    if not isinstance(values, Mapping):
        raise BadRequest("Send the record as a JSON object of field values.")
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    uploading = set(file_fields)
    hidden = set(unknown)
    for key in values:
        spec = collection.field(key) if isinstance(key, str) and key not in hidden else None
        if spec is None:
            errors[str(key)[:60]] = "This field is read-only." if key in SYSTEM_FIELDS else "Unknown field."
        elif spec.read_only:
            errors[key] = "This field is computed and read-only."
    for spec in collection.fields:
        if spec.read_only or spec.name in errors:
            continue
        if spec.field_type.upload:
            if spec.name in uploading:
                continue
            if spec.name in values:
                if values[spec.name] not in (None, ""):
                    errors[spec.name] = "Upload the file as multipart/form-data (or send null to remove it)."
                    continue
                cleaned[spec.name] = None
            present = cleaned.get(spec.name) if spec.name in values else (existing or {}).get(spec.name)
            if spec.required and present is None:
                errors[spec.name] = REQUIRED
            continue
        if spec.name in values:
            try:
                cleaned[spec.name] = coerce_value(spec, values[spec.name], form=form)
            except FieldError as exc:
                errors[spec.name] = str(exc)
                continue
        elif existing is None:
            cleaned[spec.name] = spec.default
        final = cleaned[spec.name] if spec.name in cleaned else (existing or {}).get(spec.name)
        if spec.required and final is None:
            errors[spec.name] = REQUIRED
    return cleaned, errors


def relation_errors(collection: CollectionDef, cleaned: Mapping[str, Any], actor: Any) -> dict[str, str]:
    """Errors for relation values whose target does not exist or that ``actor`` may not view."""
    errors = {}
    for spec in collection.fields:
        target_id = cleaned.get(spec.name)
        if spec.collection is None or target_id is None:
            continue
        try:
            target = collection if spec.collection == collection.name else get_collection(spec.collection or "")
        except NotFound:
            errors[spec.name] = "The related collection no longer exists."
            continue
        row = database.execute_sql(
            f"SELECT created_by FROM {quote(target.table)} WHERE id = ?", (target_id,)
        ).fetchone()
        scope = access_scope(target, actor, "view")
        if row is None or scope is None or (scope == "own" and row[0] != getattr(actor, "id", None)):
            # Never the target's name or label: the actor may not know that collection exists.
            errors[spec.name] = f"There is no record {target_id} here that you may see."
    return errors


def unique_conflicts(
    collection: CollectionDef, cleaned: Mapping[str, Any], record_id: int | None = None
) -> dict[str, str]:
    """Errors for unique fields whose value another record already has."""
    errors = {}
    for spec in collection.fields:
        value = cleaned.get(spec.name)
        if not spec.unique or value is None:
            continue
        sql = f"SELECT id FROM {quote(collection.table)} WHERE {quote(spec.name)} = ?"
        params: list[Any] = [to_column(spec, value)]
        if record_id is not None:
            sql += " AND id != ?"
            params.append(record_id)
        if database.execute_sql(sql + " LIMIT 1", params).fetchone() is not None:
            errors[spec.name] = "Another record already has this value."
    return errors


def check_record(
    collection: CollectionDef,
    values: Mapping[str, Any],
    *,
    actor: Any,
    existing: Mapping[str, Any] | None = None,
    form: bool = False,
    file_fields: Iterable[str] = (),
) -> dict[str, Any]:
    """``values`` checked and converted, outside any write transaction; raises :class:`ValidationFailed`.

    Returns the values to write (stored form, defaults applied for a new
    record). Reads the relation targets but takes no write lock. Raises
    :class:`PermissionDenied` naming the read-only fields (for ``actor``) given a value or an upload.
    """
    rules = field_rules(collection, actor)
    file_fields = list(file_fields)
    given = [k for k in (*values, *file_fields) if isinstance(k, str)] if isinstance(values, Mapping) else []
    refused = [spec.name for spec in collection.fields if spec.name in rules.read_only and spec.name in given]
    if refused:
        names = ", ".join(repr(n) for n in refused)
        raise PermissionDenied(
            f"You may not set {names}: read-only for you.",
            fields={n: "This field is read-only for you." for n in refused},
        )
    hidden_uploads = [n for n in file_fields if n in rules.hidden]
    cleaned, errors = clean_values(
        collection,
        values,
        existing=existing,
        form=form,
        file_fields=[n for n in file_fields if n not in rules.hidden],
        unknown=rules.hidden,
    )
    errors.update({n: "Unknown field." for n in hidden_uploads})
    errors.update({k: v for k, v in relation_errors(collection, cleaned, actor).items() if k not in errors})
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def recheck_record(
    collection: CollectionDef, cleaned: Mapping[str, Any], *, actor: Any, record_id: int | None = None
) -> None:
    """Inside the write's transaction: relation targets still there, unique values free.

    Raises :class:`ValidationFailed` (a target gone meanwhile) or
    :class:`Conflict` naming the unique fields whose value is taken.
    """
    errors = relation_errors(collection, cleaned, actor)
    if errors:
        raise ValidationFailed(errors)
    taken = unique_conflicts(collection, cleaned, record_id)
    if taken:
        raise Conflict("A unique value is taken" if len(taken) == 1 else "Unique values are taken", fields=taken)


def validate_record(
    collection: CollectionDef,
    values: Mapping[str, Any],
    *,
    actor: Any,
    existing: Mapping[str, Any] | None = None,
    record_id: int | None = None,
    form: bool = False,
    file_fields: Iterable[str] = (),
) -> dict[str, Any]:
    """:func:`check_record` then :func:`unique_conflicts` (:class:`Conflict`), in one call."""
    cleaned = check_record(collection, values, actor=actor, existing=existing, form=form, file_fields=file_fields)
    taken = unique_conflicts(collection, cleaned, record_id)
    if taken:
        raise Conflict("A unique value is taken" if len(taken) == 1 else "Unique values are taken", fields=taken)
    return cleaned
