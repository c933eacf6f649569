"""The starter collections (customers, inventory, orders) and the demo data that ship in ``data/``.

``data/templates/<name>.json`` holds each collection's definition in the
shape ``POST /api/collections`` takes; ``data/demo/<name>.csv`` holds demo
records, orders naming their customer by ``name`` and their item by ``sku``.
Everything goes through the collection and record services, so it is
checked, audited and versioned like any other write.

Both loaders are safe to run again: a collection that exists is left as it
is, and demo records go in only while the three collections hold no records
at all, so nothing is ever duplicated.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.actors import ADMIN_ROLE, Actor, ActorLike
from appliance.collections.definitions import create_collection, get_collection
from appliance.collections.schema import quote, table_name
from appliance.config.home import Instance
from appliance.errors import ApplianceError, Conflict, DemoDataMissing, NotFound, ValidationFailed
from appliance.records.write import create_record
from appliance.storage.db import database, write_transaction
from appliance.storage.models import User

# In dependency order: orders refer to customers and inventory.
STARTER_COLLECTIONS = ("customers", "inventory", "orders")
DISTRIBUTION = "office-appliance"
# Where a regular install puts data/ (pyproject's data-files), relative to the installation's data prefix.
INSTALLED_DATA = ("share", "office-appliance")
# Relation columns of the demo CSVs: each names its record by a key field, (collection, field).
DEMO_LOOKUPS = {"orders": {"customer": ("customers", "name"), "item": ("inventory", "sku")}}


@dataclass
class DemoResult:
    """What a load did: collections created or already there, records inserted per collection, and why not."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)
    skipped_records: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "collections": {"created": self.created, "existing": self.existing},
            "records": self.records,
            "skipped_records": self.skipped_records,
        }


# --- finding data/ ------------------------------------------------------------------------------


def _checkout_data_dir() -> Path | None:
    # A source checkout (also an editable install): data/ sits beside the appliance package.
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "data" / "templates").is_dir():
        return root / "data"
    return None


def _installed_data_dir() -> Path | None:
    # A regular install: the wheel's data files, found through the distribution's own file list
    # (so a venv, a --user or a system install all work, whatever their data prefix).
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files:
        parts = entry.parts
        if parts[-2:] == ("templates", "customers.json") and tuple(parts[-4:-2]) == INSTALLED_DATA:
            return Path(str(entry.locate())).resolve().parent.parent
    return None


def data_dir() -> Path:
    """The product's ``data/`` folder: the checkout's, else the installed copy.

    Raises :class:`DemoDataMissing` when neither exists.
    """
    found = _checkout_data_dir() or _installed_data_dir()
    if found is None:
        raise DemoDataMissing("the starter collections are missing from this installation (no data/ folder found)")
    return found


