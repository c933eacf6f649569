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

from appliance.backups.archive import create_backup
from appliance.backups.catalogue import exclusive_operation, list_backups
from appliance.backups.format import DB_MEMBER, MANIFEST, SETTINGS_MEMBER, VERIFY_SUFFIX
from appliance.backups.restore import restore_backup
from appliance.backups.retention import prune_backups
from appliance.backups.verify import verify_archive
from appliance.config.home import Paths
from appliance.errors import Busy
from tests.appliance.backup_helpers import copy_archive, store_file
from tests.fakes import FakeClock
from tests.mailbox import mailbox  # noqa: F401 - the fixture
from tests.waiting import eventually


def put(home: Path, key: str, value: str = "v") -> None:
    con = sqlite3.connect(home / "db" / "appliance.sqlite3", timeout=30)
    with con:
        con.execute(
            "INSERT OR REPLACE INTO runtime_setting (key, value, updated_at) VALUES (?, ?, '2026-01-01')", (key, value)
        )
    con.close()


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
    assert names == {DB_MEMBER, SETTINGS_MEMBER, member, MANIFEST}, "only the files referenced at the snapshot"
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
    eventually(lambda: len(committed) >= 50 or errors, timeout=30, interval=0.01, message="the writer did not start")
    at_snapshot: list[int] = []
    result = create_backup(Paths(home), step_pages=16, on_snapshot=lambda: at_snapshot.append(len(committed)))
    written_during = len(committed) - at_snapshot[0]
    stop.set()
    thread.join()

    assert errors == []
    assert result.verified
    assert written_during > 0, "the writer was blocked for the whole backup"
    # Not a speed target: a write that waits seconds means the backup held the database locked.
    assert longest[0] < 2.0, f"a write waited {longest[0]:.2f} s during the backup"
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
    elif damage == "missing_member":
        copy_archive(good, bad, drop=member)
    elif damage == "edited_manifest":

        def one_more_row(data: bytes) -> bytes:
            manifest = json.loads(data)
            manifest["row_counts"]["runtime_setting"] += 1
            return json.dumps(manifest).encode()

        copy_archive(good, bad, edit_manifest=one_more_row)
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
        create_backup(paths, now=clock.now(), kind="scheduled")
        if _day % 7 == 3:  # a second backup some days: only the newest of the day counts as that day's
            create_backup(paths, now=clock.now() + dt.timedelta(hours=5), kind="scheduled")
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


# --- crafted archives: refused with a reason, never a crash, nothing written outside ------------------


def craft(
    good: Path, target: Path, extra: dict[str, bytes], *, manifest_sizes: dict[str, int] | None = None, edit=None
) -> Path:
    """An archive built from the good one ``good``: its database plus ``extra`` members, with a manifest
    listing them (sizes overridden by ``manifest_sizes``, then changed by ``edit``) and a matching
    checksum in the zip comment, as an attacker who knows the format would write it."""
    from appliance.backups.format import COMMENT_PREFIX

    with zipfile.ZipFile(good) as zf:
        manifest = json.loads(zf.read(MANIFEST))
        db = zf.read(DB_MEMBER)
    members = {DB_MEMBER: db, **extra}
    manifest["members"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in members.items()
    }
    for name, size in (manifest_sizes or {}).items():
        manifest["members"][name]["size"] = size
    if edit is not None:
        edit(manifest)
    raw = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(MANIFEST, raw)
        zf.comment = (COMMENT_PREFIX + hashlib.sha256(raw).hexdigest()).encode()
    return target


@pytest.fixture
def good_archive(home) -> Path:
    return create_backup(Paths(home)).path


def test_an_edited_manifest_with_a_recomputed_checksum_is_still_refused_by_the_row_counts(good_archive, tmp_path):
    def more_rows(manifest):
        manifest["row_counts"]["runtime_setting"] += 1

    bad = craft(good_archive, tmp_path / "bad.zip", {}, edit=more_rows)
    result = verify_archive(bad, tmp_path)
    assert result["ok"] is False
    assert result["problems"] == ["row counts differ from the manifest in: runtime_setting"]


@pytest.mark.parametrize("name", ["../../escaped.txt", "files/../../escaped.txt", "/tmp/escaped.txt"])
def test_a_member_named_to_escape_the_scratch_folder_is_refused_and_nothing_is_written_outside(
    good_archive, tmp_path, name
):
    scratch_parent = tmp_path / "a" / "b"
    scratch_parent.mkdir(parents=True)
    bad = craft(good_archive, tmp_path / "slip.zip", {name: b"pwned"})
    result = verify_archive(bad, scratch_parent)
    assert result["ok"] is False
    assert any("unsafe member name" in p for p in result["problems"]), result["problems"]
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not Path("/tmp/escaped.txt").exists()


