"""Backups: one ``.zip`` archive per backup, verified right after it is written.

An archive holds a consistent snapshot of the database (SQLite's online
backup API, copied in steps while the server keeps writing), the uploaded
files, and ``manifest.json`` (app version, schema version, created_at, sha256
and size of every member, row count per table). The archive's zip comment
carries the sha256 of the manifest, so an edited manifest is caught too.

The backups folder is the truth about which backups exist: each archive
carries its manifest, and its verification result sits beside it as
``<name>.zip.verify.json``; an archive that fails verification is moved
aside to ``backups/failed/``. Nothing about backups lives in the database,
so a restore (which rolls the database back) forgets no archive.

Only one backup or restore runs at a time on a home: :func:`exclusive_operation`
holds an OS lock on ``run/backup.lock`` and raises :class:`Busy` for a second.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from appliance import __version__
from appliance.clock import iso
from appliance.errors import ApplianceError, BadRequest, Busy, NotFound
from appliance.home import Paths

FORMAT = "office-appliance-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_MEMBER = "db/appliance.sqlite3"
FILES_PREFIX = "files/"
VERIFY_SUFFIX = ".verify.json"
FAILED_DIR = "failed"
COMMENT_PREFIX = f"{FORMAT} manifest-sha256="
STEP_PAGES = 1024  # pages copied per step of the online backup (4 MiB with 4 KiB pages)
_CHUNK = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.zip$")


class BackupFailed(ApplianceError):
    """A backup could not be written (disk full, unreadable database ...)."""

    code = "backup_failed"
    status = 500


# --- one backup or restore at a time ----------------------------------------


def _lock_path(paths: Paths) -> Path:
    return paths.run_dir / "backup.lock"


@contextlib.contextmanager
def exclusive_operation(paths: Paths, what: str) -> Iterator[None]:
    """Hold the home's backup/restore lock for the block; raises :class:`Busy` when another holds it.

    An OS lock (flock), so it holds across threads and processes and is
    released by the OS when the holder dies.
    """
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    fh = open(_lock_path(paths), "a+")
    try:
        if os.name == "nt":  # pragma: no cover - Windows only
            import msvcrt

            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip()
        fh.close()
        raise Busy(
            f"busy: another backup or restore is running on this home{f' ({holder})' if holder else ''}; "
            "try again when it has finished"
        ) from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{what}, pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
        fh.close()


def is_busy(paths: Paths) -> bool:
    """Whether a backup or restore holds the lock right now."""
    try:
        with exclusive_operation(paths, "probe"):
            return False
    except Busy:
        return True


# --- small file helpers -------------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (a no-op where directories cannot be opened)."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> tuple[str, int]:
    """``(hex digest, size)`` of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def _aware(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)


# --- the database snapshot ------------------------------------------------------


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


# --- writing an archive ---------------------------------------------------------------


