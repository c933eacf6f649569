"""The ``sqlite_synchronous`` setting: FULL by default (an acknowledged write survives a power cut), NORMAL on request."""

from __future__ import annotations

import pytest

from appliance.config.home import open_instance
from appliance.config.settings import write_settings
from appliance.errors import SettingsError
from appliance.storage.db import database, open_database


def synchronous_of(home) -> int:
    db = open_database(open_instance(home, {}))
    try:
        with db.connection_context():
            return int(db.execute_sql("PRAGMA synchronous").fetchone()[0])
    finally:
        database.initialize(None)


def test_every_connection_commits_with_full_synchronous_by_default(home):
    assert synchronous_of(home) == 2  # FULL


def test_normal_is_a_choice_and_anything_else_is_refused(home):
    write_settings(home / "appliance.toml", {"sqlite_synchronous": "normal"})
    assert synchronous_of(home) == 1  # NORMAL
    with pytest.raises(SettingsError, match="sqlite_synchronous"):
        open_instance(home, {"APPLIANCE_SQLITE_SYNCHRONOUS": "off"})