def test_a_member_larger_than_its_manifest_says_is_refused_before_it_is_unpacked(good_archive, tmp_path):
    bomb = b"\0" * (8 * 1024 * 1024)  # 8 MB of zeros: a few KB compressed
    bad = craft(good_archive, tmp_path / "bomb.zip", {"files/00/bomb": bomb}, manifest_sizes={"files/00/bomb": 10})
    unpacked: list[int] = []
    real_open = open

    def watching_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "bomb" in str(file) and "b" in mode and ("w" in mode or "x" in mode):
            unpacked.append(1)
        return handle

    import builtins

    builtins.open = watching_open
    try:
        result = verify_archive(bad, tmp_path)
    finally:
        builtins.open = real_open
    assert result["ok"] is False
    assert any("files/00/bomb unpacks to 8388608 bytes but the manifest says 10" in p for p in result["problems"])
    assert unpacked == [], "the member was not unpacked at all"


def test_an_archive_larger_than_the_free_disk_space_is_a_disk_problem_and_nothing_is_unpacked(
    good_archive, tmp_path, monkeypatch
):
    import shutil
    from collections import namedtuple

    from appliance.errors import NotEnoughSpace

    # The disk is the edge faked here: it reports 1 KB free.
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 1024, 1024))
    with pytest.raises(NotEnoughSpace, match="not enough disk space to unpack the archive"):
        verify_archive(good_archive, tmp_path)
    assert not list(tmp_path.glob(".work-*"))


@pytest.mark.parametrize(
    ("extra", "edit", "expected"),
    [
        ({"files/ab": b"x", "files/ab/cd": b"y"}, None, "both as a file and as a folder"),
        ({}, lambda m: m["members"].__setitem__(DB_MEMBER, "not-a-dict"), "must be an object"),
        ({}, lambda m: m["members"][DB_MEMBER].__setitem__("size", -1), "whole number of bytes"),
        ({}, lambda m: m["members"][DB_MEMBER].__setitem__("sha256", "abc"), "64 hexadecimal digits"),
        ({}, lambda m: m.pop("row_counts"), "lacks 'row_counts'"),
        ({}, lambda m: m.__setitem__("schema_version", "4"), "'schema_version' must be a whole number"),
        ({}, lambda m: m.__setitem__("created_at", "yesterday"), "'created_at' must be a timestamp"),
        ({"notes.txt": b"x"}, None, "unsafe or foreign member name"),
    ],
)
def test_a_crafted_manifest_is_refused_with_a_reason_never_a_crash(good_archive, tmp_path, extra, edit, expected):
    bad = craft(good_archive, tmp_path / "crafted.zip", extra, edit=edit)
    result = verify_archive(bad, tmp_path)
    assert result["ok"] is False
    assert any(expected in p for p in result["problems"]), result["problems"]
    assert not list(tmp_path.glob(".work-*"))


# --- files removed during a backup; files missing -------------------------------------------------------


def test_a_file_whose_record_goes_during_a_backup_stays_in_the_backup_and_on_disk(instance):
    from appliance.storage.blobs import remove_unreferenced
    from appliance.storage.db import database

    home = instance.home
    member = store_file(home, b"a scanned contract")
    digest = member.rsplit("/", 1)[1]
    removed: list[int] = []

    def record_deleted_meanwhile() -> None:
        # The record and its file reference go just after the snapshot was pinned; the snapshot still has it.
        con = sqlite3.connect(home / "db" / "appliance.sqlite3", timeout=30)
        with con:
            con.execute("DELETE FROM file_ref")
        con.close()
        with database.connection_context():
            removed.append(remove_unreferenced(home / "files", [digest]))

    result = create_backup(Paths(home), on_snapshot=record_deleted_meanwhile)
    assert removed == [0], "nothing is removed while a backup copies the files"
    assert result.verified, result.verification["problems"]
    with zipfile.ZipFile(result.path) as zf:
        assert zf.read(member) == b"a scanned contract"
    assert (home / member).exists(), "left for the cleanup job"
    with database.connection_context():
        assert remove_unreferenced(home / "files", [digest]) == 1, "once the backup is done it can go"


