"""Backups: archive contents, a snapshot taken under concurrent writes, verification, busy, retention, offsite."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import threading
import time
import zipfile
from pathlib import Path

import pytest

from appliance.backups import (
    DB_MEMBER,
    MANIFEST,
    VERIFY_SUFFIX,
    create_backup,
    exclusive_operation,
    list_backups,
    prune_backups,
    verify_archive,
)
from appliance.errors import Busy
from appliance.home import Paths
from appliance.restore import restore_backup
from tests.fakes import FakeClock


def put(home: Path, key: str, value: str = "v") -> None:
    con = sqlite3.connect(home / "db" / "appliance.sqlite3", timeout=30)
    with con:
        con.execute(
            "INSERT OR REPLACE INTO runtime_setting (key, value, updated_at) VALUES (?, ?, '2026-01-01')", (key, value)
        )
    con.close()


def store_file(home: Path, content: bytes, record_id: int = 1) -> str:
    """Store ``content`` the way uploads are stored (content-addressed) and reference it from a record."""
    digest = hashlib.sha256(content).hexdigest()
    (home / "files" / digest[:2]).mkdir(exist_ok=True)
    (home / "files" / digest[:2] / digest).write_bytes(content)
    con = sqlite3.connect(home / "db" / "appliance.sqlite3", timeout=30)
    with con:
        con.execute(
            "INSERT INTO file_ref (sha256, collection, record_id, field) VALUES (?, 'contracts', ?, 'scan')",
            (digest, record_id),
        )
    con.close()
    return f"files/{digest[:2]}/{digest}"


def keys_in(db_file: Path) -> set[str]:
    con = sqlite3.connect(db_file)
    try:
        return {row[0] for row in con.execute("SELECT key FROM runtime_setting")}
    finally:
        con.close()


def test_a_backup_holds_the_database_the_files_and_a_manifest_of_both(home):
    put(home, "greeting", "hello")
    member = store_file(home, b"contract body")
    (home / "files" / "ab").mkdir(exist_ok=True)
    (home / "files" / "ab" / "orphan").write_bytes(b"an upload no record refers to")
    result = create_backup(Paths(home))
    assert result.verified
    assert result.path.parent == home / "backups"
    with zipfile.ZipFile(result.path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read(MANIFEST))
    assert names == {DB_MEMBER, member, MANIFEST}, "only the files referenced at the snapshot"
    assert manifest["row_counts"]["runtime_setting"] == 1
    assert manifest["members"][member]["size"] == len(b"contract body")
    assert manifest["schema_version"] >= 4
    assert manifest["app_version"]
    item = result.item
    assert item["verified"] is True and item["verification"]["integrity_check"] == "ok"
    assert set(item) >= {"name", "size", "created_at", "verified", "verification"}
    assert (home / "backups" / (item["name"] + VERIFY_SUFFIX)).exists()


def test_a_backup_taken_while_another_thread_writes_holds_exactly_the_rows_committed_before_its_snapshot(home):
    db_file = home / "db" / "appliance.sqlite3"
    # Enough pages that the copy takes many steps while the writer runs.
    con = sqlite3.connect(db_file)
    with con:
        con.executemany(
            "INSERT INTO runtime_setting (key, value, updated_at) VALUES (?, ?, '2026-01-01')",
            ((f"seed{i}", "x" * 500) for i in range(6000)),
        )
    con.close()
    committed: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    longest = [0.0]

    def writer() -> None:
        w = sqlite3.connect(db_file, timeout=30, isolation_level=None)
        w.execute("PRAGMA journal_mode=wal")
        i = 0
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            key = f"w{i}"
            began = time.monotonic()
            try:
                w.execute("INSERT INTO runtime_setting (key, value, updated_at) VALUES (?, 'x', '2026-01-01')", (key,))
            except sqlite3.Error as exc:  # a failed write fails the test below
                errors.append(exc)
                break
            longest[0] = max(longest[0], time.monotonic() - began)
            committed.append(key)
            i += 1
        w.close()

    thread = threading.Thread(target=writer)
    thread.start()
    while len(committed) < 50:
        time.sleep(0.01)
    at_snapshot: list[int] = []
    result = create_backup(Paths(home), step_pages=16, on_snapshot=lambda: at_snapshot.append(len(committed)))
    written_during = len(committed) - at_snapshot[0]
    stop.set()
    thread.join()

    assert errors == []
    assert result.verified
    assert written_during > 0, "the writer was blocked for the whole backup"
    restore_backup(Paths(home), result.path, safety_backup=False)
    restored = {k for k in keys_in(home / "db" / "appliance.sqlite3") if k.startswith("w")}
    before = set(committed[: at_snapshot[0]])
    # One write may be in flight when the snapshot is pinned: committed, but not yet noted by the writer.
    assert before <= restored <= set(committed[: at_snapshot[0] + 1])
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_a_second_backup_while_one_runs_is_refused_as_busy(home):
    paths = Paths(home)
    with exclusive_operation(paths, "restore"), pytest.raises(Busy, match="busy"):
        create_backup(paths)
    assert list_backups(paths) == []
    assert create_backup(paths).verified


def _corrupt_index_page(db_file: Path) -> None:
    """Damage the b-tree of an index so that integrity_check fails while the tables still read."""
    con = sqlite3.connect(db_file)
    with con:
        con.execute("CREATE TABLE IF NOT EXISTS t_damage (v TEXT)")
        con.execute("CREATE INDEX IF NOT EXISTS t_damage_v ON t_damage (v)")
        con.executemany("INSERT INTO t_damage VALUES (?)", ((f"value {i}" * 3,) for i in range(2000)))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name='t_damage_v'").fetchone()[0]
    con.close()
    with open(db_file, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\x00" * page_size)


def test_a_backup_that_fails_verification_is_kept_aside_and_listed_as_failed(home):
    _corrupt_index_page(home / "db" / "appliance.sqlite3")
    result = create_backup(Paths(home))
    assert not result.verified
    assert result.path.parent == home / "backups" / "failed"
    assert not list((home / "backups").glob("*.zip"))
    [item] = list_backups(Paths(home))
    assert item["status"] == "failed" and item["verified"] is False
    assert any("integrity_check" in p for p in item["verification"]["problems"])


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("flip_byte", "cannot be read|checksum"),
        ("missing_member", "member missing"),
        ("edited_manifest", "manifest.json was changed"),
        ("foreign_zip", "not an Office Appliance backup"),
        ("not_a_zip", "not a readable zip"),
    ],
)
def test_verification_refuses_a_damaged_or_foreign_archive(home, tmp_path, damage, expected):
    member = store_file(home, b"a file")
    good = create_backup(Paths(home)).path
    bad = tmp_path / "bad.zip"
    if damage == "flip_byte":
        data = bytearray(good.read_bytes())
        with zipfile.ZipFile(good) as zf:
            info = zf.getinfo(DB_MEMBER)
        data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
        bad.write_bytes(bytes(data))
    elif damage in ("missing_member", "edited_manifest"):
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
            dst.comment = src.comment
            for info in src.infolist():
                if damage == "missing_member" and info.filename == member:
                    continue
                data = src.read(info)
                if damage == "edited_manifest" and info.filename == MANIFEST:
                    manifest = json.loads(data)
                    manifest["row_counts"]["runtime_setting"] += 1
                    data = json.dumps(manifest).encode()
                dst.writestr(info, data)
    elif damage == "foreign_zip":
        with zipfile.ZipFile(bad, "w") as dst:
            dst.writestr("readme.txt", "hello")
    else:
        bad.write_bytes(b"this is not a zip at all")
    result = verify_archive(bad, tmp_path)
    assert result["ok"] is False
    assert any(__import__("re").search(expected, p) for p in result["problems"]), result["problems"]
    assert not list(tmp_path.glob(".work-*")), "the scratch folder is removed"


def test_retention_keeps_the_last_daily_and_weekly_backups_across_simulated_weeks(home):
    paths = Paths(home)
    clock = FakeClock(dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC))  # a Monday
    for _day in range(28):
        create_backup(paths, now=clock.now())
        if _day % 7 == 3:  # a second backup some days: only the newest of the day counts as that day's
            create_backup(paths, now=clock.now() + dt.timedelta(hours=5))
        clock.advance(days=1)
    outcome = prune_backups(paths, keep_daily=3, keep_weekly=3)
    left = sorted(item["created_at"] for item in list_backups(paths))
    assert left == [
        "2026-01-18T02:00:00Z",  # newest of week 3 (Sunday)
        "2026-01-25T02:00:00Z",  # newest of week 4
        "2026-01-30T02:00:00Z",  # last three days ...
        "2026-01-31T02:00:00Z",
        "2026-02-01T02:00:00Z",  # ... of which this one is also week 5's newest
    ]
    assert len(outcome["deleted"]) == 28 + 4 - 5
    orphans = [
        p for p in (home / "backups").glob("*.verify.json") if not p.with_name(p.name[: -len(".verify.json")]).exists()
    ]
    assert orphans == []


def test_retention_never_deletes_the_newest_verified_backup(home):
    paths = Paths(home)
    clock = FakeClock()
    create_backup(paths, now=clock.now())
    clock.advance(days=1)
    _corrupt_index_page(home / "db" / "appliance.sqlite3")
    assert not create_backup(paths, now=clock.now()).verified
    outcome = prune_backups(paths, keep_daily=0, keep_weekly=0)
    assert outcome["deleted"] == []
    assert [i["status"] for i in list_backups(paths)] == ["failed", "verified"]


def test_a_verified_backup_is_copied_offsite_and_checked(home, tmp_path):
    offsite = tmp_path / "nas"
    offsite.mkdir()
    result = create_backup(Paths(home), offsite_dir=str(offsite))
    assert result.verification["offsite"]["ok"] is True
    assert (offsite / result.item["name"]).read_bytes() == result.path.read_bytes()


def test_an_unreachable_offsite_folder_does_not_fail_the_local_backup(home, tmp_path):
    result = create_backup(Paths(home), offsite_dir=str(tmp_path / "usb-not-plugged-in"))
    assert result.verified
    assert result.verification["offsite"]["ok"] is False
    assert "does not exist" in result.verification["offsite"]["error"]
    assert result.path.exists()


def test_pruning_removes_the_offsite_copies_of_the_archives_it_deletes(home, tmp_path):
    offsite = tmp_path / "nas"
    offsite.mkdir()
    paths = Paths(home)
    clock = FakeClock()
    names = []
    for _ in range(3):
        names.append(create_backup(paths, now=clock.now(), offsite_dir=str(offsite)).item["name"])
        clock.advance(days=1)
    outcome = prune_backups(paths, keep_daily=1, keep_weekly=0, offsite_dir=str(offsite))
    assert outcome["deleted"] == sorted(names[:2])
    assert sorted(p.name for p in offsite.iterdir()) == [names[2]]
