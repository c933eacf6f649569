"""Restore: all or nothing, refused for bad archives, newer schemas and running servers; survives a kill."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from appliance.backups.archive import create_backup
from appliance.backups.catalogue import list_backups
from appliance.backups.format import MANIFEST
from appliance.backups.restore import recover_interrupted_restore, restore_backup
from appliance.config.home import Paths
from appliance.errors import BadRequest, Conflict
from appliance.server.run_files import HomeLock
from appliance.storage.migrate import code_schema_version
from tests.appliance.backup_helpers import copy_archive, init_home_one_migration_behind
from tests.conftest import REPO, clean_env, start_server


def set_marker(home: Path, value: str) -> str:
    """Make ``value`` the state of the home: a row in the database, and the only uploaded file, which a
    record refers to (as uploads are stored: content-addressed). Returns the file's archive member name."""
    digest = hashlib.sha256(value.encode()).hexdigest()
    shutil.rmtree(home / "files")
    (home / "files" / digest[:2]).mkdir(parents=True)
    (home / "files" / digest[:2] / digest).write_text(value)
    con = sqlite3.connect(home / "db" / "appliance.sqlite3", timeout=30)
    with con:
        con.execute(
            "INSERT OR REPLACE INTO runtime_setting (key, value, updated_at) VALUES ('marker', ?, '2026-01-01')",
            (value,),
        )
        con.execute("DELETE FROM file_ref")
        con.execute(
            "INSERT INTO file_ref (sha256, collection, record_id, field) VALUES (?, 'notes', 1, 'scan')", (digest,)
        )
    con.close()
    return f"files/{digest[:2]}/{digest}"


def state(home: Path) -> tuple[str | None, list[str]]:
    """(marker in the database, contents of every file in the files folder)."""
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    try:
        row = con.execute("SELECT value FROM runtime_setting WHERE key='marker'").fetchone()
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    contents = sorted(p.read_text() for p in (home / "files").rglob("*") if p.is_file())
    return (row[0] if row else None, contents)


OLD = ("old", ["old"])
NEW = ("new", ["new"])


@pytest.fixture
def archived_home(home: Path) -> tuple[Path, Path]:
    """A home whose state 'new' is in an archive, and whose live state is now 'old'."""
    set_marker(home, "new")
    archive = create_backup(Paths(home)).path
    set_marker(home, "old")
    return home, archive


def test_restore_brings_back_the_archived_database_and_files_and_keeps_a_safety_backup(archived_home):
    home, archive = archived_home
    outcome = restore_backup(Paths(home), archive)
    assert state(home) == NEW
    assert outcome["safety_backup"].startswith("safety-")
    names = {item["name"] for item in list_backups(Paths(home))}
    assert names == {archive.name, outcome["safety_backup"]}, "a restore forgets no archive"
    assert not (home / ".restore").exists()
    # The safety backup holds the state from before the restore, and restores it.
    restore_backup(Paths(home), home / "backups" / outcome["safety_backup"], safety_backup=False)
    assert state(home) == OLD


def test_restore_refuses_while_a_server_runs_on_the_home(archived_home):
    home, archive = archived_home
    lock = HomeLock(home / "run" / "server.lock")
    assert lock.acquire()
    try:
        with pytest.raises(Conflict, match="server is running"):
            restore_backup(Paths(home), archive)
    finally:
        lock.release()
    assert state(home) == OLD


@pytest.mark.parametrize("damage", ["flip_byte", "missing_member", "edited_manifest", "foreign"])
def test_restore_refuses_a_corrupt_or_foreign_archive_and_changes_nothing(archived_home, tmp_path, damage):
    home, archive = archived_home
    digest = hashlib.sha256(b"new").hexdigest()
    member = f"files/{digest[:2]}/{digest}"
    bad = tmp_path / "bad.zip"
    if damage == "flip_byte":
        data = bytearray(archive.read_bytes())
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo(member)
        data[info.header_offset + 30 + len(info.filename)] ^= 0x55
        bad.write_bytes(bytes(data))
    elif damage == "foreign":
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr(MANIFEST, json.dumps({"format": "something-else"}))
            zf.writestr("db/appliance.sqlite3", b"")
    elif damage == "missing_member":
        copy_archive(archive, bad, drop=member)
    else:
        copy_archive(archive, bad, edit_manifest=lambda data: data.replace(b'"kind": "manual"', b'"kind": "scheduled"'))
    before_backups = sorted(p.name for p in (home / "backups").iterdir())
    with pytest.raises(BadRequest, match="is refused"):
        restore_backup(Paths(home), bad)
    assert state(home) == OLD
    assert sorted(p.name for p in (home / "backups").iterdir()) == before_backups, "no safety backup either"
    assert not (home / ".restore").exists()


def test_restore_refuses_an_archive_from_a_newer_schema_version(home):
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    with con:
        con.execute("INSERT INTO schema_migration (name, applied) VALUES ('9999_from_the_future', '2030-01-01')")
    con.close()
    archive = create_backup(Paths(home)).path
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    with con:
        con.execute("DELETE FROM schema_migration WHERE name='9999_from_the_future'")
    con.close()
    with pytest.raises(BadRequest, match="newer version"):
        restore_backup(Paths(home), archive)


