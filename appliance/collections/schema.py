"""The table behind a collection: its DDL, indexes, full-text index and triggers, and migrating it.

Each collection is a real table ``c_<name>`` with typed columns (``id``,
``created_at``, ``updated_at``, ``created_by``, ``updated_by`` and one per
field), an index per unique, filterable or relation field, and an external
content FTS5 table ``c_<name>__fts`` over its text fields, kept in step by
triggers (so every write updates it in the same transaction). The ``__``
cannot occur in a collection or field name, so neither the index, its
shadow tables (``c_<name>__fts_data`` ...) nor its triggers can ever take
the name of another collection's table, and no field can take the index's
own (hidden) column name. Migrating a table to new fields happens inside
the caller's transaction: a change that existing rows violate is refused
with the rows named, and nothing changes.

This module knows tables and fields only, not definitions: it takes a
collection's name and its list of :class:`~appliance.collections.fields.Field`.
"""

from __future__ import annotations

import time
from typing import Any

from appliance.collections.fields import Field, from_column, to_column
from appliance.collections.formulas import evaluate_formula
from appliance.collections.types import SEARCHABLE_TYPES
from appliance.collections.values import FieldError, match_pattern
from appliance.errors import ValidationFailed
from appliance.storage.db import database


def table_name(name: str) -> str:
    """The table of collection ``name``: ``c_<name>``."""
    return f"c_{name}"


def fts_table_name(name: str) -> str:
    """The full-text index of collection ``name``: ``c_<name>__fts`` (no name holds ``__``, so it collides with none)."""
    return f"c_{name}__fts"


def quote(identifier: str) -> str:
    """An SQL identifier, quoted (names are already restricted to ``[a-z0-9_]``)."""
    return '"' + identifier.replace('"', '""') + '"'


def _column_sql(spec: Field) -> str:
    kind = spec.column_type
    return f"{quote(spec.name)} {kind}".rstrip()


def _index_name(collection: str, spec: Field) -> str:
    return f"ix_c_{collection}__{spec.name}__{'u' if spec.unique else 'i'}"


def _desired_indexes(collection: str, specs: list[Field]) -> dict[str, str]:
    out = {}
    table = quote(table_name(collection))
    for spec in specs:
        if spec.unique or spec.indexed:
            index = _index_name(collection, spec)
            unique = "UNIQUE " if spec.unique else ""
            out[index] = f"CREATE {unique}INDEX {quote(index)} ON {table} ({quote(spec.name)})"
    return out


def _existing_indexes(collection: str) -> set[str]:
    rows = database.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name LIKE 'ix_c_%'",
        (table_name(collection),),
    ).fetchall()
    return {r[0] for r in rows}


def _drop_fts(collection: str) -> None:
    fts = fts_table_name(collection)
    for suffix in ("ai", "ad", "au"):
        database.execute_sql(f"DROP TRIGGER IF EXISTS {quote(f'{fts}_{suffix}')}")
    database.execute_sql(f"DROP TABLE IF EXISTS {quote(fts)}")


