"""The core, used directly while the server is stopped (first run, offline user and backup work)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import peewee

from appliance.config.home import Instance, Paths, open_instance
from appliance.storage.db import database, open_database


@contextlib.contextmanager
def offline_database(paths: Paths) -> Iterator[Instance]:
    """Open the home and a database connection for this thread; closed again on leaving.

    Only for when no server runs on the home (or for reads): writes while a
    server runs go through its API, so its audit and sessions stay coherent.
    """
    instance = open_instance(paths.home)
    db: peewee.Database = database.obj if database.obj is not None else open_database(instance)
    if database.obj is not None and getattr(db, "database", None) != str(paths.database_file):
        db = open_database(instance)
    with db.connection_context():
        yield instance