def test_restore_of_an_older_archive_runs_the_missing_migrations(home, tmp_path):
    old_home = tmp_path / "old-home"
    names = init_home_one_migration_behind(old_home)
    archive = create_backup(Paths(old_home)).path
    outcome = restore_backup(Paths(home), archive, accept_foreign=True)  # written by another home
    assert outcome["migrations_applied"] == [names[-1]]
    assert outcome["schema_version"] == code_schema_version()


_KILLER = """
import os, signal, sys
from pathlib import Path
import appliance.backups.restore as restore
from appliance.config.home import Paths
step = sys.argv[3]
restore.on_step = lambda name: os.kill(os.getpid(), signal.SIGKILL) if name == step else None
restore.restore_backup(Paths(Path(sys.argv[1])), Path(sys.argv[2]))
print("finished without being killed")
"""

STEPS_BEFORE_COMMIT = ["verified", "safety-backup", "staged", "migrated"]
STEPS_AFTER_COMMIT = [
    "committed",
    "moved-old-db",
    "moved-new-db",
    "moved-old-files",
    "moved-new-files",
    "uncommitted",
    "swapped",
]


def kill_restore_at(home: Path, archive: Path, step: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _KILLER, str(home), str(archive), step],
        env=clean_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9, done.stdout + done.stderr


@pytest.mark.parametrize("step", STEPS_BEFORE_COMMIT + STEPS_AFTER_COMMIT)
def test_a_restore_killed_at_any_step_leaves_the_old_or_the_new_state_never_a_mix(archived_home, step):
    home, archive = archived_home
    kill_restore_at(home, archive, step)
    recover_interrupted_restore(Paths(home))
    expected = OLD if step in STEPS_BEFORE_COMMIT else NEW
    assert state(home) == expected
    assert not (home / ".restore").exists()


def test_a_server_started_after_a_restore_was_killed_serves_the_restored_state(archived_home):
    home, archive = archived_home
    kill_restore_at(home, archive, "moved-new-db")
    assert (home / ".restore" / "COMMIT").exists()
    server = start_server(home, workers=1)
    try:
        assert server.get("/readyz").status_code == 200
    finally:
        server.stop()
    assert state(home) == NEW
    assert not (home / ".restore").exists()


def test_restore_during_a_backup_is_refused_as_busy(archived_home):
    from appliance.backups.catalogue import exclusive_operation
    from appliance.errors import Busy

    home, archive = archived_home
    with exclusive_operation(Paths(home), "scheduled backup"), pytest.raises(Busy, match="scheduled backup"):
        restore_backup(Paths(home), archive)
    assert state(home) == OLD


def test_a_migration_that_fails_on_the_restored_database_changes_nothing_and_says_why(home, tmp_path):
    import peewee
    from playhouse.migrations import Runner

    from appliance.config.home import init_home
    from appliance.errors import RestoreFailed
    from appliance.storage.migrate import MIGRATIONS_DIR

    set_marker(home, "old")
    old_home = tmp_path / "old-home"
    init_home(old_home)
    db_file = old_home / "db" / "appliance.sqlite3"
    db = peewee.SqliteDatabase(str(db_file))
    names = [m.name for m in Runner(db, directory=str(MIGRATIONS_DIR)).status()]
    Runner(db, directory=str(MIGRATIONS_DIR)).up(target=names[-2])
    db.close()
    # Recording any newly applied migration fails in this database, so bringing it up to date fails.
    con = sqlite3.connect(db_file)
    with con:
        con.execute(
            "CREATE TRIGGER no_more_migrations BEFORE INSERT ON schema_migration "
            "BEGIN SELECT RAISE(ABORT, 'this database takes no migration'); END"
        )
    con.close()
    made = create_backup(Paths(old_home))
    assert made.verified
    archive = made.path
    with pytest.raises(RestoreFailed, match=r"up to this version failed .*takes no migration.*nothing was changed"):
        restore_backup(Paths(home), archive, safety_backup=False, accept_foreign=True)
    assert state(home) == OLD
    assert not (home / ".restore").exists()
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    assert names[-1] in {row[0] for row in con.execute("SELECT name FROM schema_migration")}
    con.close()


def test_a_restore_whose_safety_backup_fails_verification_is_refused_unless_told_to_go_on(archived_home):
    from tests.appliance.backups.test_backups import _corrupt_index_page

    home, archive = archived_home
    _corrupt_index_page(home / "db" / "appliance.sqlite3")
    with pytest.raises(Conflict, match="safety backup of the current state failed verification"):
        restore_backup(Paths(home), archive)
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    assert con.execute("SELECT value FROM runtime_setting WHERE key='marker'").fetchone() == ("old",)
    con.close()
    assert [item["status"] for item in list_backups(Paths(home))] == ["failed", "verified"]
    assert restore_backup(Paths(home), archive, safety_backup=False)["safety_backup"] is None
    assert state(home) == NEW
