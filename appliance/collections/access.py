"""Who may do what with a collection's records, and what of a collection a caller may learn.

Permissions are per role (see :mod:`appliance.collections.definitions`); an
action may be limited to the records the user created (``"own"``); admins
may do everything. A role with no permission on a collection is told it
does not exist (404), never that it is forbidden, and a definition shown to
it never names a collection it may not learn of.
"""

from __future__ import annotations

from typing import Any, Literal

from appliance.actors import ActorLike, is_admin
from appliance.clock import iso
from appliance.collections.definitions import ACTIONS, CollectionDef, all_collections, get_collection
from appliance.collections.schema import quote
from appliance.errors import NotFound, PermissionDenied
from appliance.storage.db import database

Scope = Literal["all", "own"]


def access_scope(collection: CollectionDef, actor: ActorLike, action: str) -> Scope | None:
    """What ``actor`` may do ``action`` on: ``"all"`` records, ``"own"`` (the ones it created) or ``None``."""
    if is_admin(actor):
        return "all"
    granted = collection.permissions.get(getattr(actor, "role", None) or "", [])
    if action in granted:
        return "all"
    if f"{action}:own" in granted:
        return "own"
    return None


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
