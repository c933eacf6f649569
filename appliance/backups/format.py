"""The backup format: the names inside an archive and beside it, and the facts read from a database file.

An archive is a ``.zip`` holding ``db/appliance.sqlite3``, the uploaded files
under ``files/``, the settings file ``appliance.toml`` and ``manifest.json``
(app version, schema version, created_at, sha256 and size of every member, row
count per table, the names of the secret settings the settings file sets); its zip
comment carries the sha256 of the manifest. Beside it in the backups folder
sit its verification result (``<name>.zip.verify.json``) and its last restore
drill (``<name>.zip.drill.json``); an archive that failed verification is
kept aside in ``backups/failed/``.
"""

from __future__ import annotations

import errno
import hashlib
import re
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

from appliance.storage.blobs import version_digests

FORMAT = "office-appliance-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_MEMBER = "db/appliance.sqlite3"
SETTINGS_MEMBER = "appliance.toml"  # the home's settings file (see appliance.backups.settings)
FILES_PREFIX = "files/"
VERIFY_SUFFIX = ".verify.json"
DRILL_SUFFIX = ".drill.json"  # the last restore drill of the archive (see appliance.backups.drill)
FAILED_DIR = "failed"
COMMENT_PREFIX = f"{FORMAT} manifest-sha256="
CHUNK = 1024 * 1024  # bytes read or written at a time
HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # about 400,000 files; a bigger one is not ours
# Write errors that mean the disk (or the process's file size limit) is full, not that the archive is bad.
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def disk_full(exc: OSError) -> bool:
    """Whether a write failed because the disk (or the file size limit) is full."""
    return exc.errno in _DISK_FULL


def sha256_file(path: Path) -> tuple[str, int]:
    """``(hex digest, size)`` of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def read_member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes | None:
    """The member ``name`` when it unpacks to at most ``limit`` bytes, else ``None`` (read no further)."""
    if zf.getinfo(name).file_size > limit:
        return None
    with zf.open(name) as fh:
        data = fh.read(limit + 1)
    return data if len(data) <= limit else None


def inspect_database(path: Path) -> dict[str, Any]:
    """Row count per table, applied migrations and schema version of a database file (opened read-only)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"
            )
        ]
        counts = {name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
        migrations: list[str] = []
        if "schema_migration" in tables:
            migrations = sorted(row[0] for row in con.execute("SELECT name FROM schema_migration"))
    finally:
        con.close()
    return {"row_counts": counts, "migrations": migrations, "schema_version": _version_of(migrations)}


def _version_of(migrations: list[str]) -> int:
    numbers = [int(m.split("_", 1)[0]) for m in migrations if m.split("_", 1)[0].isdigit()]
    return max(numbers, default=0)


def referenced_digests(db_path: Path) -> list[str] | None:
    """The content digests a database file refers to (its ``file_ref`` table and the file values in its
    record versions, which a restore of an old version needs), or ``None`` when it has no ``file_ref``."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='file_ref'").fetchone():
            return None
        found = {row[0] for row in con.execute("SELECT DISTINCT sha256 FROM file_ref")}
        if con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='record_version'").fetchone():
            rows = con.execute("SELECT data FROM record_version WHERE data LIKE '%\"sha256\"%'")
            found |= version_digests(data for (data,) in rows)
        return sorted(found)
    finally:
        con.close()
