"""Who may do what with a collection's records, and what of a collection a caller may learn.

Permissions are per role (see :mod:`appliance.collections.definitions`); an
action may be limited to the records the user created (``"own"``); admins
may do everything. A role with no permission on a collection is told it
does not exist (404), never that it is forbidden, and a definition shown to
it never names a collection it may not learn of.

Field rules (:func:`field_rules`) are the one place that says which fields a
role never sees (``hidden``) and which it sees but may not set
(``read_only``); every read, listing, history, CSV, OpenAPI and write path
asks it, so every face obeys the same rules.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from appliance.actors import ActorLike, is_admin
from appliance.clock import iso
from appliance.collections.definitions import (
    ACTIONS,
    CollectionDef,
    all_collections,
    get_collection,
)
from appliance.collections.field_rules import FIELD_RULES_KEY
from appliance.collections.fields import Field
from appliance.collections.schema import quote
from appliance.errors import NotFound, PermissionDenied
from appliance.storage.db import database

Scope = Literal["all", "own"]


def access_scope(collection: CollectionDef, actor: ActorLike, action: str) -> Scope | None:
    """What ``actor`` may do ``action`` on: ``"all"`` records, ``"own"`` (the ones it created) or ``None``."""
    if is_admin(actor):
        return "all"
    role = getattr(actor, "role", None) or ""
    granted = collection.permissions.get(role, []) if role != FIELD_RULES_KEY else []
    if action in granted:
        return "all"
    if f"{action}:own" in granted:
        return "own"
    return None


@dataclass(frozen=True)
class FieldRules:
    """What of a collection's fields one caller may see and set.

    ``hidden`` fields are never shown to it (not in records, lists, search,
    CSV, history, OpenAPI or pages), cannot be filtered, ordered or searched
    by, and are unknown to its writes; ``read_only`` fields are shown, but a
    write that sets one is refused (403 naming it). The two never overlap.
    """

    hidden: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()

    @property
    def unwritable(self) -> frozenset[str]:
        """Every field the caller may not set: the hidden and the read-only ones."""
        return self.hidden | self.read_only

    def visible(self, fields: Iterable[Field]) -> list[Field]:
        """``fields`` without the hidden ones, in order."""
        return [f for f in fields if f.name not in self.hidden]

    def strip(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` (a record, a version's changes) without the hidden fields' keys."""
        return {k: v for k, v in values.items() if k not in self.hidden}


NO_RULES = FieldRules()


@lru_cache(maxsize=1024)
def _formula_names(formula: str) -> frozenset[str]:
    """The names a computed field's formula uses (fields and functions alike; only fields matter here)."""
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return frozenset()
    return frozenset(node.id for node in ast.walk(tree) if isinstance(node, ast.Name))


def field_rules(collection: CollectionDef, actor: ActorLike | None) -> FieldRules:
    """The field rules of ``collection``'s permissions for ``actor``'s role; admins (and internal callers,
    ``actor=None``) have none. A computed field whose formula uses a hidden field is hidden too: its value
    would tell what the hidden one holds."""
    if actor is None or is_admin(actor):
        return NO_RULES
    role = getattr(actor, "role", None) or ""
    raw = (collection.permissions.get(FIELD_RULES_KEY) or {}).get(role) if role != FIELD_RULES_KEY else None
    if not isinstance(raw, dict):
        return NO_RULES
    # Not narrowed to the fields ``collection`` has: the rules of a definition shown without its hidden
    # fields (:func:`visible_definition`) still hide them.
    hidden = {n for n in raw.get("hidden") or () if isinstance(n, str)}
    for spec in collection.computed_fields:
        if spec.name not in hidden and _formula_names(spec.formula or "") & hidden:
            hidden.add(spec.name)
    read_only = {n for n in raw.get("read_only") or () if isinstance(n, str)} - hidden
    if not hidden and not read_only:
        return NO_RULES
    return FieldRules(frozenset(hidden), frozenset(read_only))


