"""Restore drills: prove, on a schedule, that the newest verified backup can really be restored.

A drill restores an archive into a scratch home inside the backups folder
(``backups/.work-drill-<pid>-<hex>/``, on the same disk as a real restore,
and removed by the next backup if a crash leaves it) along the code path of a
real restore (:mod:`appliance.backups.restore`): verify and unpack, refuse a newer
schema, stage, migrate to this version's schema. It then opens the restored
database as the server would (no pending or unknown migration), runs
``PRAGMA integrity_check``, compares every table's row count with the
manifest, and checks that every stored file the database refers to is
present. The live ``db/`` and ``files/`` are never touched.

A drill holds the home's backup lock (:func:`appliance.backups.catalogue.exclusive_operation`),
so it never overlaps a backup, a verification or a restore; it raises
:class:`Busy` instead (the job records that as ``skipped``). Its result is
stored beside the archive as ``<name>.zip.drill.json`` (the backups folder is
the truth about backups; see :func:`appliance.backups.catalogue.read_drill`)
and returned: the ``restore_drill`` job raises the alert for a failed one
(:func:`appliance.jobs.builtin.drill_backup`).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any, cast

import peewee

from appliance.backups.catalogue import (
    clean_leftovers,
    exclusive_operation,
    list_backups,
    scratch_name,
    write_drill,
    write_verification,
)
from appliance.backups.format import FAILED_DIR, MANIFEST, referenced_digests
from appliance.backups.restore import comes_from_newer_version, migrate_unpacked, stage_unpacked
from appliance.backups.verify import verify_archive
from appliance.clock import aware, iso
from appliance.config.home import Paths
from appliance.durable import private_dir
from appliance.errors import NotEnoughSpace, NotFound, RestoreFailed
from appliance.storage.db import sqlite_pragmas
from appliance.storage.migrate import code_schema_version, pending_migrations, unknown_migrations

# Tables whose row count a migration legitimately changes: the runner records each migration it applies.
_MIGRATION_TABLE = "schema_migration"


def newest_verified_backup(paths: Paths) -> Path | None:
    """The newest archive of the backups folder whose verification passed (failed ones never), or ``None``."""
    for item in list_backups(paths, include_failed=False):
        if item["verified"]:
            return paths.backups_dir / str(item["name"])
    return None


def run_restore_drill(paths: Paths, archive: Path | None = None, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Restore ``archive`` (default: the newest verified backup) into a scratch home and check it.

    Returns the drill result ``{"at", "backup", "outcome" ("ok" or "failed"), "message",
    "duration_seconds", "problems", "migrations_applied", "tables_checked", "files_checked"}``, also
    stored beside an archive of the backups folder as ``<name>.zip.drill.json``. A drill whose
    verification fails stores that verification too (the archive is no longer "verified"), but the
    archive is not moved. The scratch folder is always removed.

    Raises :class:`Busy` while a backup, verification or restore holds the backup lock,
    :class:`NotFound` when there is no verified backup to drill (nothing is stored then).
    A damaged archive is never raised: it is a failed drill.
    """
    with exclusive_operation(paths, "restore drill"):
        backups_dir = private_dir(paths.backups_dir)
        clean_leftovers(backups_dir)
        if archive is None:
            archive = newest_verified_backup(paths)
            if archive is None:
                raise NotFound("there is no verified backup to drill yet")
        at = aware(now) or dt.datetime.now(dt.UTC)
        started = time.monotonic()
        scratch = backups_dir / scratch_name("drill")
        problems: list[str] = []
        facts: dict[str, Any] = {"migrations_applied": [], "tables_checked": 0, "files_checked": 0}
        try:
            verification = _drill_into(archive, scratch, problems, facts)
        except NotEnoughSpace as exc:
            verification = None
            problems.append(f"not enough disk space for the drill: {exc.message}")
        except Exception as exc:  # a drill reports every fault as its outcome, never as a crash of the job
            verification = None
            problems.append(f"the drill stopped: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        in_backups = archive.parent in (backups_dir, backups_dir / FAILED_DIR)
        if verification is not None and not verification["ok"] and in_backups:
            # The archive changed since it was verified: say so where the listing looks.
            write_verification(archive, verification)
        result = {
            "at": iso(at),
            "backup": archive.name,
            "outcome": "failed" if problems else "ok",
            "message": _message(archive.name, problems, facts),
            "duration_seconds": round(time.monotonic() - started, 3),
            "problems": problems,
            **facts,
        }
        if in_backups:
            write_drill(archive, result)
        return result


def _message(name: str, problems: list[str], facts: dict[str, Any]) -> str:
    if problems:
        return f"restore drill of {name} failed: " + "; ".join(problems[:3])
    migrated = facts["migrations_applied"]
    return (
        f"{name} restored into a scratch home: integrity ok, {facts['tables_checked']} table(s) match the manifest, "
        f"{facts['files_checked']} referenced file(s) present"
        + (f", {len(migrated)} migration(s) applied" if migrated else "")
    )


def _drill_into(archive: Path, scratch: Path, problems: list[str], facts: dict[str, Any]) -> dict[str, Any] | None:
    """The restore's own steps into ``scratch`` (see :func:`appliance.backups.restore.restore_backup`), then the
    checks; appends what is wrong to ``problems``. Returns the verification result (``None`` when the
    drill stopped before it)."""
    scratch.mkdir()
    new = scratch / "new"
    verification = verify_archive(archive, scratch, keep_into=new)
    if not verification["ok"]:
        problems.extend(verification["problems"])
        return verification
    if comes_from_newer_version(verification, new):
        problems.append(
            f"the archive comes from a newer version (schema {verification['schema_version']}, "
            f"this version knows {code_schema_version()})"
        )
        return verification
    manifest = _read_manifest(archive)
    scratch_home = Paths(scratch / "new")
    stage_unpacked(new, scratch_home)
    db_file = scratch_home.database_file
    try:
        facts["migrations_applied"] = migrate_unpacked(db_file, archive.name)
    except RestoreFailed as exc:
        problems.append(exc.message)
        return verification
    _check_restored(scratch_home, manifest, facts, problems)
    return verification


def _read_manifest(archive: Path) -> dict[str, Any]:
    with zipfile.ZipFile(archive) as zf:
        return cast("dict[str, Any]", json.loads(zf.read(MANIFEST)))


def _check_restored(home: Paths, manifest: dict[str, Any], facts: dict[str, Any], problems: list[str]) -> None:
    """Open the restored database as the server would and check it against the manifest and its files."""
    db = peewee.SqliteDatabase(str(home.database_file), pragmas=sqlite_pragmas(30000))
    try:
        db.connect()
        pending = pending_migrations(db) + unknown_migrations(db)
        if pending:
            problems.append(f"the restored database would not open: migrations out of step ({', '.join(pending[:3])})")
        rows = [row[0] for row in db.execute_sql("PRAGMA integrity_check").fetchall()]
        if rows != ["ok"]:
            problems.append("the restored database fails integrity_check: " + "; ".join(rows[:5]))
            return
        expected = dict(manifest.get("row_counts", {}))
        if _MIGRATION_TABLE in expected:
            expected[_MIGRATION_TABLE] += len(facts["migrations_applied"])
        present = set(db.get_tables())
        differ = []
        for table, count in sorted(expected.items()):
            if table not in present:
                differ.append(f"{table} (missing)")
                continue
            found = db.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if found != count:
                differ.append(f"{table} ({found} rows, the manifest says {count})")
        facts["tables_checked"] = len(expected) - len(differ)
        if differ:
            problems.append("row counts differ from the manifest in: " + ", ".join(differ[:5]))
    finally:
        db.close()
    digests = referenced_digests(home.database_file) or []
    missing = [d for d in digests if not (home.files_dir / d[:2] / d).is_file()]
    facts["files_checked"] = len(digests) - len(missing)
    if missing:
        problems.append(f"{len(missing)} referenced file(s) missing from the restored files: {', '.join(missing[:3])}")