def read_template(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The definition of starter collection ``name`` as ``POST /api/collections`` takes it."""
    path = (folder or data_dir()) / "templates" / f"{name}.json"
    try:
        definition: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemoDataMissing(f"cannot read the starter collection {path}: {exc}") from None
    return definition


def read_demo_rows(name: str, folder: Path | None = None) -> list[dict[str, str]]:
    """The demo records of collection ``name``, as CSV text values by column."""
    path = (folder or data_dir()) / "demo" / f"{name}.csv"
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise DemoDataMissing(f"cannot read the demo data {path}: {exc}") from None


# --- acting -------------------------------------------------------------------------------------


def default_actor(label: str = "setup") -> ActorLike:
    """Who loads when nobody is named: the first active admin, else the system under ``label`` in the audit log."""
    admin = (
        User.select()
        .where((User.role == ADMIN_ROLE) & (User.active == True))  # noqa: E712 - a peewee expression
        .order_by(User.id)
        .first()
    )
    return admin if admin is not None else Actor(None, ADMIN_ROLE, label)


def _exists(name: str) -> bool:
    try:
        get_collection(name)
    except NotFound:
        return False
    return True


def load_starter_collections(
    instance: Instance | None = None, *, actor: ActorLike | None = None, names: Iterable[str] = STARTER_COLLECTIONS
) -> DemoResult:
    """Create the starter collections that do not exist yet; returns which were created and which existed.

    The database of ``instance`` must be open (the process's database
    proxy); ``instance`` itself is only for the callers' convenience, as the
    first-run wizard passes it. ``actor`` must be an admin; ``None`` means
    :func:`default_actor`. Each collection is created in its own transaction
    (an error leaves the ones before it in place, and a rerun picks up the
    rest). Raises what :func:`create_collection` raises and :class:`DemoDataMissing`.
    """
    del instance  # the open database is the instance's; nothing else of it is needed
    actor = actor if actor is not None else default_actor()
    folder = data_dir()
    result = DemoResult()
    for name in names:
        if _exists(name):
            result.existing.append(name)
            continue
        try:
            create_collection(read_template(name, folder), actor)
        except Conflict:
            result.existing.append(name)  # created meanwhile by someone else: theirs stands
            continue
        result.created.append(name)
    return result


def _record_counts(names: Iterable[str]) -> dict[str, int]:
    return {
        name: database.execute_sql(f"SELECT COUNT(*) FROM {quote(table_name(name))}").fetchone()[0] for name in names
    }


def load_demo(instance: Instance | None = None, *, actor: ActorLike | None = None) -> DemoResult:
    """Create the starter collections (as :func:`load_starter_collections`), then fill them with the demo records.

    The records go in only when all three collections are empty, and all of
    them in one transaction: any record the collections refuse (say a
    same-named collection with other fields was there before) raises
    :class:`ValidationFailed` naming the collection, the row and the fields,
    and no demo record stays. When some collection already holds records,
    none are added and ``skipped_records`` says why.
    """
    actor = actor if actor is not None else default_actor()
    folder = data_dir()
    result = load_starter_collections(instance, actor=actor)
    rows = {name: read_demo_rows(name, folder) for name in STARTER_COLLECTIONS}
    key_fields = _key_fields()
    ids: dict[str, dict[str, int]] = {}  # collection -> key value (a name, a sku) -> record id
    # One transaction, taking the write lock first: the emptiness check holds until the last insert.
    with write_transaction():
        filled = {name: count for name, count in _record_counts(STARTER_COLLECTIONS).items() if count}
        if filled:
            result.skipped_records = "demo records not added: " + ", ".join(
                f"{name} already has {count} record{'s' if count != 1 else ''}" for name, count in filled.items()
            )
            return result
        for name in STARTER_COLLECTIONS:
            for line, row in enumerate(rows[name], start=2):
                try:
                    saved = create_record(name, _resolve(name, row, ids), actor, form=True)
                except ValidationFailed as exc:
                    raise ValidationFailed(exc.fields, message=_misfit(name, line, exc)) from None
                except Conflict as exc:
                    raise Conflict(_misfit(name, line, exc), fields=exc.fields) from None
                if name in key_fields:
                    ids.setdefault(name, {})[str(saved[key_fields[name]])] = saved["id"]
            result.records[name] = len(rows[name])
    return result


def _misfit(name: str, line: int, exc: ApplianceError) -> str:
    details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message
    return f"the demo record on line {line} of {name}.csv does not fit the collection: {details}"


def _resolve(name: str, row: dict[str, str], ids: dict[str, dict[str, int]]) -> dict[str, Any]:
    """A demo row with its relation columns turned from key values into the ids of the records loaded before."""
    values: dict[str, Any] = dict(row)
    for column, (target, key_field) in DEMO_LOOKUPS.get(name, {}).items():
        key = values.get(column) or ""
        if key not in ids.get(target, {}):
            raise ValidationFailed({column: f"no {target} record has {key_field} {key!r}"})
        values[column] = ids[target][key]
    return values


def _key_fields() -> dict[str, str]:
    """The field by which demo rows of other collections name a record of each collection."""
    return {target: key for lookups in DEMO_LOOKUPS.values() for target, key in lookups.values()}
