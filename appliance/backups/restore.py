"""Restore a backup archive into a home, all or nothing.

The order: refuse while a server runs on the home (and hold the home's
server lock meanwhile, so none starts); verify the archive, unpacking it into
``<home>/.restore/new`` (a corrupt or foreign archive, or one from a newer
schema, is refused and nothing changes); write a safety backup of the current
state (and refuse to go on when it fails verification); bring the unpacked
database up to this version's schema (a failing migration changes nothing);
then swap ``db/`` and ``files/`` in by renames. The settings file is kept
unless the archived one is asked for (``with_settings``, see
:mod:`appliance.backups.settings`); then it is checked before anything
changes, staged as ``.restore/appliance.toml`` and written in with the swap.

Atomicity across the two folders comes from a commit marker: once
``.restore/new`` is complete and on disk, ``.restore/COMMIT`` is written, and
from then on the restore only ever goes forward. :func:`recover_interrupted_restore`
(run by the server at start, by every restore, and by ``appliance backup``
commands) finishes a committed restore or discards an uncommitted one, so
a crash at any point leaves either the old state or the new one, never a mix.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee

from appliance.backups.archive import create_backup_locked
from appliance.backups.catalogue import exclusive_operation, record_restore
from appliance.backups.format import DB_MEMBER, FAILED_DIR, SETTINGS_MEMBER, disk_full, inspect_database
from appliance.backups.settings import OWN_SIGNATURES, SettingsToRestore, settings_to_restore
from appliance.backups.verify import verify_archive
from appliance.clock import as_stored
from appliance.config.home import Paths
from appliance.durable import fsync_dir, write_private_file
from appliance.errors import BackupFailed, BadRequest, Busy, Conflict, NotEnoughSpace, RestoreFailed
from appliance.storage.db import sqlite_pragmas
from appliance.storage.locks import FileLock
from appliance.storage.migrate import apply_migrations, code_schema_version, known_migrations
from appliance.storage.models import AuditEvent

WORK_DIR = ".restore"
COMMIT = "COMMIT"
PARTS = ("db", "files")


def _noop(_step: str) -> None:
    return None


# Called with the name of each step as it completes; a test replaces it to kill
# the process mid-restore. Production code never sets it.
on_step: Callable[[str], None] = _noop


def _step(name: str) -> None:
    on_step(name)


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, names in os.walk(root):
        for name in names:
            with open(Path(folder) / name, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(folder))


def _roll_forward(home: Path, work: Path) -> None:
    """Move each part's live folder to ``old/`` and the new one in; each step is a rename, so this
    can be re-run after a crash at any point and ends in the new state."""
    old, new = work / "old", work / "new"
    old.mkdir(exist_ok=True)
    for part in PARTS:
        live, incoming, previous = home / part, new / part, old / part
        if not incoming.exists():
            continue  # moved in already
        if live.exists() and not previous.exists():
            os.replace(live, previous)
            fsync_dir(home)
            _step(f"moved-old-{part}")
        os.replace(incoming, live)
        fsync_dir(home)
        _step(f"moved-new-{part}")
    staged = work / SETTINGS_MEMBER
    if staged.exists():  # written again after a crash: the same bytes
        write_private_file(Paths(home).settings_file, staged.read_bytes())
        _step("moved-settings")
    (work / COMMIT).unlink()
    fsync_dir(work)
    _step("uncommitted")
    shutil.rmtree(work, ignore_errors=True)


def recover_interrupted_restore(paths: Paths) -> str | None:
    """Finish or undo a restore that a crash interrupted; returns what was done (or ``None``).

    The caller must own the home (hold the server lock or the backup lock):
    the server calls it at start, a restore before it begins.
    """
    work = paths.home / WORK_DIR
    if not work.exists():
        return None
    if (work / COMMIT).exists():
        _roll_forward(paths.home, work)
        return "finished an interrupted restore"
    shutil.rmtree(work, ignore_errors=True)
    return "discarded an unfinished restore (nothing had changed)"


def restore_backup(
    paths: Paths,
    archive: Path,
    *,
    safety_backup: bool = True,
    now: dt.datetime | None = None,
    actor: str = "cli",
    accept_foreign: bool = False,
    with_settings: bool = False,
    with_secrets: bool = False,
) -> dict[str, Any]:
    """Replace the home's database and files (and with ``with_settings`` its settings file) with those of
    ``archive``.

    The restored database gets a ``backup.restored`` audit event by ``actor``
    (written into it before the swap, so it is there exactly when the restore
    is), and the backups folder remembers the archive restored from (retention
    keeps it for a while). An archive not signed by this instance is refused
    unless ``accept_foreign`` (see :func:`appliance.backups.verify.verify_archive`). The current
    settings are kept unless ``with_settings``; the secret settings of a foreign archive are then left
    out (the current ones kept) unless ``with_secrets`` too.

    Returns ``{"restored", "safety_backup", "schema_version", "migrations_applied", "settings"
    ("kept" or "restored"), "secrets_left_out" (names)}``.
    Raises :class:`Conflict` while a server runs on the home or when the safety
    backup cannot be made or fails verification, :class:`Busy` during another
    backup or restore, :class:`BadRequest` for an archive that fails verification
    or comes from a newer schema, :class:`RestoreFailed` when the disk is full or
    the archive's database cannot be migrated, :class:`BadRequest` when ``with_settings`` and the archive
    holds no settings file or one that does not parse with this version. In every one of these cases
    nothing is changed.
    """
    lock = FileLock(paths.server_lock)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    if not lock.acquire():
        raise Conflict("a server is running on this home: stop it first, then restore")
    try:
        with exclusive_operation(paths, "restore"):
            recover_interrupted_restore(paths)
            work = paths.home / WORK_DIR
            new = work / "new"
            try:
                work.mkdir()
                verification = verify_archive(archive, work, keep_into=new, paths=paths, accept_foreign=accept_foreign)
                if not verification["ok"]:
                    raise BadRequest(
                        f"the archive {archive.name} is refused: " + "; ".join(verification["problems"][:3]),
                        problems=verification["problems"],
                    )
                if comes_from_newer_version(verification, new):
                    raise BadRequest(
                        f"the archive {archive.name} comes from a newer version of Office Appliance "
                        f"(schema {verification['schema_version']}, this version knows {code_schema_version()}); "
                        "upgrade the software first"
                    )
                to_restore: SettingsToRestore | None = None
                if with_settings:
                    foreign = verification["signature"] not in OWN_SIGNATURES
                    to_restore = settings_to_restore(
                        new, paths, archive.name, foreign=foreign, with_secrets=with_secrets
                    )
                _step("verified")
                safety_name = None
                if safety_backup and paths.database_file.exists():
                    safety_name = _safety_backup(paths, now)
                _step("safety-backup")
                stage_unpacked(new, paths)
                _step("staged")
                applied = migrate_unpacked(new / "db" / paths.database_file.name, archive.name)
                moment = now or dt.datetime.now(dt.UTC)
                _audit_restore(
                    new / "db" / paths.database_file.name, archive.name, safety_name, actor, moment, to_restore
                )
                _fsync_tree(new)
                if to_restore is not None:
                    write_private_file(work / SETTINGS_MEMBER, to_restore.data)
                _step("migrated")
            except NotEnoughSpace as exc:
                shutil.rmtree(work, ignore_errors=True)
                raise RestoreFailed(
                    f"not enough disk space to restore {archive.name}: {exc.message}; nothing was changed"
                ) from None
            except OSError as exc:
                shutil.rmtree(work, ignore_errors=True)
                what = "not enough disk space to restore" if disk_full(exc) else "cannot restore"
                raise RestoreFailed(f"{what} {archive.name}: {exc.strerror or exc}; nothing was changed") from None
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
            marker = work / COMMIT
            marker.write_text(json.dumps({"archive": archive.name}))
            with open(marker, "rb") as fh:
                os.fsync(fh.fileno())
            fsync_dir(work)
            _step("committed")
            _roll_forward(paths.home, work)
            _step("swapped")
            record_restore(paths, archive.name, moment, safety_name)
            return {
                "restored": archive.name,
                "safety_backup": safety_name,
                "schema_version": code_schema_version(),
                "migrations_applied": applied,
                "settings": "kept" if to_restore is None else "restored",
                "secrets_left_out": [] if to_restore is None else to_restore.left_out,
            }
    finally:
        lock.release()


def _audit_restore(
    db_file: Path,
    archive_name: str,
    safety: str | None,
    actor: str,
    at: dt.datetime,
    settings: SettingsToRestore | None = None,
) -> None:
    """Write the ``backup.restored`` audit event into the staged database (on a connection of its own)."""
    db = peewee.SqliteDatabase(str(db_file), pragmas=sqlite_pragmas(30000))
    try:
        db.connect()
        AuditEvent.insert(
            at=as_stored(at),
            actor_id=None,
            actor=actor[:320],
            action="backup.restored",
            target=archive_name,
            details=json.dumps(
                {
                    "archive": archive_name,
                    "safety_backup": safety,
                    "settings": "kept" if settings is None else "restored",
                    "secrets_left_out": [] if settings is None else settings.left_out,
                },
                sort_keys=True,
            ),
        ).bind(db).execute()
    finally:
        db.close()


def _safety_backup(paths: Paths, now: dt.datetime | None) -> str:
    """Back up the current state before it is replaced; refuses (:class:`Conflict`) when that backup
    cannot be written or does not verify, since the restore would then leave no way back."""
    try:
        safety = create_backup_locked(paths, now=now, kind="safety")
    except NotEnoughSpace as exc:
        raise RestoreFailed(
            f"not enough disk space to restore: the safety backup of the current state needs room ({exc.message}); "
            "nothing was changed"
        ) from None
    except BackupFailed as exc:
        raise Conflict(
            f"cannot make the safety backup of the current state ({exc.message}); "
            "restore with --no-safety-backup to go on without one"
        ) from None
    if not safety.verified:
        raise Conflict(
            f"the safety backup of the current state failed verification "
            f"({'; '.join(safety.verification['problems'][:2])}); it was kept aside in "
            f"{paths.backups_dir / FAILED_DIR}. Nothing was restored; restore with --no-safety-backup "
            "to go on without a safety backup",
            problems=safety.verification["problems"],
        )
    return str(safety.item["name"])


def comes_from_newer_version(verification: dict[str, Any], new: Path) -> bool:
    """Whether the archive unpacked into ``new`` (with its ``verification`` result) comes from a newer
    version: a higher schema version, or a migration this version does not ship."""
    newer = set(inspect_database(new / DB_MEMBER)["migrations"]) - {m.name for m in known_migrations()}
    return bool(verification["schema_version"] > code_schema_version() or newer)


def stage_unpacked(new: Path, paths: Paths) -> None:
    """Shape the archive unpacked into ``new`` as ``new/db`` and ``new/files`` (the layout of
    ``paths``) and flush it to disk."""
    unpacked = new / DB_MEMBER
    target = new / "db" / paths.database_file.name
    if unpacked != target:
        target.parent.mkdir(exist_ok=True)
        os.replace(unpacked, target)
    (new / "files").mkdir(exist_ok=True)
    for extra in new.iterdir():
        if extra.name not in PARTS:
            if extra.is_dir():
                shutil.rmtree(extra)
            else:
                extra.unlink()
    _fsync_tree(new)


def migrate_unpacked(db_file: Path, archive_name: str) -> list[str]:
    """Apply the migrations an older archive lacks to its unpacked database ``db_file``, before the
    restore commits, on a connection of its own; returns their names. Raises :class:`RestoreFailed`
    naming what failed."""
    db = peewee.SqliteDatabase(str(db_file), pragmas=sqlite_pragmas(30000))
    try:
        db.connect()
        return apply_migrations(db)
    except OSError:
        raise
    except Exception as exc:
        full = "full" in str(exc).lower()
        reason = "not enough disk space to restore" if full else "cannot restore"
        raise RestoreFailed(
            f"{reason} {archive_name}: bringing its database up to this version failed "
            f"({type(exc).__name__}: {exc}); nothing was changed"
        ) from None
    finally:
        db.close()


def recover_if_idle(paths: Paths) -> str | None:
    """:func:`recover_interrupted_restore` when nobody owns the home (no server, no restore running);
    for commands that work on a home without a server. Returns what was done (or ``None``)."""
    if not (paths.home / WORK_DIR).exists():
        return None
    lock = FileLock(paths.server_lock)
    if not lock.acquire():
        return None
    try:
        with exclusive_operation(paths, "recovery"):
            return recover_interrupted_restore(paths)
    except Busy:
        return None
    finally:
        lock.release()
