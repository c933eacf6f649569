"""Writing a backup: one ``.zip`` archive per backup, verified right after it is written.

An archive holds a consistent snapshot of the database (SQLite's online
backup API, copied in steps while the server keeps writing), the uploaded
files, the settings file (:mod:`appliance.backups.settings`) and ``manifest.json`` (see :mod:`appliance.backups.format`). A backup
that fails verification is moved aside to ``backups/failed/``; a verified one
is copied offsite when a folder is set (:mod:`appliance.backups.retention`).

A backup holds the home's backup lock
(:func:`appliance.backups.catalogue.exclusive_operation`). While it copies the
uploaded files it also holds ``run/files.lock`` (see
:mod:`appliance.storage.locks`), so that no stored file its snapshot refers to
is removed under it. Archives are written readable by the owner only, in a
folder only the owner can enter: they hold password and token hashes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.backups.catalogue import (
    clean_leftovers,
    describe_backup,
    exclusive_operation,
    scratch_name,
    write_verification,
)
from appliance.backups.format import (
    CHUNK,
    COMMENT_PREFIX,
    DB_MEMBER,
    FAILED_DIR,
    FILES_PREFIX,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SETTINGS_MEMBER,
    disk_full,
    inspect_database,
    referenced_digests,
)
from appliance.backups.retention import copy_offsite
from appliance.backups.settings import archived_settings
from appliance.backups.signing import sign_manifest, signing_key
from appliance.backups.verify import verify_archive
from appliance.clock import aware, iso
from appliance.config.home import Paths
from appliance.durable import create_private_file, fsync_dir, private_dir
from appliance.errors import BackupFailed, NotEnoughSpace
from appliance.storage.locks import copying_files

STEP_PAGES = 1024  # pages copied per step of the online backup (4 MiB with 4 KiB pages)


def snapshot_database(
    source: Path,
    target: Path,
    *,
    step_pages: int = STEP_PAGES,
    busy_timeout_s: float = 30.0,
    on_snapshot: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Copy a consistent snapshot of the SQLite database ``source`` into the new file ``target``.

    Uses SQLite's online backup API in steps of ``step_pages`` pages. The
    source connection holds one read transaction across all steps: in WAL
    mode that pins one snapshot (so the copy is consistent and is never
    restarted by concurrent writes) while writers keep committing. Returns
    timings. ``on_snapshot`` is called once the snapshot is pinned (tests and
    benchmarks use it to know which writes it can hold).
    """
    if not source.exists():
        raise BackupFailed(f"there is no database at {source} to back up")
    src = sqlite3.connect(str(source), isolation_level=None, timeout=busy_timeout_s)
    dst = sqlite3.connect(str(target), isolation_level=None)
    started = time.monotonic()
    steps = 0
    try:
        src.execute("BEGIN")
        # The first read opens the read transaction and pins the snapshot.
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if on_snapshot is not None:
            on_snapshot()

        def progress(_status: int, _remaining: int, _total: int) -> None:
            nonlocal steps
            steps += 1

        src.backup(dst, pages=step_pages, progress=progress, sleep=0.005)
        src.execute("COMMIT")
        # A self-contained file: the archive holds no -wal beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.DatabaseError as exc:
        raise BackupFailed(f"cannot snapshot the database: {exc}") from None
    finally:
        src.close()
        dst.close()
    return {"snapshot_seconds": round(time.monotonic() - started, 3), "steps": steps}


def _snapshot_files(files_dir: Path, snapshot: Path) -> list[tuple[str, Path]]:
    """``(archive name, path)`` of the uploaded files the snapshot refers to (content-addressed as
    ``<sha256[:2]>/<sha256>``); every stored file when the database keeps no references."""
    digests = referenced_digests(snapshot)
    if digests is None:
        return _list_files(files_dir)
    return [
        (f"{FILES_PREFIX}{digest[:2]}/{digest}", files_dir / digest[:2] / digest)
        for digest in digests
        if re.fullmatch(r"[0-9a-f]{64}", digest)
    ]


