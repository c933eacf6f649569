"""Stored files: content-addressed blobs under ``<home>/files`` and the ``file_ref`` rows that keep them.

The bytes of an uploaded file live at ``<home>/files/<sha256[:2]>/<sha256>``,
outside any served folder, so a client-chosen name never reaches the file
system. ``file_ref`` rows say which record field refers to which content,
and a record's versions (``record_version``) refer to the content they held:
a stored file stays while a current field *or any version in a record's
history* refers to it, so restoring an old version brings its file back.
(History is kept as long as the record's collection exists: deleting the
collection, or undoing an import, drops those versions and their files.)
When the last reference goes, the caller removes the stored file after the
commit (:func:`remove_unreferenced`), never inside the transaction, which
could still roll back; the ``cleanup`` job removes what a crash or a backup
left behind (:func:`remove_orphan_blobs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from appliance.errors import NotFound
from appliance.storage.db import database
from appliance.storage.locks import removing_files

SNIFF_BYTES = 8192
CHUNK = 1024 * 1024
# An upload being written is a temporary file with this prefix in the files folder (the cleanup job
# removes the ones a crash left behind).
UPLOAD_PREFIX = ".upload-"
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


class BlobTooLarge(Exception):
    """The content is bigger than the limit :func:`store_blob` was given."""


@dataclass(frozen=True)
class StoredBlob:
    """Content just stored: its digest, its size, its first :data:`SNIFF_BYTES` bytes, and whether this
    store wrote a new file (so a write that fails afterwards can remove it again)."""

    sha256: str
    size: int
    head: bytes
    created: bool


def blob_path(files_dir: Path, sha256: str) -> Path:
    """Where the content of digest ``sha256`` is stored; :class:`NotFound` for anything but a digest."""
    if not _DIGEST_RE.match(sha256 or ""):
        raise NotFound("No such file.")
    return files_dir / sha256[:2] / sha256


def store_blob(
    files_dir: Path,
    stream: IO[bytes],
    *,
    max_size: int | None = None,
    check: Callable[[bytes, int], None] | None = None,
) -> StoredBlob:
    """Store the content of ``stream`` under its digest, reading at most ``max_size + 1`` bytes.

    ``check(head, size)`` runs once the content is read and before it is
    stored; whatever it raises propagates and nothing is stored. Raises
    :class:`BlobTooLarge` over ``max_size``. The file is written to a
    temporary file first and renamed into place, owner-only.
    """
    files_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, tmp_name = tempfile.mkstemp(dir=files_dir, prefix=UPLOAD_PREFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise BlobTooLarge(f"The content is larger than {max_size} bytes.")
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if check is not None:
            check(head, size)
        sha = digest.hexdigest()
        target = blob_path(files_dir, sha)
        created = not target.exists()
        if created:
            target.parent.mkdir(exist_ok=True)
            os.chmod(tmp_name, 0o600)
            os.replace(tmp_name, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    return StoredBlob(sha, size, head, created)


# --- references ---------------------------------------------------------------------------------


def is_referenced(sha256: str) -> bool:
    """Whether some record field, or some version in a record's history, still refers to the content ``sha256``."""
    if database.execute_sql("SELECT 1 FROM file_ref WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone() is not None:
        return True
    if not _DIGEST_RE.match(sha256 or ""):
        return False
    # A version holds a file value as {"sha256": "<digest>", ...} in its JSON; a digest is 64 hex digits, so
    # a text value that happens to hold one only keeps a file longer, never removes one too early.
    return (
        database.execute_sql("SELECT 1 FROM record_version WHERE data LIKE ? LIMIT 1", (f"%{sha256}%",)).fetchone()
        is not None
    )


# With or without a space after the colon: Python's json writes one, SQLite's JSON functions do not.
_VERSION_DIGEST_RE = re.compile(r'"sha256":\s*"([0-9a-f]{64})"')


def version_digests(data_rows: Iterable[str]) -> set[str]:
    """The content digests that record versions' JSON ``data`` refer to."""
    found: set[str] = set()
    for data in data_rows:
        found.update(_VERSION_DIGEST_RE.findall(data or ""))
    return found


def _unreferenced(digests: Iterable[str]) -> list[str]:
    return [d for d in digests if not is_referenced(d)]


def set_file_refs(collection: str, record_id: int, refs: dict[str, str | None]) -> list[str]:
    """Point ``record_id``'s file fields at new content (``None`` clears); returns digests no longer referenced.

    Call inside the write's transaction; remove the returned stored files
    with :func:`remove_unreferenced` after it commits.
    """
    released = []
    for field_name, sha in refs.items():
        row = database.execute_sql(
            "SELECT sha256 FROM file_ref WHERE collection = ? AND record_id = ? AND field = ?",
            (collection, record_id, field_name),
        ).fetchone()
        if row and row[0] == sha:
            continue
        if row:
            database.execute_sql(
                "DELETE FROM file_ref WHERE collection = ? AND record_id = ? AND field = ?",
                (collection, record_id, field_name),
            )
            released.append(row[0])
        if sha:
            database.execute_sql(
                "INSERT INTO file_ref (sha256, collection, record_id, field) VALUES (?, ?, ?, ?)",
                (sha, collection, record_id, field_name),
            )
    return _unreferenced(released)


def drop_file_refs(collection: str, record_id: int) -> list[str]:
    """Forget every file reference of a deleted record; returns digests no longer referenced."""
    digests = [
        r[0]
        for r in database.execute_sql(
            "SELECT sha256 FROM file_ref WHERE collection = ? AND record_id = ?", (collection, record_id)
        ).fetchall()
    ]
    database.execute_sql("DELETE FROM file_ref WHERE collection = ? AND record_id = ?", (collection, record_id))
    return _unreferenced(digests)


def rename_field_refs(collection: str, renames: dict[str, str]) -> None:
    """Move the references of renamed file fields (``{old: new}``) to their new names."""
    # Two steps, as for the table's columns, so that swapping two file fields' names cannot collide.
    for source in renames:
        database.execute_sql(
            "UPDATE file_ref SET field = ? WHERE collection = ? AND field = ?", ("__tmp_" + source, collection, source)
        )
    for source, target in renames.items():
        database.execute_sql(
            "UPDATE file_ref SET field = ? WHERE collection = ? AND field = ?",
            (target, collection, "__tmp_" + source),
        )


def drop_field_refs(collection: str, fields: list[str]) -> list[str]:
    """Forget every reference of removed file fields; returns digests no longer referenced."""
    if not fields:
        return []
    marks = ", ".join("?" for _ in fields)
    digests = [
        r[0]
        for r in database.execute_sql(
            f"SELECT DISTINCT sha256 FROM file_ref WHERE collection = ? AND field IN ({marks})", (collection, *fields)
        ).fetchall()
    ]
    database.execute_sql(f"DELETE FROM file_ref WHERE collection = ? AND field IN ({marks})", (collection, *fields))
    return _unreferenced({*digests, *_forget_in_history(collection, fields)})


def _forget_in_history(collection: str, fields: list[str]) -> set[str]:
    """Take removed file fields out of the collection's history; returns the digests their versions held.

    Removing a field removes its values, old versions' included (the admin confirmed it): otherwise a
    version would keep every file the field ever held, although no restore can bring it back into a
    field that no longer exists. Field names are ``[a-z][a-z0-9_]*``, so the JSON paths are safe.
    """
    found: set[str] = set()
    if not database.table_exists("record_version"):
        return found
    for name in fields:
        path = f'$."{name}"'
        held = database.execute_sql(
            "SELECT json_extract(data, ?) FROM record_version WHERE collection = ? AND json_extract(data, ?) IS NOT NULL",
            (path, collection, path),
        ).fetchall()
        found |= version_digests(str(row[0]) for row in held)
        database.execute_sql(
            "UPDATE record_version SET data = json_remove(data, ?), changes = json_remove(changes, ?) "
            "WHERE collection = ? AND (json_extract(data, ?) IS NOT NULL OR json_extract(changes, ?) IS NOT NULL)",
            (path, path, collection, path, path),
        )
    return found


def drop_collection_refs(collection: str) -> list[str]:
    """Forget every file reference of a removed collection; returns digests no longer referenced."""
    digests = [
        r[0] for r in database.execute_sql("SELECT DISTINCT sha256 FROM file_ref WHERE collection = ?", (collection,))
    ]
    database.execute_sql("DELETE FROM file_ref WHERE collection = ?", (collection,))
    return _unreferenced(digests)


def remove_unreferenced(files_dir: Path | None, digests: Iterable[str]) -> int:
    """Remove the stored files of ``digests`` that nothing refers to any more; returns how many went.

    Removes nothing while a backup copies the files (its database snapshot may
    still refer to them): those stay, and the ``cleanup`` job removes them later.
    """
    if files_dir is None:
        return 0
    removed = 0
    with removing_files(files_dir.parent) as allowed:
        if not allowed:
            return 0
        for sha in set(digests):
            if is_referenced(sha):
                continue
            with contextlib.suppress(FileNotFoundError, NotFound):
                blob_path(files_dir, sha).unlink()
                removed += 1
    return removed


# A stored file younger than this may be an upload whose record is still being written: left alone.
ORPHAN_GRACE_SECONDS = 3600
# An upload's temporary file older than this was left by a crash.
UPLOAD_LEFTOVER_SECONDS = 86400


def remove_orphan_blobs(files_dir: Path) -> int:
    """Remove the stored files that no record refers to (left by a removal that a backup was holding
    off, or by a crash) once they are an hour old, and upload leftovers older than a day.
    Returns how many went; removes no stored file while a backup copies the files."""
    if not files_dir.is_dir() or not database.table_exists("file_ref"):
        return 0
    referenced = {sha for (sha,) in database.execute_sql("SELECT DISTINCT sha256 FROM file_ref").fetchall()}
    if database.table_exists("record_version"):
        rows = database.execute_sql("SELECT data FROM record_version WHERE data LIKE '%\"sha256\"%'")
        referenced |= version_digests(row[0] for row in rows)
    cutoff = time.time() - ORPHAN_GRACE_SECONDS
    orphans = []
    removed = 0
    for entry in files_dir.iterdir():
        if entry.is_file() and entry.name.startswith(UPLOAD_PREFIX):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < time.time() - UPLOAD_LEFTOVER_SECONDS:
                    entry.unlink()
                    removed += 1
            continue
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        for stored in entry.iterdir():
            if not _DIGEST_RE.match(stored.name) or stored.name[:2] != entry.name or stored.name in referenced:
                continue
            with contextlib.suppress(OSError):
                if stored.stat().st_mtime < cutoff:
                    orphans.append(stored.name)
    return removed + remove_unreferenced(files_dir, orphans)