def test_a_backup_missing_a_file_the_database_refers_to_fails_verification(home):
    member = store_file(home, b"lost before the backup")
    (home / member).unlink()
    result = create_backup(Paths(home))
    assert not result.verified
    assert result.path.parent.name == "failed"
    assert any("not on disk" in p and member in p for p in result.verification["problems"])


def test_a_scratch_folder_of_a_verification_still_running_elsewhere_is_not_removed(home):
    import subprocess
    import sys

    # A live process to own the scratch folder: it only has to exist until it is killed below.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        busy = home / "backups" / f".work-verify-{other.pid}-0badc0de"
        (busy / "db").mkdir(parents=True)
        (busy / "db" / "appliance.sqlite3").write_bytes(b"being checked")
        dead = home / "backups" / ".work-verify-999999999-0badc0de"
        dead.mkdir()
        assert create_backup(Paths(home)).verified
        assert (busy / "db" / "appliance.sqlite3").exists()
        assert not dead.exists(), "a dead process's leftovers are removed"
    finally:
        other.kill()
        other.wait()


def test_verifying_again_takes_the_backup_lock(home, good_archive):
    from appliance.backups.verify import verify_backup

    with exclusive_operation(Paths(home), "scheduled backup"), pytest.raises(Busy, match="scheduled backup"):
        verify_backup(Paths(home), good_archive)
    assert verify_backup(Paths(home), good_archive)["ok"] is True


# --- retention of failed archives; permissions ------------------------------------------------------------


def test_retention_prunes_failed_archives_too_keeping_the_newest(home):
    paths = Paths(home)
    clock = FakeClock(dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC))
    good = create_backup(paths, now=clock.now()).item["name"]
    _corrupt_index_page(home / "db" / "appliance.sqlite3")
    failed = []
    for _day in range(4):
        clock.advance(days=1)
        result = create_backup(paths, now=clock.now())
        assert not result.verified
        failed.append(result.item["name"])
    outcome = prune_backups(paths, keep_daily=2, keep_weekly=0)
    assert sorted(outcome["deleted"]) == sorted(failed[:2])
    left = sorted(p.name for p in (home / "backups" / "failed").iterdir())
    assert left == sorted([*failed[2:], *(f"{n}{VERIFY_SUFFIX}" for n in failed[2:])])
    assert (home / "backups" / good).exists(), "the newest verified archive always stays"


def test_archives_and_their_verification_are_readable_by_the_owner_only(home, tmp_path):
    offsite = tmp_path / "nas"
    offsite.mkdir()
    result = create_backup(Paths(home), offsite_dir=str(offsite))
    mode = lambda p: p.stat().st_mode & 0o777  # noqa: E731
    assert mode(home / "backups") == 0o700
    assert mode(result.path) == 0o600
    assert mode(result.path.with_name(result.path.name + VERIFY_SUFFIX)) == 0o600
    assert mode(offsite / result.path.name) == 0o600


# --- a failed verification alerts the admins by mail -----------------------------------------------------


def test_a_scheduled_backup_that_fails_verification_is_a_failed_run_that_alerts_and_mails(
    instance,
    personas,
    mailbox,  # noqa: F811
):
    from appliance.config.settings import write_settings
    from appliance.jobs.runner import run_job
    from appliance.storage.db import database
    from appliance.storage.models import Alert

    write_settings(instance.home / "appliance.toml", mailbox.settings())
    _corrupt_index_page(instance.home / "db" / "appliance.sqlite3")
    with database.connection_context():
        run = run_job(instance, "backup", trigger="schedule")
        assert run.outcome == "failed"
        assert "failed verification" in run.message and "integrity_check" in run.message
        [alert] = Alert.select().where(Alert.kind == "backup_failed")
        assert alert.emailed is True
    [message] = mailbox.wait_for(1)
    subject = " ".join(str(message["Subject"]).split())
    assert subject.startswith("[Office Appliance] Backup backup-") and subject.endswith("failed verification")
    assert message["To"] == "alice@example.com"
    assert "integrity_check" in message.get_payload(decode=True).decode()


def test_a_scheduled_backup_while_a_manual_one_runs_is_recorded_as_skipped_without_an_alert(instance):
    from appliance.jobs.runner import run_job
    from appliance.storage.db import database
    from appliance.storage.models import Alert

    with database.connection_context():
        with exclusive_operation(instance.paths, "manual backup"):
            backup = run_job(instance, "backup", trigger="schedule")
            prune = run_job(instance, "prune_backups", trigger="schedule")
        assert (backup.outcome, prune.outcome) == ("skipped", "skipped")
        assert "manual backup" in backup.message
        assert Alert.select().count() == 0
