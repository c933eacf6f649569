"""Collections: their definitions, their tables, and who may do what with their records.

Each collection is a real table ``c_<name>`` with typed columns (``id``,
``created_at``, ``updated_at``, ``created_by``, ``updated_by`` and one per
field), an index per unique, filterable or relation field, and an external
content FTS5 table ``c_<name>__fts`` over its text fields, kept in step by
triggers (so every write updates it in the same transaction). The ``__``
cannot occur in a collection or field name, so neither the index, its
shadow tables (``c_<name>__fts_data`` ...) nor its triggers can ever take
the name of another collection's table, and no field can take the index's
own (hidden) column name. Saving a
definition migrates that table inside one transaction: a change that
existing rows violate is refused with the rows named, and nothing changes.

Permissions are per role: ``{"editor": ["view", "create", "update:own"]}``.
An action may be limited to records the user created with ``:own``; admins
may do everything. A role with no permission on a collection is told it does
not exist (404), never that it is forbidden.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from appliance.accounts.roles import role_exists
from appliance.actors import ADMIN_ROLE, is_admin
from appliance.audit import record_event
from appliance.clock import iso, utcnow
from appliance.collections.fields import (
    NAME_RE,
    SEARCHABLE_TYPES,
    Field,
    FieldError,
    from_column,
    match_pattern,
    now_text,
    parse_field,
    to_column,
)
from appliance.collections.formulas import FormulaError, check_formula, evaluate_formula
from appliance.errors import BadRequest, Conflict, NotFound, PermissionDenied, ValidationFailed
from appliance.records.files import remove_unreferenced
from appliance.storage.db import database, write_transaction
from appliance.storage.models import Collection

ACTIONS = ("view", "create", "update", "delete")
MAX_FIELDS = 100
Scope = Literal["all", "own"]


@dataclass
class CollectionDef:
    """A collection's definition as the services use it."""

    name: str
    label: str
    fields: list[Field]
    permissions: dict[str, list[str]]
    row_count: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    _by_name: dict[str, Field] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {f.name: f for f in self.fields}

    @property
    def table(self) -> str:
        return table_name(self.name)

    @property
    def fts_table(self) -> str:
        return fts_table_name(self.name)

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    @property
    def text_fields(self) -> list[Field]:
        """The fields the full-text index covers, in order."""
        return [f for f in self.fields if f.type in SEARCHABLE_TYPES]

    @property
    def computed_fields(self) -> list[Field]:
        return [f for f in self.fields if f.type == "computed"]


def table_name(name: str) -> str:
    return f"c_{name}"


def fts_table_name(name: str) -> str:
    """The full-text index of collection ``name``: ``c_<name>__fts`` (no name holds ``__``, so it collides with none)."""
    return f"c_{name}__fts"


def quote(identifier: str) -> str:
    """An SQL identifier, quoted (names are already restricted to ``[a-z0-9_]``)."""
    return '"' + identifier.replace('"', '""') + '"'


# --- reading definitions ------------------------------------------------------------------------


_PARSED: dict[tuple[str, str], tuple[list[Field], dict[str, list[str]]]] = {}


def _load(row: Collection) -> CollectionDef:
    return _from_values(row.name, row.label, row.fields, row.permissions, row.row_count, row.created_at, row.updated_at)


def _from_values(
    name: str, label: str, fields_json: str, permissions_json: str, row_count: int, created_at: Any, updated_at: Any
) -> CollectionDef:
    # Parsing a definition costs more than reading it; every request needs one, so keep the
    # parsed form per exact JSON text (a changed definition has a different key). The Field
    # objects are shared: callers treat them as read-only.
    key = (fields_json, permissions_json)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = ([parse_field(raw) for raw in json.loads(fields_json)], json.loads(permissions_json))
        if len(_PARSED) > 512:
            _PARSED.clear()
        _PARSED[key] = parsed
    return CollectionDef(
        name=name,
        label=label,
        fields=list(parsed[0]),
        permissions=parsed[1],
        row_count=row_count,
        created_at=created_at,
        updated_at=updated_at,
    )


