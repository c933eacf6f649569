"""Schema migrations, run by peewee's own ``playhouse.migrations`` runner.

Migration scripts live in ``appliance/migrations/NNNN_name.py`` and define
``up(migrator, db)``; the runner records what it applied in its own
``schema_migration`` table.
"""

from __future__ import annotations

from pathlib import Path

import peewee
from playhouse.migrations import Migration, Runner

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _runner(db: peewee.Database) -> Runner:
    return Runner(db, directory=str(MIGRATIONS_DIR))


def known_migrations() -> list[Migration]:
    """Every migration this version of the code ships, in order."""
    shipped: list[Migration] = Migration.load_directory(str(MIGRATIONS_DIR))  # playhouse is untyped
    return shipped


def pending_migrations(db: peewee.Database) -> list[str]:
    """Names of the migrations not yet applied to ``db``, in order."""
    return [m.name for m in _runner(db).status() if m.path is not None and not m.applied]


def unknown_migrations(db: peewee.Database) -> list[str]:
    """Migrations recorded in ``db`` that this code does not ship (the database is newer)."""
    return [m.name for m in _runner(db).status() if m.path is None]


def apply_migrations(db: peewee.Database) -> list[str]:
    """Apply every pending migration, each in its own transaction; return their names."""
    applied: list[str] = _runner(db).up()
    return applied


def schema_version(db: peewee.Database) -> int:
    """The number of the newest applied migration (0 for an empty database)."""
    applied = [m.idx for m in _runner(db).status() if m.applied]
    return max(applied, default=0)


def code_schema_version() -> int:
    """The number of the newest migration this code ships."""
    return max((m.idx for m in known_migrations()), default=0)
