"""The backups folder as a catalogue: listing, describing and finding archives, the results kept
beside them, its scratch folders, and the one-at-a-time lock.

The backups folder is the truth about which backups exist: each archive
carries its manifest, and its verification result sits beside it as
``<name>.zip.verify.json`` (its last restore drill as ``<name>.zip.drill.json``);
an archive that fails verification is moved aside to ``backups/failed/``.
Nothing about backups lives in the database, so a restore (which rolls the
database back) forgets no archive.

Only one backup, verification, drill or restore runs at a time on a home:
:func:`exclusive_operation` holds an OS lock on ``run/backup.lock`` and raises
:class:`Busy` for a second. Side files hold password and token hashes (a
verification names the archive's contents): they are written readable by the
owner only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import Any, cast

import psutil

from appliance.backups.format import DRILL_SUFFIX, FAILED_DIR, MANIFEST, MAX_MANIFEST_BYTES, VERIFY_SUFFIX, read_member
from appliance.clock import iso
from appliance.config.home import Paths
from appliance.durable import write_private_file
from appliance.errors import BadRequest, NotFound
from appliance.storage.locks import exclusive

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.zip$")


# --- one backup or restore at a time ----------------------------------------


def _lock_path(paths: Paths) -> Path:
    return paths.run_dir / "backup.lock"


def exclusive_operation(paths: Paths, what: str) -> contextlib.AbstractContextManager[Any]:
    """Hold the home's backup/restore lock for the block; raises :class:`Busy` when another holds it.

    An OS lock (see :mod:`appliance.storage.locks`), so it holds across threads and
    processes and is released by the OS when the holder dies.
    """
    return exclusive(
        _lock_path(paths),
        what,
        "busy: another backup or restore is running on this home{holder}; try again when it has finished",
    )


# --- scratch folders ------------------------------------------------------------


def scratch_name(kind: str) -> str:
    """A scratch folder's name, carrying its owner's pid so that a clean-up spares the living."""
    return f".work-{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _owner_alive(name: str) -> bool:
    match = re.match(r"^\.work-[a-z]+-(\d+)-[0-9a-f]+$", name)
    if not match:
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return False  # ours, from an earlier call that could not clean up
    return bool(psutil.pid_exists(pid))


def clean_leftovers(backups_dir: Path) -> None:
    """Remove scratch folders and partial archives left by a crash (called under the lock). A scratch
    folder whose owner process still runs is left alone (a verification started without the lock, by
    an older version or by the console, may be using it)."""
    for path in backups_dir.glob(".work-*"):
        if not _owner_alive(path.name):
            shutil.rmtree(path, ignore_errors=True)
    for path in backups_dir.glob(".*.partial"):
        with contextlib.suppress(OSError):
            path.unlink()


# --- listing and lookup --------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return cast("dict[str, Any] | None", json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _manifest_of(archive: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(archive) as zf:
            raw = read_member(zf, MANIFEST, MAX_MANIFEST_BYTES)
            data = json.loads(raw) if raw is not None else None
            return data if isinstance(data, dict) else {}
    except (zipfile.BadZipFile, zlib.error, OSError, KeyError, ValueError, EOFError, RuntimeError, NotImplementedError):
        return {}


def describe_backup(archive: Path) -> dict[str, Any]:
    """The listing item of API.md for one archive: ``{"name", "size", "created_at", "verified",
    "verification"}`` plus ``status`` (verified, failed or unverified), ``kind`` and ``schema_version``."""
    verification = _read_json(archive.with_name(archive.name + VERIFY_SUFFIX))
    manifest = _manifest_of(archive)
    created_at = manifest.get("created_at")
    if not created_at:
        created_at = iso(dt.datetime.fromtimestamp(archive.stat().st_mtime, dt.UTC))
    failed = archive.parent.name == FAILED_DIR
    verified = bool(verification and verification.get("ok")) and not failed
    if verified:
        status = "verified"
    elif failed or (verification is not None and not verification.get("ok")):
        status = "failed"
    else:
        status = "unverified"
    return {
        "name": archive.name,
        "size": archive.stat().st_size,
        "created_at": created_at,
        "verified": verified,
        "verification": verification,
        "status": status,
        "kind": manifest.get("kind"),
        "schema_version": manifest.get("schema_version"),
        "app_version": manifest.get("app_version"),
        "drill": read_drill(archive),
    }


def _archives(paths: Paths, *, include_failed: bool = True) -> list[Path]:
    found = [p for p in paths.backups_dir.glob("*.zip") if p.is_file()]
    if include_failed:
        found += [p for p in (paths.backups_dir / FAILED_DIR).glob("*.zip") if p.is_file()]
    return found


def list_backups(paths: Paths, *, include_failed: bool = True) -> list[dict[str, Any]]:
    """Every archive in the backups folder (and, unless told otherwise, those kept aside as failed),
    newest first, as listing items."""
    items = []
    for archive in _archives(paths, include_failed=include_failed):
        with contextlib.suppress(FileNotFoundError):  # pruned meanwhile
            items.append(describe_backup(archive))
    items.sort(key=lambda item: (item["created_at"], item["name"]), reverse=True)
    return items


def find_backup(paths: Paths, name: str) -> Path:
    """The archive called ``name`` in the backups folder (or kept aside in its failed folder).

    Only a bare archive name is accepted, never a path. Raises :class:`BadRequest`
    for anything else and :class:`NotFound` when there is no such archive.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadRequest(f"{str(name)[:80]!r} is not a backup name (like backup-20260105T020000Z.zip)")
    for folder in (paths.backups_dir, paths.backups_dir / FAILED_DIR):
        path = folder / name
        if path.is_file():
            return path
    raise NotFound(f"there is no backup named {name} in {paths.backups_dir}")


