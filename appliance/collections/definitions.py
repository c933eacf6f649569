"""Collection definitions: reading, checking and saving them (name, label, fields, permissions).

A definition is a row of the ``collection`` table, its fields and
permissions as JSON. Saving one also creates, migrates or drops the
collection's table (:mod:`appliance.collections.schema`) in the same
transaction: a change that existing rows violate is refused with the rows
named, and nothing changes. Who may see and change the records is
:mod:`appliance.collections.access`.

Permissions are per role: ``{"editor": ["view", "create", "update:own"]}``.
An action may be limited to records the user created with ``:own``; admins
may do everything. Under the key ``"fields"`` they may also hold field rules
per role, ``{"viewer": {"hidden": ["salary"]}, "editor": {"read_only":
["salary"]}}`` (what they mean is :func:`appliance.collections.access.field_rules`);
a renamed field keeps its rules, a removed one loses them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.accounts.roles import role_exists
from appliance.actors import ADMIN_ROLE, ActorLike, is_admin
from appliance.audit import record_event
from appliance.clock import utcnow
from appliance.collections.field_rules import FIELD_RULES_KEY, carry_field_rules, parse_field_rules
from appliance.collections.fields import NAME_RE, Field, parse_field
from appliance.collections.formulas import FormulaError, check_formula
from appliance.collections.schema import (
    create_table,
    drop_table,
    fts_table_name,
    migrate_table,
    pattern_violations,
    table_name,
)
from appliance.collections.types import SEARCHABLE_TYPES
from appliance.collections.values import FieldError, now_text
from appliance.errors import BadRequest, Conflict, NotFound, PermissionDenied, ValidationFailed
from appliance.storage.blobs import (
    drop_collection_refs,
    drop_field_refs,
    remove_unreferenced,
    rename_field_refs,
)
from appliance.storage.db import database, write_transaction
from appliance.storage.models import Collection

ACTIONS = ("view", "create", "update", "delete")
MAX_FIELDS = 100


@dataclass
class CollectionDef:
    """A collection's definition as the services use it."""

    name: str
    label: str
    fields: list[Field]
    permissions: dict[str, Any]
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


# --- reading definitions ------------------------------------------------------------------------


_PARSED: dict[tuple[str, str], tuple[list[Field], dict[str, Any]]] = {}


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


def all_collections() -> Iterator[CollectionDef]:
    """Every collection, by name (no permission check)."""
    for row in Collection.select().order_by(Collection.name):
        yield _load(row)


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


def _parse_permissions(raw: Any, errors: dict[str, str], field_names: list[str] | None) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors["permissions"] = 'Give permissions as {"role": ["view", "create", "update", "delete"]}.'
        return {}
    out: dict[str, Any] = {}
    allowed = set(ACTIONS) | {f"{a}:own" for a in ACTIONS if a != "create"}
    for role, grants in raw.items():
        if role == FIELD_RULES_KEY:
            continue
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
        cleaned: list[str] = []
        for grant in grants:
            action = grant.split(":")[0]
            if grant not in cleaned and not any(g.split(":")[0] == action for g in cleaned):
                cleaned.append(grant)
            elif grant != action and action in cleaned:
                continue  # "view" already grants more than "view:own"
            elif grant == action:
                cleaned = [g for g in cleaned if g.split(":")[0] != action] + [grant]
        out[role] = cleaned
    if FIELD_RULES_KEY in raw:
        rules = parse_field_rules(raw[FIELD_RULES_KEY], errors, field_names or [])
        if rules:
            out[FIELD_RULES_KEY] = rules
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


def _check_definition(
    name: str, data: dict[str, Any], *, creating: bool, current: list[Field] | None = None
) -> tuple[str | None, list[Field], dict[str, Any]]:
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - {"name", "label", "fields", "permissions"})
    for key in unknown:
        errors[key] = "Unknown property."
    label = data.get("label", name if creating else None)
    if ("label" in data or label is not None) and (not isinstance(label, str) or not label.strip() or len(label) > 200):
        errors["label"] = "Give a label of 1 to 200 characters."
    specs = _check_fields(data.get("fields", []), errors, name) if (creating or "fields" in data) else []
    # Field rules name the fields the definition will have: the new ones when given, else the current ones.
    field_names = [s.name for s in (specs if (creating or "fields" in data) else (current or []))]
    permissions = _parse_permissions(data.get("permissions"), errors, field_names)
    if errors:
        raise ValidationFailed(errors)
    return (label.strip() if isinstance(label, str) else label), specs, permissions


# --- services -----------------------------------------------------------------------------------


def create_collection(data: dict[str, Any], actor: ActorLike) -> CollectionDef:
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
        create_table(name, specs)
        record_event(
            "collection.created",
            actor=actor,
            target=f"collection:{name}",
            details={"fields": [s.name for s in specs], "permissions": permissions},
        )
    return get_collection(name)


def update_collection(
    name: str, changes: dict[str, Any], actor: ActorLike, *, files_dir: Path | None = None
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
        _, early_specs, _ = _check_definition(name, data, creating=False, current=checked_fields)
        errors = pattern_violations(name, {f.name: f for f in checked_fields}, early_specs, None)
        if errors:
            raise ValidationFailed(errors, message="Existing records do not fit the new fields")
    orphaned: list[str] = []
    with write_transaction():
        current = get_collection(name)
        if checked_fields is not None and current.fields != checked_fields:
            since = None  # the definition changed meanwhile: check every row again
        label, specs, permissions = _check_definition(name, data, creating=False, current=current.fields)
        new_label = label if "label" in data else current.label
        new_permissions = permissions if "permissions" in data else current.permissions
        new_fields = specs if "fields" in data else current.fields
        field_changes: dict[str, Any] = {}
        if "fields" in data:
            field_changes = migrate_table(current.name, current.fields, new_fields, since)
            orphaned = _migrate_file_refs(current, field_changes)
            if "permissions" not in data:
                new_permissions = carry_field_rules(
                    new_permissions, dict(field_changes["renamed"]), list(field_changes["removed"])
                )
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


def _migrate_file_refs(current: CollectionDef, changes: dict[str, Any]) -> list[str]:
    """Keep ``file_ref`` in step with renamed and removed file fields; returns digests no longer referenced."""
    old = {f.name: f for f in current.fields}
    renames = {s: t for s, t in changes["renamed"].items() if old[s].type == "file"}
    rename_field_refs(current.name, renames)
    return drop_field_refs(current.name, [n for n in changes["removed"] if old[n].type == "file"])


def delete_collection(name: str, actor: ActorLike) -> list[str]:
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
        orphaned = drop_collection_refs(name)
        database.execute_sql("DELETE FROM record_version WHERE collection = ?", (name,))
        drop_table(name)
        Collection.delete().where(Collection.name == name).execute()
        record_event(
            "collection.deleted",
            actor=actor,
            target=f"collection:{name}",
            details={"records": collection.row_count},
        )
    return orphaned