def referenced_digests(db_path: Path) -> list[str] | None:
    """The content digests the ``file_ref`` table of a database file refers to, or ``None`` when it has none."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='file_ref'").fetchone():
            return None
        return sorted(row[0] for row in con.execute("SELECT DISTINCT sha256 FROM file_ref"))
    finally:
        con.close()


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
        while chunk := fh.read(_CHUNK):
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


def _clean_leftovers(backups_dir: Path) -> None:
    """Remove scratch folders and partial archives left by a crash (called under the lock)."""
    for path in backups_dir.glob(".work-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in backups_dir.glob(".*.partial"):
        with contextlib.suppress(OSError):
            path.unlink()


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

    ``kind`` is ``"manual"``, ``"scheduled"`` or ``"safety"`` (before a restore).
    Returns a :class:`BackupResult`; a backup that fails verification is moved
    to ``backups/failed/`` and comes back with ``verified`` false (the caller
    alerts). When ``offsite_dir`` is set, a verified archive is copied there
    and checked; the outcome is stored with the verification, and a failure
    there does not fail the backup. Raises :class:`Busy` while another backup
    or restore runs, :class:`BackupFailed` when the archive cannot be written.
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
    backups_dir = paths.backups_dir
    backups_dir.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(backups_dir)
    created = _aware(now)
    name = _unique_name(backups_dir, "safety" if kind == "safety" else "backup", created)
    final = backups_dir / name
    partial = backups_dir / f".{name}.partial"
    work = backups_dir / f".work-{secrets.token_hex(4)}"
    work.mkdir()
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        snapshot = work / "appliance.sqlite3"
        snap = snapshot_database(paths.database_file, snapshot, step_pages=step_pages, on_snapshot=on_snapshot)
        timings["snapshot_seconds"] = snap["snapshot_seconds"]
        facts = inspect_database(snapshot)
        files = _snapshot_files(paths.files_dir, snapshot)
        members: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        try:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                members[DB_MEMBER] = _add_member(zf, DB_MEMBER, snapshot)
                for arcname, path in files:
                    try:
                        members[arcname] = _add_member(zf, arcname, path)
                    except FileNotFoundError:
                        # Referenced but not on disk (removed with its record just after the snapshot,
                        # or lost before it): recorded, so the verification result shows it.
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
                    "row_counts": facts["row_counts"],
                    "missing_files": missing,
                }
                manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
                zf.writestr(MANIFEST, manifest_bytes)
                zf.comment = (COMMENT_PREFIX + hashlib.sha256(manifest_bytes).hexdigest()).encode()
            with open(partial, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(partial, final)
            fsync_dir(backups_dir)
        except OSError as exc:
            raise BackupFailed(f"cannot write the archive {name}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            partial.unlink()
    timings["write_seconds"] = round(time.monotonic() - started, 3)
    verification = verify_archive(final, backups_dir)
    timings["verify_seconds"] = verification["duration_seconds"]
    if missing:
        verification["warnings"] = [f"{len(missing)} referenced file(s) were not on disk: {', '.join(missing[:3])}"]
    path = final
    if verification["ok"]:
        if offsite_dir:
            verification["offsite"] = copy_offsite(final, Path(offsite_dir))
    else:
        path = _move_aside(final)
    write_verification(path, verification)
    return BackupResult(describe_backup(path), path, verification, timings)


def _move_aside(archive: Path) -> Path:
    failed_dir = archive.parent / FAILED_DIR
    failed_dir.mkdir(exist_ok=True)
    target = failed_dir / archive.name
    os.replace(archive, target)
    fsync_dir(failed_dir)
    return target


def write_verification(archive: Path, verification: dict[str, Any]) -> None:
    target = archive.with_name(archive.name + VERIFY_SUFFIX)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(verification, indent=2, sort_keys=True))
    os.replace(tmp, target)


# --- verification ------------------------------------------------------------------------


def _safe_member(name: str) -> bool:
    pure = PurePosixPath(name)
    return not (pure.is_absolute() or ".." in pure.parts or "\\" in name or name.endswith("/"))


def verify_archive(archive: Path, scratch_parent: Path, *, keep_into: Path | None = None) -> dict[str, Any]:
    """Check an archive: unpack it into a scratch folder, compare every checksum and size with the
    manifest (whose own checksum is in the zip comment), run ``integrity_check`` on the database and
    compare its row counts and schema version with the manifest.

    Returns the verification result: ``{"ok", "checked_at", "duration_seconds", "problems": [...],
    "integrity_check", "members_checked", "manifest"}``; never raises for a bad archive. With
    ``keep_into`` the unpacked tree is left in that (new) folder for a restore; otherwise the scratch
    folder inside ``scratch_parent`` is removed.
    """
    started = time.monotonic()
    problems: list[str] = []
    manifest: dict[str, Any] = {}
    integrity = None
    checked = 0
    scratch = keep_into or (scratch_parent / f".work-verify-{secrets.token_hex(4)}")
    try:
        scratch.mkdir(parents=True, exist_ok=keep_into is not None)
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            problems.append(f"not a readable zip archive: {exc}")
            return _result(problems, manifest, integrity, checked, started)
        with zf:
            manifest = _read_manifest(zf, problems)
            if manifest:
                checked = _check_members(zf, manifest, scratch, problems)
                db_path = scratch / DB_MEMBER
                if not problems and db_path.exists():
                    integrity = _check_database(db_path, manifest, problems)
    finally:
        if keep_into is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return _result(problems, manifest, integrity, checked, started)


def _result(problems, manifest, integrity, checked, started) -> dict[str, Any]:
    return {
        "ok": not problems,
        "checked_at": iso(dt.datetime.now(dt.UTC)),
        "duration_seconds": round(time.monotonic() - started, 3),
        "problems": problems,
        "integrity_check": integrity,
        "members_checked": checked,
        "schema_version": manifest.get("schema_version"),
        "app_version": manifest.get("app_version"),
        "created_at": manifest.get("created_at"),
    }


def _read_manifest(zf: zipfile.ZipFile, problems: list[str]) -> dict[str, Any]:
    names = zf.namelist()
    unsafe = [n for n in names if not _safe_member(n)]
    if unsafe:
        problems.append(f"unsafe member name(s) in the archive: {', '.join(unsafe[:3])}")
        return {}
    if MANIFEST not in names:
        problems.append("manifest.json is missing: this is not an Office Appliance backup")
        return {}
    try:
        raw = zf.read(MANIFEST)
    except (zipfile.BadZipFile, OSError) as exc:
        problems.append(f"manifest.json is corrupt: {exc}")
        return {}
    comment = zf.comment.decode("utf-8", "replace")
    if not comment.startswith(COMMENT_PREFIX):
        problems.append("the archive does not carry the manifest checksum: not an Office Appliance backup")
        return {}
    if hashlib.sha256(raw).hexdigest() != comment[len(COMMENT_PREFIX) :].strip():
        problems.append("manifest.json was changed after the backup was written (its checksum does not match)")
        return {}
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        problems.append(f"manifest.json is not valid JSON: {exc}")
        return {}
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        problems.append("manifest.json is not an Office Appliance manifest")
        return {}
    if not isinstance(manifest.get("members"), dict) or DB_MEMBER not in manifest["members"]:
        problems.append("the manifest lists no database")
        return {}
    return manifest


def _check_members(zf: zipfile.ZipFile, manifest: dict[str, Any], scratch: Path, problems: list[str]) -> int:
    listed = manifest["members"]
    present = set(zf.namelist()) - {MANIFEST}
    for name in sorted(set(listed) - present):
        problems.append(f"member missing from the archive: {name}")
    for name in sorted(present - set(listed)):
        problems.append(f"member not listed in the manifest: {name}")
    checked = 0
    for name in sorted(set(listed) & present):
        if not _safe_member(name):
            continue
        expected = listed[name]
        target = scratch / name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        try:
            with zf.open(name) as src, open(target, "wb") as out:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
            problems.append(f"member {name} cannot be read: {exc}")
            continue
        checked += 1
        if size != expected.get("size") or digest.hexdigest() != expected.get("sha256"):
            problems.append(f"member {name} does not match its checksum in the manifest")
    return checked


def _check_database(db_path: Path, manifest: dict[str, Any], problems: list[str]) -> str | None:
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            rows = [row[0] for row in con.execute("PRAGMA integrity_check")]
        finally:
            con.close()
        integrity = "ok" if rows == ["ok"] else "; ".join(rows[:5])
        if integrity != "ok":
            problems.append(f"the database fails integrity_check: {integrity}")
            return integrity
        facts = inspect_database(db_path)
    except sqlite3.DatabaseError as exc:
        problems.append(f"the database fails integrity_check: {exc}")
        return str(exc)
    expected = manifest.get("row_counts", {})
    if facts["row_counts"] != expected:
        differ = sorted(
            name
            for name in set(expected) | set(facts["row_counts"])
            if expected.get(name) != facts["row_counts"].get(name)
        )
        problems.append(f"row counts differ from the manifest in: {', '.join(differ[:5])}")
    if facts["schema_version"] != manifest.get("schema_version"):
        problems.append("the database's schema version differs from the manifest")
    return integrity


# --- listing and lookup --------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _manifest_of(archive: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(archive) as zf:
            data = json.loads(zf.read(MANIFEST))
            return data if isinstance(data, dict) else {}
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
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


# --- retention and the offsite copy ------------------------------------------------------------------


def select_kept(items: list[dict[str, Any]], keep_daily: int, keep_weekly: int) -> set[str]:
    """Names of the verified archives retention keeps: the newest of each of the ``keep_daily`` most
    recent days and of the ``keep_weekly`` most recent ISO weeks (UTC) that have backups, and always
    the newest verified archive."""
    verified = sorted(
        (item for item in items if item["verified"]), key=lambda i: (i["created_at"], i["name"]), reverse=True
    )
    kept: set[str] = set()
    days: list[dt.date] = []
    weeks: list[tuple[int, int]] = []
    for item in verified:
        created = _parse_iso(item["created_at"])
        day = created.date()
        week = tuple(created.isocalendar())[:2]
        if day not in days and len(days) < keep_daily:
            days.append(day)
            kept.add(item["name"])
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.append(week)
            kept.add(item["name"])
    if verified:
        kept.add(verified[0]["name"])
    return kept


def prune_backups(paths: Paths, keep_daily: int, keep_weekly: int, *, offsite_dir: str = "") -> dict[str, list[str]]:
    """Delete the verified archives that retention does not keep (with their verification files and
    offsite copies). Archives that are unverified or kept aside as failed are left for the admin.
    Returns ``{"kept": [...], "deleted": [...]}``; raises :class:`Busy` during another backup or restore.
    """
    with exclusive_operation(paths, "prune"):
        items = list_backups(paths, include_failed=False)
        kept = select_kept(items, keep_daily, keep_weekly)
        deleted = []
        for item in items:
            if not item["verified"] or item["name"] in kept:
                continue
            archive = paths.backups_dir / item["name"]
            targets = [archive, archive.with_name(archive.name + VERIFY_SUFFIX)]
            if offsite_dir:
                targets.append(Path(offsite_dir) / item["name"])
            for target in targets:
                with contextlib.suppress(FileNotFoundError, OSError):
                    target.unlink()
            deleted.append(item["name"])
        return {"kept": sorted(kept), "deleted": sorted(deleted)}


def copy_offsite(archive: Path, offsite_dir: Path) -> dict[str, Any]:
    """Copy ``archive`` into ``offsite_dir`` and check the copy's checksum.

    Returns ``{"ok", "path", "error"?}``; never raises (an unreachable folder
    must not fail the local backup; the caller alerts on ``ok`` false).
    """
    result: dict[str, Any] = {"ok": False, "path": str(offsite_dir / archive.name), "checked_at": None}
    try:
        if not offsite_dir.is_dir():
            raise OSError(f"the folder {offsite_dir} does not exist or is not mounted")
        partial = offsite_dir / f".{archive.name}.partial"
        shutil.copyfile(archive, partial)
        with open(partial, "rb+") as fh:
            os.fsync(fh.fileno())
        expected = sha256_file(archive)
        if sha256_file(partial) != expected:
            partial.unlink()
            raise OSError("the copy does not match the archive (checksum differs)")
        os.replace(partial, offsite_dir / archive.name)
        result.update(ok=True, sha256=expected[0], checked_at=iso(dt.datetime.now(dt.UTC)))
    except OSError as exc:
        result["error"] = str(exc)
    return result