def resolve_archive(paths: Paths, name_or_path: str) -> Path:
    """For the command line: a backup name (see :func:`find_backup`) or the path of an archive anywhere."""
    candidate = Path(name_or_path).expanduser()
    if _NAME.match(name_or_path) and not candidate.is_file():
        return find_backup(paths, name_or_path)
    if _NAME.match(name_or_path) and (paths.backups_dir / name_or_path).is_file():
        return paths.backups_dir / name_or_path
    if candidate.is_file():
        return candidate.resolve()
    raise NotFound(f"there is no archive at {name_or_path}")


def last_backup(paths: Paths) -> dict[str, Any] | None:
    """The newest archive's listing item (failed ones included), or ``None``."""
    items = list_backups(paths)
    return items[0] if items else None


# --- results kept beside an archive ---------------------------------------------------------


def write_verification(archive: Path, verification: dict[str, Any]) -> None:
    """Store ``verification`` beside ``archive`` as ``<name>.verify.json`` (owner-readable only)."""
    target = archive.with_name(archive.name + VERIFY_SUFFIX)
    write_private_file(target, json.dumps(verification, indent=2, sort_keys=True), durable=False)


def write_drill(archive: Path, result: dict[str, Any]) -> None:
    """Store a restore drill's ``result`` beside ``archive`` as ``<name>.drill.json`` (owner-readable only)."""
    target = archive.with_name(archive.name + DRILL_SUFFIX)
    write_private_file(target, json.dumps(result, indent=2, sort_keys=True), durable=False)


DRILL_FIELDS = ("at", "backup", "outcome", "message", "duration_seconds")


def read_drill(archive: Path) -> dict[str, Any] | None:
    """The last restore drill of ``archive`` as ``{"at", "backup", "outcome", "message", "duration_seconds"}``,
    or ``None`` when it was never drilled (or the result is unreadable)."""
    data = _read_json(archive.with_name(archive.name + DRILL_SUFFIX))
    if not isinstance(data, dict) or not isinstance(data.get("at"), str):
        return None
    return {key: data.get(key) for key in DRILL_FIELDS}


def last_restore_drill(paths: Paths) -> dict[str, Any] | None:
    """The newest restore drill recorded in the backups folder (of any archive, failed ones included),
    as :func:`read_drill` gives it, or ``None`` when no drill ran yet."""
    found = []
    for folder in (paths.backups_dir, paths.backups_dir / FAILED_DIR):
        for path in folder.glob(f"*.zip{DRILL_SUFFIX}"):
            drill = read_drill(path.with_name(path.name[: -len(DRILL_SUFFIX)]))
            if drill is not None:
                found.append(drill)
    return max(found, key=lambda d: (d["at"], d["backup"] or ""), default=None)


# --- the last restore -----------------------------------------------------------------------

LAST_RESTORE = "last-restore.json"


def record_restore(paths: Paths, archive_name: str, at: dt.datetime, safety_backup: str | None) -> None:
    """Remember that the home was restored from ``archive_name`` at ``at`` (retention keeps that archive
    for a while; see :mod:`appliance.backups.retention`)."""
    data = {"archive": archive_name, "at": iso(at), "safety_backup": safety_backup}
    write_private_file(paths.backups_dir / LAST_RESTORE, json.dumps(data, indent=2, sort_keys=True))


def last_restore(paths: Paths) -> dict[str, Any] | None:
    """The last restore as ``{"archive", "at", "safety_backup"}``, or ``None`` when there was none."""
    data = _read_json(paths.backups_dir / LAST_RESTORE)
    if not isinstance(data, dict) or not isinstance(data.get("archive"), str):
        return None
    return data


def describe_contents(manifest: dict[str, Any]) -> str:
    """What an archive holds, as a person counts it: ``"215 customers, 60 orders, 5 users, 12 files"``.

    Each collection by its name (its table ``c_<name>``; the full-text index's tables left out), then the
    users and the uploaded files; the bookkeeping tables (sessions, history, audit ...) are not named.
    """
    counts = manifest.get("row_counts") or {}
    parts = [
        f"{count} {table[2:].replace('_', ' ')}"
        for table, count in sorted(counts.items())
        if table.startswith("c_") and "__" not in table and isinstance(count, int)
    ]
    users = counts.get("user")
    if isinstance(users, int):
        parts.append(f"{users} user{'' if users == 1 else 's'}")
    files = manifest.get("files")
    if isinstance(files, (list, dict)):
        parts.append(f"{len(files)} file{'' if len(files) == 1 else 's'}")
    return ", ".join(parts) or "no records"