def get_collection(name: str) -> CollectionDef:
    """The collection called ``name``; raises :class:`NotFound`. No permission check."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise NotFound(f"No collection called {str(name)[:60]!r}.")
    row = database.execute_sql(
        "SELECT name, label, fields, permissions, row_count, created_at, updated_at FROM collection WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        raise NotFound(f"No collection called {name!r}.")
    return _from_values(*row)


def access_scope(collection: CollectionDef, actor: Any, action: str) -> Scope | None:
    """What ``actor`` may do ``action`` on: ``"all"`` records, ``"own"`` (the ones it created) or ``None``."""
    if is_admin(actor):
        return "all"
    granted = collection.permissions.get(getattr(actor, "role", None) or "", [])
    if action in granted:
        return "all"
    if f"{action}:own" in granted:
        return "own"
    return None


def knows_collection(collection: CollectionDef, actor: Any) -> bool:
    """Whether ``actor`` may learn that the collection exists (it has some permission on it)."""
    return any(access_scope(collection, actor, action) for action in ACTIONS)


def get_visible_collection(name: str, actor: Any) -> CollectionDef:
    """The collection, if ``actor`` has any permission on it; else :class:`NotFound`, as if it did not exist."""
    collection = get_collection(name)
    if not knows_collection(collection, actor):
        raise NotFound(f"No collection called {name!r}.")
    return collection


def require_access(collection: CollectionDef, actor: Any, action: str) -> Scope:
    """The scope ``actor`` has for ``action``; raises :class:`NotFound` (unknown to it) or :class:`PermissionDenied`."""
    if not knows_collection(collection, actor):
        raise NotFound(f"No collection called {collection.name!r}.")
    scope = access_scope(collection, actor, action)
    if scope is None:
        raise PermissionDenied(f"You may not {action} records of {collection.label!r}.")
    return scope


def list_collections(actor: Any) -> list[CollectionDef]:
    """The collections ``actor`` may view (admins: all), by name."""
    out = []
    for row in Collection.select().order_by(Collection.name):
        collection = _load(row)
        if access_scope(collection, actor, "view"):
            out.append(collection)
    return out


def hidden_relation_targets(collection: CollectionDef, actor: Any) -> set[str]:
    """The collections that relation fields of ``collection`` point at which ``actor`` may not learn of
    (see :func:`knows_collection`); a definition or document shown to ``actor`` must not name them."""
    if is_admin(actor):
        return set()
    out: set[str] = set()
    for spec in collection.fields:
        target = spec.collection
        if spec.type != "relation" or not target or target == collection.name or target in out:
            continue
        try:
            if not knows_collection(get_collection(target), actor):
                out.add(target)
        except NotFound:
            out.add(target)
    return out


def visible_record_count(collection: CollectionDef, actor: Any) -> int | None:
    """How many records of ``collection`` ``actor`` may view: all of them (the maintained count), only the
    ones it created when limited to its own, ``None`` when it may view none (the total is not its business)."""
    scope = access_scope(collection, actor, "view")
    if scope == "all":
        return collection.row_count
    if scope == "own":
        return database.execute_sql(
            f"SELECT COUNT(*) FROM {quote(collection.table)} WHERE created_by = ?", (getattr(actor, "id", None),)
        ).fetchone()[0]
    return None


def serialize_collection(collection: CollectionDef, actor: Any = None) -> dict[str, Any]:
    """A collection as the API answers it: name, label, fields, permissions, record count, times.

    Given ``actor`` (the caller), it shows only what the caller may know: ``record_count`` is the
    number of records it may view (its own when limited to its own; ``null`` when it may view none),
    and a relation field pointing at a collection it may not learn of has ``"collection": null``.
    Without ``actor`` (internal callers) everything is shown.
    """
    hidden = hidden_relation_targets(collection, actor) if actor is not None else set()
    fields = [f.to_dict() for f in collection.fields]
    for out in fields:
        if out.get("type") == "relation" and out.get("collection") in hidden:
            out["collection"] = None  # never name a collection the caller cannot see
    return {
        "name": collection.name,
        "label": collection.label,
        "fields": fields,
        "permissions": collection.permissions,
        "record_count": visible_record_count(collection, actor) if actor is not None else collection.row_count,
        "created_at": iso(collection.created_at),
        "updated_at": iso(collection.updated_at),
    }


def referencing_fields(name: str) -> list[tuple[CollectionDef, Field]]:
    """Every relation field (of any collection) that points at collection ``name``."""
    out = []
    for row in Collection.select():
        collection = _load(row)
        for spec in collection.fields:
            if spec.type == "relation" and spec.collection == name:
                out.append((collection, spec))
    return out


# --- checking definitions -----------------------------------------------------------------------


def _parse_permissions(raw: Any, errors: dict[str, str]) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors["permissions"] = 'Give permissions as {"role": ["view", "create", "update", "delete"]}.'
        return {}
    out: dict[str, list[str]] = {}
    allowed = set(ACTIONS) | {f"{a}:own" for a in ACTIONS if a != "create"}
    for role, grants in raw.items():
        if not isinstance(role, str) or not role_exists(role):
            errors["permissions"] = f"There is no role called {str(role)[:40]!r}."
            return {}
        if role == ADMIN_ROLE:
            continue  # admins may do everything anyway
        if not isinstance(grants, list) or not all(isinstance(g, str) and g in allowed for g in grants):
            errors["permissions"] = (
                f"Permissions of {role!r} must be a list of view, create, update, delete "
                "(view, update and delete may end in ':own')."
            )
            return {}
        cleaned = []
        for grant in grants:
            action = grant.split(":")[0]
            if grant not in cleaned and not any(g.split(":")[0] == action for g in cleaned):
                cleaned.append(grant)
            elif grant != action and action in cleaned:
                continue  # "view" already grants more than "view:own"
            elif grant == action:
                cleaned = [g for g in cleaned if g.split(":")[0] != action] + [grant]
        out[role] = cleaned
    return out


def _check_fields(raw_fields: Any, errors: dict[str, str], own_name: str) -> list[Field]:
    if not isinstance(raw_fields, list):
        errors["fields"] = "Give the fields as a list of objects."
        return []
    if len(raw_fields) > MAX_FIELDS:
        errors["fields"] = f"A collection has at most {MAX_FIELDS} fields."
        return []
    specs: list[Field] = []
    seen: set[str] = set()
    for position, raw in enumerate(raw_fields):
        label = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else f"#{position + 1}"
        try:
            spec = parse_field(raw)
        except FieldError as exc:
            errors[f"fields.{label}"] = str(exc)
            continue
        if spec.name in seen:
            errors[f"fields.{spec.name}"] = "Two fields have this name."
            continue
        seen.add(spec.name)
        specs.append(spec)
    plain = [s.name for s in specs if s.type != "computed"]
    for spec in specs:
        if spec.type == "computed":
            try:
                check_formula(spec.formula or "", plain)
            except FormulaError as exc:
                errors[f"fields.{spec.name}"] = f"The formula cannot be used: {exc}."
        elif (
            spec.type == "relation"
            and spec.collection != own_name
            and Collection.get_or_none(Collection.name == spec.collection) is None
        ):
            errors[f"fields.{spec.name}"] = f"There is no collection called {spec.collection!r}."
    return specs


def _check_definition(name: str, data: dict[str, Any], *, creating: bool) -> tuple[str, list[Field], dict]:
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - {"name", "label", "fields", "permissions"})
    for key in unknown:
        errors[key] = "Unknown property."
    label = data.get("label", name if creating else None)
    if label is not None and (not isinstance(label, str) or not label.strip() or len(label) > 200):
        errors["label"] = "Give a label of 1 to 200 characters."
    specs = _check_fields(data.get("fields", []), errors, name) if (creating or "fields" in data) else []
    permissions = _parse_permissions(data.get("permissions"), errors)
    if errors:
        raise ValidationFailed(errors)
    return (label.strip() if isinstance(label, str) else label), specs, permissions


# --- table DDL ----------------------------------------------------------------------------------


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


def _create_table(collection: str, specs: list[Field]) -> None:
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


def _rows_named(rows: list[tuple], total: int) -> str:
    ids = ", ".join(str(r[0]) for r in rows[:10])
    more = f" and {total - 10} more" if total > 10 else ""
    return f"records {ids}{more}" if total != 1 else f"record {ids}"


def _offending(table: str, where: str, params: tuple | list = ()) -> str | None:
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


def _pattern_violations(collection: str, old: dict[str, Field], new_specs: list[Field], since: str | None) -> dict:
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
        bad: list[tuple] = []
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


def _check_existing_rows(collection: str, old: dict[str, Field], new_specs: list[Field], errors: dict) -> None:
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


# --- services -----------------------------------------------------------------------------------


def create_collection(data: dict[str, Any], actor: Any) -> CollectionDef:
    """Create a collection and its table from ``{"name", "label", "fields", "permissions"}``.

    Only admins. Raises :class:`PermissionDenied`, :class:`ValidationFailed`
    naming each bad property or field (``fields.<name>``), :class:`Conflict`
    when the name is taken. Audited as ``collection.created``.
    """
    if not is_admin(actor):
        raise PermissionDenied("Only admins may define collections.")
    if not isinstance(data, dict):
        raise BadRequest("Send the collection as a JSON object.")
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or "__" in name:
        raise ValidationFailed(
            {"name": "Use 1 to 50 lower-case letters, digits and _, starting with a letter (no '__')."}
        )
    with write_transaction():
        if Collection.get_or_none(Collection.name == name) is not None:
            raise Conflict(f"A collection called {name!r} exists already.", fields={"name": "This name is taken."})
        label, specs, permissions = _check_definition(name, data, creating=True)
        for spec in specs:
            spec.rename_from = None
        now = utcnow()
        Collection.create(
            name=name,
            label=label,
            fields=json.dumps([s.to_dict() for s in specs]),
            permissions=json.dumps(permissions),
            row_count=0,
            created_at=now,
            updated_at=now,
        )
        _create_table(name, specs)
        record_event(
            "collection.created",
            actor=actor,
            target=f"collection:{name}",
            details={"fields": [s.name for s in specs], "permissions": permissions},
        )
    return get_collection(name)


def update_collection(
    name: str, changes: dict[str, Any], actor: Any, *, files_dir: Path | None = None
) -> CollectionDef:
    """Change a collection's label, permissions and fields; fields changes migrate its table.

    ``changes["fields"]``, when given, is the whole new list: fields missing
    from it are removed (with their data), new names are added, and a field
    with ``"rename_from": "old"`` renames ``old``. A field's type cannot
    change. Everything happens in one transaction; a change that existing
    rows violate (required, unique, choices, min/max, a new or tightened
    ``pattern``, a relation pointed at another collection) raises
    :class:`ValidationFailed` naming the rows, and nothing changes. The
    slow part, checking a new pattern against every stored value, runs
    before the transaction; inside it only rows written meanwhile are
    checked again. A removed file field's stored files that no other record
    refers to are removed from ``files_dir`` after the commit (a renamed one
    keeps its files).
    """
    if not is_admin(actor):
        raise PermissionDenied("Only admins may change collections.")
    if not isinstance(changes, dict):
        raise BadRequest("Send the changes as a JSON object.")
    if "name" in changes and changes["name"] != name:
        raise ValidationFailed({"name": "A collection cannot be renamed."})
    data = {k: v for k, v in changes.items() if k != "name"}
    since: str | None = None
    checked_fields: list[Field] | None = None
    if "fields" in data:
        # Before the write lock: a pattern checked against every stored value may take a while.
        since = now_text()
        checked_fields = get_collection(name).fields
        _, early_specs, _ = _check_definition(name, data, creating=False)
        errors = _pattern_violations(name, {f.name: f for f in checked_fields}, early_specs, None)
        if errors:
            raise ValidationFailed(errors, message="Existing records do not fit the new fields")
    orphaned: list[str] = []
    with write_transaction():
        current = get_collection(name)
        if checked_fields is not None and current.fields != checked_fields:
            since = None  # the definition changed meanwhile: check every row again
        label, specs, permissions = _check_definition(name, data, creating=False)
        new_label = label if "label" in data else current.label
        new_permissions = permissions if "permissions" in data else current.permissions
        new_fields = specs if "fields" in data else current.fields
        field_changes: dict[str, Any] = {}
        if "fields" in data:
            field_changes, orphaned = _migrate_fields(current, new_fields, since)
        for spec in new_fields:
            spec.rename_from = None
        Collection.update(
            label=new_label,
            permissions=json.dumps(new_permissions),
            fields=json.dumps([s.to_dict() for s in new_fields]),
            updated_at=utcnow(),
        ).where(Collection.name == name).execute()
        details: dict[str, Any] = dict(field_changes)
        if new_label != current.label:
            details["label"] = [current.label, new_label]
        if new_permissions != current.permissions:
            details["permissions"] = [current.permissions, new_permissions]
        record_event("collection.updated", actor=actor, target=f"collection:{name}", details=details)
    remove_unreferenced(files_dir, orphaned)
    return get_collection(name)


def _migrate_fields(
    current: CollectionDef, new_specs: list[Field], since: str | None
) -> tuple[dict[str, Any], list[str]]:
    """Migrate the table to ``new_specs``; ``(audit details, digests of stored files no longer referenced)``."""
    old = {f.name: f for f in current.fields}
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
    _check_existing_rows(current.name, old, new_specs, errors)
    for key, message in _pattern_violations(current.name, old, new_specs, since).items():
        errors.setdefault(key, message)
    if errors:
        raise ValidationFailed(errors, message="Existing records do not fit the new fields")

    table = quote(current.table)
    desired = _desired_indexes(current.name, new_specs)
    existing = _existing_indexes(current.name)
    old_desired = _desired_indexes(current.name, current.fields)
    # Drop every index that is not wanted as it is now (also those of renamed or removed columns).
    for index in existing:
        if (
            index not in desired
            or old_desired.get(index) != desired[index]
            or any(index.startswith(f"ix_c_{current.name}__{src}__") for src in renames)
        ):
            database.execute_sql(f"DROP INDEX IF EXISTS {quote(index)}")
    old_texts = [f.name for f in current.text_fields]
    new_texts = [s.name for s in new_specs if s.type in SEARCHABLE_TYPES]
    fts_changes = old_texts != new_texts or bool(renames)
    if fts_changes:
        _drop_fts(current.name)
    for source in removed:
        database.execute_sql(f"ALTER TABLE {table} DROP COLUMN {quote(source)}")
    # Two steps, so that swapping two names cannot collide.
    for source in renames:
        database.execute_sql(f"ALTER TABLE {table} RENAME COLUMN {quote(source)} TO {quote('__tmp_' + source)}")
    for source, target in renames.items():
        database.execute_sql(f"ALTER TABLE {table} RENAME COLUMN {quote('__tmp_' + source)} TO {quote(target)}")
    orphaned = _migrate_file_refs(current.name, old, removed, renames)
    added = []
    for spec in new_specs:
        if spec.rename_from is None and (spec.name not in old or spec.name in renames):
            database.execute_sql(f"ALTER TABLE {table} ADD COLUMN {_column_sql(spec)}")
            added.append(spec.name)
            if spec.default is not None:
                database.execute_sql(f"UPDATE {table} SET {quote(spec.name)} = ?", (to_column(spec, spec.default),))
    existing_now = _existing_indexes(current.name)
    for index, statement in desired.items():
        if index not in existing_now:
            database.execute_sql(statement)
    if fts_changes:
        _create_fts(current.name, new_specs)
    stale = [
        s
        for s in new_specs
        if s.type == "computed"
        and (
            s.name in added or (old.get(s.rename_from or s.name) and old[s.rename_from or s.name].formula != s.formula)
        )
    ]
    _recompute(current.name, new_specs, stale)
    return {"added": added, "removed": removed, "renamed": renames}, orphaned


def _migrate_file_refs(
    collection: str, old: dict[str, Field], removed: list[str], renames: dict[str, str]
) -> list[str]:
    """Keep ``file_ref`` in step with renamed and removed file fields; returns digests no longer referenced."""
    sources = [s for s in renames if old[s].type == "file"]
    # Two steps, as for the columns, so that swapping two file fields' names cannot collide.
    for source in sources:
        database.execute_sql(
            "UPDATE file_ref SET field = ? WHERE collection = ? AND field = ?", ("__tmp_" + source, collection, source)
        )
    for source in sources:
        database.execute_sql(
            "UPDATE file_ref SET field = ? WHERE collection = ? AND field = ?",
            (renames[source], collection, "__tmp_" + source),
        )
    gone = [n for n in removed if old[n].type == "file"]
    if not gone:
        return []
    marks = ", ".join("?" for _ in gone)
    digests = [
        r[0]
        for r in database.execute_sql(
            f"SELECT DISTINCT sha256 FROM file_ref WHERE collection = ? AND field IN ({marks})", (collection, *gone)
        ).fetchall()
    ]
    database.execute_sql(f"DELETE FROM file_ref WHERE collection = ? AND field IN ({marks})", (collection, *gone))
    return [
        d
        for d in digests
        if database.execute_sql("SELECT 1 FROM file_ref WHERE sha256 = ? LIMIT 1", (d,)).fetchone() is None
    ]


def delete_collection(name: str, actor: Any) -> list[str]:
    """Remove a collection, its table, its history and its file references.

    Only admins. Raises :class:`Conflict` while another collection's relation
    field points at it. Returns the sha256 digests of stored files no longer
    referenced (the caller removes them after the commit).
    """
    if not is_admin(actor):
        raise PermissionDenied("Only admins may remove collections.")
    with write_transaction():
        collection = get_collection(name)
        others = [(c.name, f.name) for c, f in referencing_fields(name) if c.name != name]
        if others:
            names = ", ".join(f"{c}.{f}" for c, f in others)
            raise Conflict(f"Other collections still refer to {name!r}: {names}.")
        digests = [
            r[0] for r in database.execute_sql("SELECT DISTINCT sha256 FROM file_ref WHERE collection = ?", (name,))
        ]
        database.execute_sql("DELETE FROM file_ref WHERE collection = ?", (name,))
        database.execute_sql("DELETE FROM record_version WHERE collection = ?", (name,))
        _drop_fts(name)
        database.execute_sql(f"DROP TABLE {quote(collection.table)}")
        Collection.delete().where(Collection.name == name).execute()
        record_event(
            "collection.deleted",
            actor=actor,
            target=f"collection:{name}",
            details={"records": collection.row_count},
        )
        orphaned = [
            d
            for d in digests
            if database.execute_sql("SELECT 1 FROM file_ref WHERE sha256 = ? LIMIT 1", (d,)).fetchone() is None
        ]
    return orphaned
