"""Helpers shared by the backup, restore and drill tests: stored files, damaged copies of an archive, an older home."""

from __future__ import annotations

import hashlib
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path

from appliance.backups.format import MANIFEST


def store_file(home: Path, content: bytes, record_id: int = 1) -> str:
    """Store ``content`` the way uploads are stored (content-addressed) and reference it from a record;
    returns its archive member name (``files/ab/abcd...``)."""
    digest = hashlib.sha256(content).hexdigest()
    (home / "files" / digest[:2]).mkdir(parents=True, exist_ok=True)
    (home / "files" / digest[:2] / digest).write_bytes(content)
    con = sqlite3.connect(home / "db" / "appliance.sqlite3", timeout=30)
    with con:
        con.execute(
            "INSERT INTO file_ref (sha256, collection, record_id, field) VALUES (?, 'contracts', ?, 'scan')",
            (digest, record_id),
        )
    con.close()
    return f"files/{digest[:2]}/{digest}"


def copy_archive(
    source: Path, target: Path, *, drop: str | None = None, edit_manifest: Callable[[bytes], bytes] | None = None
) -> None:
    """Copy the backup archive ``source`` to ``target`` member by member (keeping its comment), leaving out
    the member ``drop`` and passing the manifest through ``edit_manifest``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        dst.comment = src.comment
        for info in src.infolist():
            if info.filename == drop:
                continue
            data = src.read(info)
            if edit_manifest is not None and info.filename == MANIFEST:
                data = edit_manifest(data)
            dst.writestr(info, data)


def init_home_one_migration_behind(home: Path) -> list[str]:
    """A new home at ``home`` whose database stops before the last migration; returns the names of all
    the migrations, in order."""
    import peewee
    from playhouse.migrations import Runner

    from appliance.config.home import init_home
    from appliance.storage.migrate import MIGRATIONS_DIR

    init_home(home)
    db = peewee.SqliteDatabase(str(home / "db" / "appliance.sqlite3"))
    names = [m.name for m in Runner(db, directory=str(MIGRATIONS_DIR)).status()]
    Runner(db, directory=str(MIGRATIONS_DIR)).up(target=names[-2])
    db.close()
    return names
