"""Every SQLite connection is set up the way DESIGN.md says."""

from __future__ import annotations

import threading

import pytest

from appliance.config.home import open_instance
from appliance.errors import SettingsError
from appliance.storage.db import database, make_database


def pragma(name: str):
    return database.execute_sql(f"PRAGMA {name}").fetchone()[0]


def test_a_connection_has_wal_foreign_keys_a_busy_timeout_and_full_sync(instance):
    with database.connection_context():
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == instance.settings.sqlite_busy_timeout_ms
        assert pragma("synchronous") == 2  # FULL, the sqlite_synchronous default


def test_each_thread_gets_its_own_connection(instance):
    seen = []

    def grab():
        with database.connection_context():
            seen.append(database.connection())

    threads = [threading.Thread(target=grab) for _ in range(2)]
    with database.connection_context():
        mine = database.connection()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len({id(c) for c in (mine, *seen)}) == 3  # all three still referenced, so ids are distinct


def test_a_database_url_that_is_not_postgresql_is_refused(home):
    instance = open_instance(home, {"APPLIANCE_DATABASE_URL": "mysql://u:p@h/db"})
    with pytest.raises(SettingsError, match="only PostgreSQL URLs"):
        make_database(instance)
