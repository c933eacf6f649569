"""How much data a collection's fields hold: what an admin sees before a destructive change."""

from __future__ import annotations

from appliance.collections.definitions import CollectionDef
from appliance.collections.schema import quote
from appliance.storage.db import database


def field_value_counts(collection: CollectionDef) -> dict[str, int]:
    """For each field, how many records have a value in it (one query over the table)."""
    if not collection.fields:
        return {}
    counts = ", ".join(f"COUNT({quote(f.name)})" for f in collection.fields)
    row = database.execute_sql(f"SELECT {counts} FROM {quote(collection.table)}").fetchone()
    return {f.name: int(n or 0) for f, n in zip(collection.fields, row, strict=True)}


def record_count(collection: CollectionDef) -> int:
    """How many records the collection holds now."""
    return int(database.execute_sql(f"SELECT COUNT(*) FROM {quote(collection.table)}").fetchone()[0])