def _create_fts(collection: str, specs: list[Field]) -> None:
    """The FTS5 index over the text fields, its triggers, and its content rebuilt from the table."""
    texts = [s.name for s in specs if s.type in SEARCHABLE_TYPES]
    if not texts:
        return
    table = table_name(collection)
    fts_name = fts_table_name(collection)
    fts = quote(fts_name)
    cols = ", ".join(quote(n) for n in texts)
    new_vals = ", ".join(f"new.{quote(n)}" for n in texts)
    old_vals = ", ".join(f"old.{quote(n)}" for n in texts)
    database.execute_sql(
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content={quote(table)}, content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    database.execute_sql(
        f"CREATE TRIGGER {quote(fts_name + '_ai')} AFTER INSERT ON {quote(table)} BEGIN "
        f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new_vals}); END"
    )
    database.execute_sql(
        f"CREATE TRIGGER {quote(fts_name + '_ad')} AFTER DELETE ON {quote(table)} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old_vals}); END"
    )
    watched = ", ".join(quote(n) for n in texts)
    database.execute_sql(
        f"CREATE TRIGGER {quote(fts_name + '_au')} AFTER UPDATE OF {watched} ON {quote(table)} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old_vals}); "
        f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new_vals}); END"
    )
    database.execute_sql(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def create_table(collection: str, specs: list[Field]) -> None:
    """Create the table of a new collection with its indexes and full-text index."""
    table = quote(table_name(collection))
    columns = [
        "id INTEGER PRIMARY KEY AUTOINCREMENT",  # ids never come back, so a deleted record can be restored as it was
        "created_at TEXT NOT NULL",
        "updated_at TEXT NOT NULL",
        "created_by INTEGER",
        "updated_by INTEGER",
        *(_column_sql(s) for s in specs),
    ]
    database.execute_sql(f"CREATE TABLE {table} ({', '.join(columns)})")
    database.execute_sql(f"CREATE INDEX {quote(f'ix_{table_name(collection)}_created_by')} ON {table} (created_by)")
    database.execute_sql(f"CREATE INDEX {quote(f'ix_{table_name(collection)}_created_at')} ON {table} (created_at)")
    for statement in _desired_indexes(collection, specs).values():
        database.execute_sql(statement)
    _create_fts(collection, specs)


def _recompute(collection: str, specs: list[Field], which: list[Field]) -> None:
    """Store the value of each computed field in ``which`` on every row (after a formula changed)."""
    if not which:
        return
    table = quote(table_name(collection))
    names = [s.name for s in specs if s.type != "computed"]
    select = ", ".join(["id", *(quote(n) for n in names)]) if names else "id"
    plain = {s.name: s for s in specs if s.type != "computed"}
    sets = ", ".join(f"{quote(s.name)} = ?" for s in which)
    cursor = database.execute_sql(f"SELECT {select} FROM {table}")
    updates = []
    for row in cursor.fetchall():
        values = {n: from_column(plain[n], v) for n, v in zip(names, row[1:], strict=True)}
        updates.append([*(evaluate_formula(s.formula or "", values) for s in which), row[0]])
    for params in updates:
        database.execute_sql(f"UPDATE {table} SET {sets} WHERE id = ?", params)


def _rows_named(rows: list[tuple[Any, ...]], total: int) -> str:
    ids = ", ".join(str(r[0]) for r in rows[:10])
    more = f" and {total - 10} more" if total > 10 else ""
    return f"records {ids}{more}" if total != 1 else f"record {ids}"


def _offending(table: str, where: str, params: tuple[Any, ...] | list[Any] = ()) -> str | None:
    """The rows of ``table`` matching ``where``, named (first ten ids and how many more), or ``None``."""
    rows = database.execute_sql(f"SELECT id FROM {table} WHERE {where} ORDER BY id LIMIT 11", params).fetchall()
    if not rows:
        return None
    total = len(rows)
    if total > 10:
        total = database.execute_sql(f"SELECT COUNT(*) FROM {table} WHERE {where}", params).fetchone()[0]
    return _rows_named(rows, total)


# A pattern change is checked against every stored value, each under the pattern's time bound,
# and all of them together under this one (seconds); a pattern too slow for the rows is refused.
PATTERN_CHECK_BUDGET = 5.0


def pattern_violations(
    collection: str, old: dict[str, Field], new_specs: list[Field], since: str | None
) -> dict[str, str]:
    """Errors for fields whose new or tightened ``pattern`` stored values (changed at/after ``since``) break.

    Reads only; runs before the write transaction for all rows, and inside it
    (with ``since``) for the few rows written in between.
    """
    errors: dict[str, str] = {}
    table = quote(table_name(collection))
    deadline = time.monotonic() + PATTERN_CHECK_BUDGET
    for spec in new_specs:
        before = old.get(spec.rename_from or spec.name)
        if before is None or spec.pattern is None or spec.pattern == before.pattern or before.type != spec.type:
            continue
        column = quote(before.name)
        where = f"{column} IS NOT NULL" + (" AND updated_at >= ?" if since else "")
        cursor = database.execute_sql(
            f"SELECT id, {column} FROM {table} WHERE {where} ORDER BY id", [since] if since else []
        )
        bad: list[tuple[Any, ...]] = []
        slow = False
        for row_id, value in cursor:
            try:
                if not match_pattern(spec.pattern, str(value)):
                    bad.append((row_id,))
            except FieldError:
                bad.append((row_id,))
            if time.monotonic() > deadline:
                slow = True
                break
        if slow:
            errors[f"fields.{spec.name}"] = (
                "This pattern takes too long to check against the existing records; simplify it."
            )
        elif bad:
            errors[f"fields.{spec.name}"] = f"Cannot set this pattern: {_rows_named(bad, len(bad))} do not match it."
    return errors


def drop_table(collection: str) -> None:
    """Drop the table of a removed collection and its full-text index."""
    _drop_fts(collection)
    database.execute_sql(f"DROP TABLE {quote(table_name(collection))}")


def _check_existing_rows(
    collection: str, old: dict[str, Field], new_specs: list[Field], errors: dict[str, str]
) -> None:
    """Refuse option changes that rows already there would violate, naming those rows."""
    table = quote(table_name(collection))
    for spec in new_specs:
        source = spec.rename_from if spec.rename_from else spec.name
        before = old.get(source)
        column = quote(source) if before else None
        key = f"fields.{spec.name}"
        if spec.type == "computed":
            continue
        if before is None:
            if spec.required and spec.default is None:
                named = _offending(table, "1")
                if named:
                    errors[key] = f"A new required field needs a default: {named} would have none."
            continue
        if spec.required and not before.required:
            named = _offending(table, f"{column} IS NULL")
            if named:
                errors[key] = f"Cannot make this field required: {named} have no value."
        if spec.unique and not before.unique:
            named = _offending(
                table,
                f"{column} IN (SELECT {column} FROM {table} WHERE {column} IS NOT NULL "
                f"GROUP BY {column} HAVING COUNT(*) > 1)",
            )
            if named:
                errors[key] = f"Cannot make this field unique: {named} share values."
        if spec.type == "select" and spec.choices is not None:
            marks = ", ".join("?" for _ in spec.choices)
            named = _offending(table, f"{column} IS NOT NULL AND {column} NOT IN ({marks})", spec.choices)
            if named:
                errors[key] = f"Cannot remove choices still in use: {named}."
        if spec.type == "relation" and spec.collection != before.collection:
            target = quote(table_name(spec.collection or ""))
            if spec.collection == collection:
                target = table
            named = _offending(table, f"{column} IS NOT NULL AND {column} NOT IN (SELECT id FROM {target})")
            if named:
                errors[key] = f"Cannot point this field at {spec.collection!r}: {named} refer to ids it does not have."
        for bound, op in (("min", "<"), ("max", ">")):
            limit = getattr(spec, bound)
            if limit is None or limit == getattr(before, bound):
                continue
            expr = f"length({column})" if spec.type in ("text", "long_text", "email", "url") else column
            if spec.type in ("text", "long_text", "email", "url", "integer", "number", "date", "datetime"):
                named = _offending(table, f"{column} IS NOT NULL AND {expr} {op} ?", (limit,))
                if named:
                    errors[key] = f"Cannot set '{bound}' to {limit}: {named} fall outside it."


def migrate_table(collection: str, fields: list[Field], new_specs: list[Field], since: str | None) -> dict[str, Any]:
    """Migrate the table of ``collection`` from ``fields`` to ``new_specs``; returns the audit details
    ``{"added": [...], "removed": [...], "renamed": {old: new}}``.

    Call inside the write transaction. Raises :class:`ValidationFailed` for a
    rename that cannot be, a changed type, or existing rows that break a new
    option (checking only rows written at or after ``since`` for a new
    pattern, when given: the caller checked the others before).
    """
    old = {f.name: f for f in fields}
    errors: dict[str, str] = {}
    renames: dict[str, str] = {}
    for spec in new_specs:
        if spec.rename_from and spec.rename_from != spec.name:
            if spec.rename_from not in old:
                errors[f"fields.{spec.name}"] = f"There is no field {spec.rename_from!r} to rename."
            elif spec.name in old and not any(s.rename_from == spec.name for s in new_specs):
                errors[f"fields.{spec.name}"] = "A field with this name exists already."
            else:
                renames[spec.rename_from] = spec.name
        elif spec.rename_from == spec.name:
            spec.rename_from = None
    for spec in new_specs:
        before = old.get(spec.rename_from or spec.name)
        if spec.rename_from is None and spec.name in renames:
            before = None
        if before is not None and before.type != spec.type:
            errors[f"fields.{spec.name}"] = (
                f"A field's type cannot change ({before.type} to {spec.type}); add a new field and remove the old one."
            )
    if errors:
        raise ValidationFailed(errors, message="The fields cannot be changed")
    kept_sources = {spec.rename_from or spec.name for spec in new_specs if spec.rename_from or spec.name in old}
    removed = [n for n in old if n not in kept_sources]
    _check_existing_rows(collection, old, new_specs, errors)
    for key, message in pattern_violations(collection, old, new_specs, since).items():
        errors.setdefault(key, message)
    if errors:
        raise ValidationFailed(errors, message="Existing records do not fit the new fields")

    table = quote(table_name(collection))
    desired = _desired_indexes(collection, new_specs)
    existing = _existing_indexes(collection)
    old_desired = _desired_indexes(collection, fields)
    # Drop every index that is not wanted as it is now (also those of renamed or removed columns).
    for index in existing:
        if (
            index not in desired
            or old_desired.get(index) != desired[index]
            or any(index.startswith(f"ix_c_{collection}__{src}__") for src in renames)
        ):
            database.execute_sql(f"DROP INDEX IF EXISTS {quote(index)}")
    old_texts = [f.name for f in fields if f.type in SEARCHABLE_TYPES]
    new_texts = [s.name for s in new_specs if s.type in SEARCHABLE_TYPES]
    fts_changes = old_texts != new_texts or bool(renames)
    if fts_changes:
        _drop_fts(collection)
    for source in removed:
        database.execute_sql(f"ALTER TABLE {table} DROP COLUMN {quote(source)}")
    # Two steps, so that swapping two names cannot collide.
    for source in renames:
        database.execute_sql(f"ALTER TABLE {table} RENAME COLUMN {quote(source)} TO {quote('__tmp_' + source)}")
    for source, target in renames.items():
        database.execute_sql(f"ALTER TABLE {table} RENAME COLUMN {quote('__tmp_' + source)} TO {quote(target)}")
    added = []
    for spec in new_specs:
        if spec.rename_from is None and (spec.name not in old or spec.name in renames):
            database.execute_sql(f"ALTER TABLE {table} ADD COLUMN {_column_sql(spec)}")
            added.append(spec.name)
            if spec.default is not None:
                database.execute_sql(f"UPDATE {table} SET {quote(spec.name)} = ?", (to_column(spec, spec.default),))
    existing_now = _existing_indexes(collection)
    for index, statement in desired.items():
        if index not in existing_now:
            database.execute_sql(statement)
    if fts_changes:
        _create_fts(collection, new_specs)
    stale = [
        s
        for s in new_specs
        if s.type == "computed"
        and (
            s.name in added or (old.get(s.rename_from or s.name) and old[s.rename_from or s.name].formula != s.formula)
        )
    ]
    _recompute(collection, new_specs, stale)
    return {"added": added, "removed": removed, "renamed": renames}
