"""Reading records: a table row as values, one record by id with its permission check, and a record
as the API shows it (file values as name, size, type and download URL, never the digest; without the
fields hidden from the caller, see :func:`appliance.collections.access.field_rules`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote as url_quote

from appliance.actors import ActorLike
from appliance.collections.access import FieldRules, field_rules, get_visible_collection, require_access
from appliance.collections.definitions import CollectionDef
from appliance.collections.fields import SYSTEM_FIELDS, from_column
from appliance.collections.schema import quote
from appliance.collections.values import INT64
from appliance.errors import NotFound, PermissionDenied
from appliance.records.files import public_file_value
from appliance.storage.db import database


def row_to_values(collection: CollectionDef, columns: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
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
    """Where the API serves a record's file (the name quoted as one path segment)."""
    return f"/api/files/{collection}/{record_id}/{field_name}/{url_quote(filename, safe='')}"


def serialize_record(
    collection: CollectionDef,
    values: Mapping[str, Any],
    actor: ActorLike | None = None,
    *,
    rules: FieldRules | None = None,
) -> dict[str, Any]:
    """A record as the API answers it: system fields, then each field in order (files as name/size/type/url).

    Without ``actor`` every field is shown (internal callers: events, webhooks' payloads); with it, the
    fields hidden from ``actor`` are left out. ``rules`` (``field_rules(collection, actor)``, computed once
    by a caller serializing many records) stands in for ``actor``.
    """
    if rules is None:
        rules = field_rules(collection, actor)
    out = {name: values.get(name) for name in SYSTEM_FIELDS}
    for spec in rules.visible(collection.fields):
        value = values.get(spec.name)
        if spec.type == "file" and value is not None:
            value = public_file_value(value, file_url(collection.name, values["id"], spec.name, value.get("name", "")))
        out[spec.name] = value
    return out


def check_record_scope(scope: str, values: Mapping[str, Any], actor: ActorLike, action: str) -> None:
    """Raise :class:`PermissionDenied` when ``scope`` is ``"own"`` and ``actor`` did not create the record."""
    if scope == "own" and values.get("created_by") != getattr(actor, "id", None):
        raise PermissionDenied(f"You may {action} only the records you created.")


def load_record(collection: CollectionDef, record_id: int, actor: ActorLike) -> dict[str, Any]:
    """The stored values of a record ``actor`` may view; :class:`NotFound` otherwise (also when limited to own)."""
    scope = require_access(collection, actor, "view")
    values = fetch_values(collection, record_id)
    if values is None or (scope == "own" and values.get("created_by") != getattr(actor, "id", None)):
        raise NotFound(f"No record {record_id} in {collection.name!r}.")
    return values


def get_record(collection_name: str, record_id: int, actor: ActorLike) -> dict[str, Any]:
    """One record as the API shows it. Raises :class:`NotFound` or :class:`PermissionDenied`."""
    collection = get_visible_collection(collection_name, actor)
    return serialize_record(collection, load_record(collection, record_id, actor), actor)


def get_record_file(
    collection_name: str, record_id: int, field_name: str, filename: str, actor: ActorLike
) -> dict[str, Any]:
    """The stored file value of a record's file field, if ``actor`` may view the record and the name matches.

    Returns ``{"name", "size", "type", "sha256"}``; raises :class:`NotFound` otherwise.
    """
    collection = get_visible_collection(collection_name, actor)
    spec = collection.field(field_name)
    values = load_record(collection, record_id, actor)
    shown = spec is not None and spec.type == "file" and spec.name not in field_rules(collection, actor).hidden
    value: dict[str, Any] | None = values.get(field_name) if shown else None
    if not value or value.get("name") != filename:
        raise NotFound("No such file.")
    return value
