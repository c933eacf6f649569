"""Roles: ``admin``, ``editor`` and ``viewer`` built in, and the custom roles admins add.

A user has exactly one role, by name. Collection permissions grant
view/create/update/delete per role name; admins may do everything. A custom
role may be removed only while no user has it and no collection grants it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import iso, utcnow
from appliance.errors import Conflict, NotFound, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import Collection, Role, User

BUILTIN_ROLES = ("admin", "editor", "viewer")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def role_exists(name: str) -> bool:
    """Whether a role called ``name`` exists (built in or custom)."""
    return bool(name) and Role.select().where(Role.name == name).exists()


def list_roles() -> list[Role]:
    """Every role: the built-in ones first, in their fixed order, then custom ones by name."""
    order = {name: i for i, name in enumerate(BUILTIN_ROLES)}
    return sorted(Role.select(), key=lambda r: (order.get(r.name, len(order)), r.name))


def create_role(name: str, label: str, *, actor: ActorLike | str | None = None, address: str | None = None) -> Role:
    """Add a custom role.

    Raises :class:`ValidationFailed` for a name that is not lower-case letters,
    digits and ``_`` starting with a letter (at most 40), or an empty label;
    :class:`Conflict` when the name is taken.
    """
    name = name.strip() if isinstance(name, str) else ""
    label = label.strip() if isinstance(label, str) else ""
    fields = {}
    if not _NAME.match(name):
        fields["name"] = "Use lower-case letters, digits and _, starting with a letter (at most 40)."
    elif name == "fields":  # the key of a collection's permissions that holds its field rules
        fields["name"] = "This name is reserved; choose another."
    if not label:
        fields["label"] = "Give the role a label."
    elif len(label) > 100:
        fields["label"] = "Use at most 100 characters."
    if fields:
        raise ValidationFailed(fields)
    with database.atomic():
        if role_exists(name):
            raise Conflict(f"A role called '{name}' already exists.", fields={"name": "This name is taken."})
        role = Role.create(name=name, label=label, builtin=False, created_at=utcnow())
        record_event("role.created", actor=actor, target=f"role:{name}", address=address, details={"label": label})
    return role


def collections_granting(name: str) -> list[str]:
    """Names of the collections whose permissions grant something to the role ``name``."""
    granting = []
    for collection in Collection.select(Collection.name, Collection.permissions).order_by(Collection.name):
        try:
            permissions = json.loads(collection.permissions or "{}")
        except ValueError:
            permissions = {}
        field_rules = permissions.get("fields") if isinstance(permissions, dict) else None
        if isinstance(permissions, dict) and (
            name in permissions or (isinstance(field_rules, dict) and name in field_rules)
        ):
            granting.append(collection.name)
    return granting


def delete_role(name: str, *, actor: ActorLike | str | None = None, address: str | None = None) -> None:
    """Remove a custom role that no user has and no collection grants anything to.

    Raises :class:`NotFound`, or :class:`Conflict` for a built-in role, one
    that users still have, or one that collections' permissions still name.
    """
    with database.atomic():
        role = Role.get_or_none(Role.name == name) if isinstance(name, str) else None
        if role is None:
            raise NotFound(f"No role called {str(name)[:40]!r}.")
        if role.builtin:
            raise Conflict(f"The built-in role '{name}' cannot be removed.")
        holders = User.select().where(User.role == name).count()
        if holders:
            raise Conflict(
                f"{holders} user{'s' if holders != 1 else ''} still ha{'ve' if holders != 1 else 's'} "
                f"the role '{name}'; give them another role first."
            )
        granting = collections_granting(name)
        if granting:
            raise Conflict(
                f"The permissions of {', '.join(granting)} still name the role '{name}'; remove it there first."
            )
        role.delete_instance()
        record_event("role.deleted", actor=actor, target=f"role:{name}", address=address)


def serialize_role(role: Role) -> dict[str, Any]:
    return {"name": role.name, "label": role.label, "builtin": role.builtin, "created_at": iso(role.created_at)}