def _list_files(files_dir: Path) -> list[tuple[str, Path]]:
    """``(archive name, path)`` of every stored file; hidden names are uploads still being written."""
    found = []
    if files_dir.is_dir():
        for root, dirs, names in os.walk(files_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if name.startswith("."):
                    continue
                path = Path(root) / name
                rel = path.relative_to(files_dir).as_posix()
                found.append((FILES_PREFIX + rel, path))
    return found


def _add_member(zf: zipfile.ZipFile, arcname: str, source: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    large = source.stat().st_size > 2**31
    with open(source, "rb") as fh, zf.open(arcname, "w", force_zip64=large) as out:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


def _unique_name(backups_dir: Path, prefix: str, created: dt.datetime) -> str:
    stem = f"{prefix}-{created.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
    name = f"{stem}.zip"
    counter = 2
    while (backups_dir / name).exists() or (backups_dir / FAILED_DIR / name).exists():
        name = f"{stem}-{counter}.zip"
        counter += 1
    return name


@dataclass
class BackupResult:
    """What :func:`create_backup` made: the listing item and where the archive now lives."""

    item: dict[str, Any]
    path: Path
    verification: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return bool(self.verification.get("ok"))


def create_backup(
    paths: Paths,
    *,
    now: dt.datetime | None = None,
    kind: str = "manual",
    offsite_dir: str = "",
    step_pages: int = STEP_PAGES,
    on_snapshot: Callable[[], None] | None = None,
) -> BackupResult:
    """Write a new archive into ``<home>/backups`` and verify it; one backup or restore at a time.

    ``kind`` is ``"manual"``, ``"scheduled"``, ``"safety"`` (before a restore) or ``"pre-update"``;
    it is stored in the manifest and decides how long retention keeps the archive.
    Returns a :class:`BackupResult`; a backup that fails verification is moved
    to ``backups/failed/`` and comes back with ``verified`` false (the caller
    alerts). When ``offsite_dir`` is set, a verified archive is copied there
    and checked; the outcome is stored with the verification, and a failure
    there does not fail the backup. Raises :class:`Busy` while another backup
    or restore runs, :class:`BackupFailed` when the archive cannot be written,
    and :class:`NotEnoughSpace` when it was written but the disk has no room to
    verify it (the archive is then left in place, unverified).
    """
    with exclusive_operation(paths, f"{kind} backup"):
        return create_backup_locked(
            paths, now=now, kind=kind, offsite_dir=offsite_dir, step_pages=step_pages, on_snapshot=on_snapshot
        )


def create_backup_locked(
    paths: Paths,
    *,
    now: dt.datetime | None = None,
    kind: str = "manual",
    offsite_dir: str = "",
    step_pages: int = STEP_PAGES,
    on_snapshot: Callable[[], None] | None = None,
) -> BackupResult:
    """:func:`create_backup` for a caller that already holds :func:`exclusive_operation`."""
    backups_dir = private_dir(paths.backups_dir)
    clean_leftovers(backups_dir)
    created = aware(now) or dt.datetime.now(dt.UTC)
    name = _unique_name(backups_dir, kind if kind in ("safety", "pre-update") else "backup", created)
    final = backups_dir / name
    partial = backups_dir / f".{name}.partial"
    work = backups_dir / scratch_name("backup")
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        work.mkdir()
        snapshot = work / "appliance.sqlite3"
        # From the snapshot until every file it refers to is copied, stored files stay (removals wait).
        with copying_files(paths.home):
            snap = snapshot_database(paths.database_file, snapshot, step_pages=step_pages, on_snapshot=on_snapshot)
            timings["snapshot_seconds"] = snap["snapshot_seconds"]
            facts = inspect_database(snapshot)
            files = _snapshot_files(paths.files_dir, snapshot)
            members: dict[str, dict[str, Any]] = {}
            missing: list[str] = []
            create_private_file(partial)
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                members[DB_MEMBER] = _add_member(zf, DB_MEMBER, snapshot)
                settings_data, settings_secrets = archived_settings(paths)
                zf.writestr(SETTINGS_MEMBER, settings_data)
                members[SETTINGS_MEMBER] = {
                    "sha256": hashlib.sha256(settings_data).hexdigest(),
                    "size": len(settings_data),
                }
                for arcname, path in files:
                    try:
                        members[arcname] = _add_member(zf, arcname, path)
                    except FileNotFoundError:
                        # Referenced by the snapshot but not on disk: lost, since removals wait for
                        # backups. Recorded, and the verification fails on it.
                        missing.append(arcname)
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "app_version": __version__,
                    "schema_version": facts["schema_version"],
                    "migrations": facts["migrations"],
                    "created_at": iso(created),
                    "kind": kind,
                    "database": DB_MEMBER,
                    "members": members,
                    "settings": {"member": SETTINGS_MEMBER, "secrets": settings_secrets},
                    "row_counts": facts["row_counts"],
                    "missing_files": missing,
                }
                manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
                zf.writestr(MANIFEST, manifest_bytes)
                signature = sign_manifest(signing_key(paths), manifest_bytes)
                zf.comment = (COMMENT_PREFIX + hashlib.sha256(manifest_bytes).hexdigest() + " " + signature).encode()
        with open(partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, final)
        fsync_dir(backups_dir)
    except OSError as exc:
        if disk_full(exc):
            raise BackupFailed(f"not enough disk space to write the backup {name}: {exc.strerror or exc}") from None
        raise BackupFailed(f"cannot write the archive {name}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            partial.unlink()
    timings["write_seconds"] = round(time.monotonic() - started, 3)
    try:
        verification = verify_archive(final, backups_dir, paths=paths)
    except NotEnoughSpace as exc:
        raise NotEnoughSpace(
            f"the backup {name} was written but could not be verified: {exc.message}; "
            "it is left unverified in the backups folder"
        ) from None
    timings["verify_seconds"] = verification["duration_seconds"]
    if missing:
        verification["ok"] = False
        verification["problems"].append(
            f"{len(missing)} file(s) the database refers to were not on disk and are not in the backup: "
            + ", ".join(missing[:3])
        )
    path = final
    if verification["ok"]:
        if offsite_dir:
            verification["offsite"] = copy_offsite(final, Path(offsite_dir))
    else:
        path = _move_aside(final)
    write_verification(path, verification)
    return BackupResult(describe_backup(path), path, verification, timings)


def _move_aside(archive: Path) -> Path:
    failed_dir = private_dir(archive.parent / FAILED_DIR)
    target = failed_dir / archive.name
    os.replace(archive, target)
    fsync_dir(failed_dir)
    return target