def visible_definition(collection: CollectionDef, actor: ActorLike | None) -> CollectionDef:
    """``collection`` as ``actor`` may see it: its hidden fields left out (the same object when none are).

    For showing (pages, OpenAPI, the definition the API answers); writes take the
    collection by name and see every field."""
    rules = field_rules(collection, actor)
    if not rules.hidden:
        return collection
    return dataclasses.replace(collection, fields=rules.visible(collection.fields))


def knows_collection(collection: CollectionDef, actor: ActorLike) -> bool:
    """Whether ``actor`` may learn that the collection exists (it has some permission on it)."""
    return any(access_scope(collection, actor, action) for action in ACTIONS)


def get_visible_collection(name: str, actor: ActorLike) -> CollectionDef:
    """The collection, if ``actor`` has any permission on it; else :class:`NotFound`, as if it did not exist."""
    collection = get_collection(name)
    if not knows_collection(collection, actor):
        raise NotFound(f"No collection called {name!r}.")
    return collection


def require_access(collection: CollectionDef, actor: ActorLike, action: str) -> Scope:
    """The scope ``actor`` has for ``action``; raises :class:`NotFound` (unknown to it) or :class:`PermissionDenied`."""
    if not knows_collection(collection, actor):
        raise NotFound(f"No collection called {collection.name!r}.")
    scope = access_scope(collection, actor, action)
    if scope is None:
        raise PermissionDenied(f"You may not {action} records of {collection.label!r}.")
    return scope


def list_collections(actor: ActorLike) -> list[CollectionDef]:
    """The collections ``actor`` may view (admins: all), by name."""
    return [c for c in all_collections() if access_scope(c, actor, "view")]


def hidden_relation_targets(collection: CollectionDef, actor: ActorLike) -> set[str]:
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


def visible_record_count(collection: CollectionDef, actor: ActorLike) -> int | None:
    """How many records of ``collection`` ``actor`` may view: all of them (the maintained count), only the
    ones it created when limited to its own, ``None`` when it may view none (the total is not its business)."""
    scope = access_scope(collection, actor, "view")
    if scope == "all":
        return collection.row_count
    if scope == "own":
        return int(
            database.execute_sql(
                f"SELECT COUNT(*) FROM {quote(collection.table)} WHERE created_by = ?", (getattr(actor, "id", None),)
            ).fetchone()[0]
        )
    return None


def serialize_collection(collection: CollectionDef, actor: ActorLike | None = None) -> dict[str, Any]:
    """A collection as the API answers it: name, label, fields, permissions, record count, times.

    Given ``actor`` (the caller), it shows only what the caller may know: ``record_count`` is the
    number of records it may view (its own when limited to its own; ``null`` when it may view none),
    and a relation field pointing at a collection it may not learn of has ``"collection": null``.
    The fields hidden from the caller are left out, and a caller other than an admin sees of the field
    rules only its own role's read-only fields (another role's rules would name fields hidden from it).
    Without ``actor`` (internal callers) everything is shown.
    """
    hidden = hidden_relation_targets(collection, actor) if actor is not None else set()
    rules = field_rules(collection, actor)
    fields = [f.to_dict() for f in rules.visible(collection.fields)]
    for out in fields:
        if out.get("type") == "relation" and out.get("collection") in hidden:
            out["collection"] = None  # never name a collection the caller cannot see
    return {
        "name": collection.name,
        "label": collection.label,
        "fields": fields,
        "permissions": _visible_permissions(collection, actor, rules),
        "record_count": visible_record_count(collection, actor) if actor is not None else collection.row_count,
        "created_at": iso(collection.created_at),
        "updated_at": iso(collection.updated_at),
    }


def _visible_permissions(collection: CollectionDef, actor: ActorLike | None, rules: FieldRules) -> dict[str, Any]:
    if actor is None or is_admin(actor) or FIELD_RULES_KEY not in collection.permissions:
        return collection.permissions
    out = {k: v for k, v in collection.permissions.items() if k != FIELD_RULES_KEY}
    if rules.read_only:
        role = getattr(actor, "role", "")
        out[FIELD_RULES_KEY] = {role: {"read_only": [f.name for f in collection.fields if f.name in rules.read_only]}}
    return out
