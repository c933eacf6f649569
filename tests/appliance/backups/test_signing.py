"""Forged archives: manifests are signed with a key of this instance; a foreign or unsigned archive is refused
unless accepted, before any member is read (a zip bomb is refused without being inflated)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
import zipfile

import pytest

from appliance.backups.archive import create_backup
from appliance.backups.format import COMMENT_PREFIX, MANIFEST
from appliance.backups.restore import restore_backup
from appliance.backups.verify import verify_archive, verify_backup
from appliance.config.home import Paths, init_home
from appliance.errors import BadRequest


def forge(source, target, edit_db=None) -> None:
    """What an attacker does: take an archive, change its database, recompute the manifest's checksums and the
    comment's sha256 (the only checksum an unsigned format has)."""
    with zipfile.ZipFile(source) as src:
        manifest = json.loads(src.read(MANIFEST))
        members = {info.filename: src.read(info) for info in src.infolist() if info.filename != MANIFEST}
    db = members["db/appliance.sqlite3"]
    if edit_db is not None:
        db = edit_db(db)
        members["db/appliance.sqlite3"] = db
    manifest["members"]["db/appliance.sqlite3"] = {"sha256": hashlib.sha256(db).hexdigest(), "size": len(db)}
    raw = json.dumps(manifest, indent=2, sort_keys=True).encode()
    with zipfile.ZipFile(target, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)
        dst.writestr(MANIFEST, raw)
        dst.comment = (COMMENT_PREFIX + hashlib.sha256(raw).hexdigest()).encode()


def test_an_archive_re_checksummed_by_an_attacker_is_refused_and_not_restored(home, tmp_path):
    own = create_backup(Paths(home)).path
    forged = tmp_path / "forged.zip"
    forge(own, forged)
    result = verify_archive(forged, tmp_path, paths=Paths(home))
    assert not result["ok"] and result["signature"] == "unsigned"
    assert "not signed" in result["problems"][0] and "--accept-foreign" in result["problems"][0]
    with pytest.raises(BadRequest, match="not signed"):
        restore_backup(Paths(home), forged)
    assert verify_archive(forged, tmp_path, paths=Paths(home), accept_foreign=True)["ok"]


def test_an_archive_signed_by_another_instance_is_refused_unless_accepted(home, tmp_path):
    other = tmp_path / "other-home"
    init_home(other)  # a home of its own: its own secret.key, so its own signing key
    shutil.copyfile(home / "db" / "appliance.sqlite3", other / "db" / "appliance.sqlite3")
    theirs = create_backup(Paths(other)).path
    assert verify_archive(theirs, tmp_path, paths=Paths(other))["signature"] == "own"
    refused = verify_archive(theirs, tmp_path, paths=Paths(home))
    assert not refused["ok"] and refused["signature"] == "foreign"
    accepted = verify_archive(theirs, tmp_path, paths=Paths(home), accept_foreign=True)
    assert accepted["ok"] and accepted["signature"] == "foreign (accepted)"


def test_an_unsigned_archive_in_the_homes_own_backups_folder_is_an_older_own_one(home, tmp_path):
    own = create_backup(Paths(home)).path
    older = tmp_path / "older.zip"
    forge(own, older)  # the same bytes an older version wrote: no signature
    moved = own.with_name("backup-20250101T000000Z.zip")
    older.replace(moved)
    result = verify_backup(Paths(home), moved)
    assert result["ok"] and result["signature"] == "unsigned (own folder)"


def test_a_zip_bomb_is_refused_before_a_byte_is_inflated(home, tmp_path):
    """2 GiB of zeros in about 2 MB, listed with its true size: refused by its signature at once, and with
    --accept-foreign it is streamed through its checksum within the manifest's size, never unpacked to disk."""
    bomb = tmp_path / "bomb.zip"
    size = 2 * 1024**3
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("files/00/" + "0" * 64, "w", force_zip64=True) as out:
            zero = b"\0" * (8 * 1024 * 1024)
            for _ in range(size // len(zero)):
                out.write(zero)
        con = sqlite3.connect(tmp_path / "db.sqlite3")
        con.execute("CREATE TABLE t (x)")
        con.commit()
        con.close()
        db = (tmp_path / "db.sqlite3").read_bytes()
        zf.writestr("db/appliance.sqlite3", db)
        manifest = {
            "format": "office-appliance-backup",
            "format_version": 1,
            "app_version": "0",
            "schema_version": 0,
            "migrations": [],
            "created_at": "2026-01-01T00:00:00Z",
            "kind": "manual",
            "database": "db/appliance.sqlite3",
            "members": {
                "db/appliance.sqlite3": {"sha256": hashlib.sha256(db).hexdigest(), "size": len(db)},
                "files/00/" + "0" * 64: {"sha256": "0" * 64, "size": size},
            },
            "row_counts": {"t": 0},
        }
        raw = json.dumps(manifest).encode()
        zf.writestr(MANIFEST, raw)
        zf.comment = (COMMENT_PREFIX + hashlib.sha256(raw).hexdigest()).encode()
    assert bomb.stat().st_size < 16 * 1024 * 1024
    started = time.monotonic()
    result = verify_archive(bomb, tmp_path, paths=Paths(home))
    assert not result["ok"] and result["signature"] == "unsigned" and result["members_checked"] == 0
    assert time.monotonic() - started < 2
    scratch_left = [p for p in tmp_path.iterdir() if p.name.startswith(".work-")]
    assert scratch_left == []
