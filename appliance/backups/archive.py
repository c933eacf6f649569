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

Only one backup, verification or restore runs at a time on a home:
:func:`exclusive_operation` holds an OS lock on ``run/backup.lock`` and raises
:class:`Busy` for a second. While a backup copies the uploaded files it also
holds ``run/files.lock`` (see :mod:`appliance.locks`), so that no stored file
its snapshot refers to is removed under it.

Archives and their verification results hold password and token hashes:
they are written readable by the owner only, in a folder only the owner can enter.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from appliance import __version__
from appliance.clock import aware, iso
from appliance.config.home import Paths
from appliance.errors import BackupFailed, BadRequest, NotEnoughSpace, NotFound
from appliance.storage.locks import copying_files, exclusive, is_locked

log = logging.getLogger("appliance.backups")

FORMAT = "office-appliance-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_MEMBER = "db/appliance.sqlite3"
FILES_PREFIX = "files/"
VERIFY_SUFFIX = ".verify.json"
DRILL_SUFFIX = ".drill.json"  # the last restore drill of the archive (see appliance.drill)
FAILED_DIR = "failed"
COMMENT_PREFIX = f"{FORMAT} manifest-sha256="
STEP_PAGES = 1024  # pages copied per step of the online backup (4 MiB with 4 KiB pages)
_CHUNK = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.zip$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # about 400,000 files; a bigger one is not ours
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# Write errors that mean the disk (or the process's file size limit) is full, not that the archive is bad.
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def disk_full(exc: OSError) -> bool:
    """Whether a write failed because the disk (or the file size limit) is full."""
    return exc.errno in _DISK_FULL


# --- one backup or restore at a time ----------------------------------------


def _lock_path(paths: Paths) -> Path:
    return paths.run_dir / "backup.lock"


def exclusive_operation(paths: Paths, what: str) -> contextlib.AbstractContextManager[Any]:
    """Hold the home's backup/restore lock for the block; raises :class:`Busy` when another holds it.

    An OS lock (see :mod:`appliance.locks`), so it holds across threads and
    processes and is released by the OS when the holder dies.
    """
    return exclusive(
        _lock_path(paths),
        what,
        "busy: another backup or restore is running on this home{holder}; try again when it has finished",
    )


def is_busy(paths: Paths) -> bool:
    """Whether a backup or restore holds the lock right now."""
    return is_locked(_lock_path(paths))


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


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if need be and make it enterable by the owner only."""
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # a folder on a share may refuse chmod; its mount decides then
        os.chmod(path, PRIVATE_DIR)
    return path


def _create_private(path: Path) -> None:
    """Create the empty file ``path`` readable by the owner only (before anything secret is written to it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.close(fd)
    os.chmod(path, PRIVATE_FILE)  # O_CREAT's mode only counts for a new file


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


def _scratch_name(kind: str) -> str:
    """A scratch folder's name, carrying its owner's pid so that a clean-up spares the living."""
    return f".work-{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _owner_alive(name: str) -> bool:
    match = re.match(r"^\.work-[a-z]+-(\d+)-[0-9a-f]+$", name)
    if not match:
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return False  # ours, from an earlier call that could not clean up
    import psutil

    return psutil.pid_exists(pid)


def _clean_leftovers(backups_dir: Path) -> None:
    """Remove scratch folders and partial archives left by a crash (called under the lock). A scratch
    folder whose owner process still runs is left alone (a verification started without the lock, by
    an older version or by the console, may be using it)."""
    for path in backups_dir.glob(".work-*"):
        if not _owner_alive(path.name):
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
    _clean_leftovers(backups_dir)
    created = aware(now) or dt.datetime.now(dt.UTC)
    name = _unique_name(backups_dir, "safety" if kind == "safety" else "backup", created)
    final = backups_dir / name
    partial = backups_dir / f".{name}.partial"
    work = backups_dir / _scratch_name("backup")
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
            _create_private(partial)
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                members[DB_MEMBER] = _add_member(zf, DB_MEMBER, snapshot)
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
        if disk_full(exc):
            raise BackupFailed(f"not enough disk space to write the backup {name}: {exc.strerror or exc}") from None
        raise BackupFailed(f"cannot write the archive {name}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            partial.unlink()
    timings["write_seconds"] = round(time.monotonic() - started, 3)
    try:
        verification = verify_archive(final, backups_dir)
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


def write_verification(archive: Path, verification: dict[str, Any]) -> None:
    """Store ``verification`` beside ``archive`` as ``<name>.verify.json`` (owner-readable only)."""
    target = archive.with_name(archive.name + VERIFY_SUFFIX)
    tmp = target.with_name(f".{target.name}.tmp")
    _create_private(tmp)
    tmp.write_text(json.dumps(verification, indent=2, sort_keys=True))
    os.replace(tmp, target)


def write_drill(archive: Path, result: dict[str, Any]) -> None:
    """Store a restore drill's ``result`` beside ``archive`` as ``<name>.drill.json`` (owner-readable only)."""
    target = archive.with_name(archive.name + DRILL_SUFFIX)
    tmp = target.with_name(f".{target.name}.tmp")
    _create_private(tmp)
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True))
    os.replace(tmp, target)


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


def verify_backup(paths: Paths, archive: Path) -> dict[str, Any]:
    """Verify ``archive`` again under the home's backup lock (no backup prunes its scratch folder
    meanwhile) and, when it lives in the backups folder, store the result beside it.

    Returns the verification result. Raises :class:`Busy` during a backup or
    restore, :class:`NotEnoughSpace` when the disk has no room to unpack it
    (nothing is stored then: the archive is not at fault).
    """
    with exclusive_operation(paths, "verify"):
        backups_dir = private_dir(paths.backups_dir)
        result = verify_archive(archive, backups_dir)
        if archive.parent in (backups_dir, backups_dir / FAILED_DIR):
            write_verification(archive, result)
        return result


# --- verification ------------------------------------------------------------------------


def _safe_member(name: str) -> bool:
    pure = PurePosixPath(name)
    return bool(name) and not (
        pure.is_absolute()
        or ".." in pure.parts
        or "\\" in name
        or ":" in name
        or name.endswith("/")
        or "\x00" in name
        or name != pure.as_posix()  # "a//b", "./a": one file, two spellings
    )


def verify_archive(archive: Path, scratch_parent: Path, *, keep_into: Path | None = None) -> dict[str, Any]:
    """Check an archive: unpack it into a scratch folder, compare every checksum and size with the
    manifest (whose own checksum is in the zip comment), run ``integrity_check`` on the database and
    compare its row counts and schema version with the manifest.

    Returns the verification result: ``{"ok", "checked_at", "duration_seconds", "problems": [...],
    "integrity_check", "members_checked", ...}``. It never raises for a bad archive (damaged, foreign,
    crafted): every such fault is a problem in the result. Sizes are checked before anything is
    unpacked, and no member is unpacked beyond the size its manifest states. Raises
    :class:`NotEnoughSpace` when the scratch side has no room (a full disk says nothing about the
    archive). With ``keep_into`` the unpacked tree is left in that (new) folder for a restore;
    otherwise the scratch folder inside ``scratch_parent`` is removed.
    """
    started = time.monotonic()
    problems: list[str] = []
    manifest: dict[str, Any] = {}
    integrity = None
    checked = 0
    scratch = keep_into or (scratch_parent / _scratch_name("verify"))
    try:
        try:
            scratch.mkdir(parents=True, exist_ok=keep_into is not None)
        except OSError as exc:
            if disk_full(exc):
                raise NotEnoughSpace(f"not enough disk space for a scratch folder: {exc.strerror}") from None
            raise
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            problems.append(f"not a readable zip archive: {exc}")
            return _result(problems, manifest, integrity, checked, started)
        with zf:
            manifest = _read_manifest(zf, problems)
            if manifest:
                checked = _check_members(zf, manifest, scratch, problems)
                if not problems:
                    integrity = _check_database(scratch / DB_MEMBER, manifest, problems)
    except NotEnoughSpace:
        raise
    except Exception as exc:  # a crafted archive is refused, never a crash of the caller
        log.exception("verification of %s stopped", archive)
        problems.append(f"the archive cannot be checked: {type(exc).__name__}: {exc}")
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


def _read_small(zf: zipfile.ZipFile, name: str, limit: int) -> bytes | None:
    """The member ``name`` when it unpacks to at most ``limit`` bytes, else ``None`` (read no further)."""
    if zf.getinfo(name).file_size > limit:
        return None
    with zf.open(name) as fh:
        data = fh.read(limit + 1)
    return data if len(data) <= limit else None


def _read_manifest(zf: zipfile.ZipFile, problems: list[str]) -> dict[str, Any]:
    names = zf.namelist()
    unsafe = [n for n in names if not _safe_member(n)]
    if unsafe:
        problems.append(f"unsafe member name(s) in the archive: {', '.join(repr(n) for n in unsafe[:3])}")
        return {}
    if len(set(names)) != len(names) or len({n.lower() for n in names}) != len(names):
        problems.append("the archive holds two members with the same name (or names that differ only in case)")
        return {}
    if MANIFEST not in names:
        problems.append("manifest.json is missing: this is not an Office Appliance backup")
        return {}
    try:
        raw = _read_small(zf, MANIFEST, MAX_MANIFEST_BYTES)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
        problems.append(f"manifest.json is corrupt: {exc}")
        return {}
    if raw is None:
        problems.append(f"manifest.json is larger than {MAX_MANIFEST_BYTES} bytes: not an Office Appliance manifest")
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
    found = manifest_problems(manifest)
    if found:
        problems.extend(found)
        return {}
    return manifest


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def manifest_problems(manifest: Any) -> list[str]:
    """What is wrong with the shape of a parsed manifest (empty when nothing): the required keys and
    their types, and every member ``name -> {"sha256": 64 hex digits, "size": whole number}`` with a
    safe name under ``files/`` (or the database), no name both a file and a folder."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return ["manifest.json is not an Office Appliance manifest"]
    problems = []
    required: dict[str, tuple[type, str]] = {
        "format_version": (int, "a whole number"),
        "app_version": (str, "a text"),
        "schema_version": (int, "a whole number"),
        "migrations": (list, "a list"),
        "created_at": (str, "a timestamp"),
        "kind": (str, "a text"),
        "members": (dict, "an object"),
        "row_counts": (dict, "an object"),
    }
    for key, (kind, what) in required.items():
        value = manifest.get(key)
        if key not in manifest:
            problems.append(f"manifest.json lacks {key!r}")
        elif not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            problems.append(f"manifest.json: {key!r} must be {what}")
    if problems:
        return problems
    if manifest["format_version"] > FORMAT_VERSION:
        problems.append(
            f"manifest.json has format version {manifest['format_version']}; this version reads up to {FORMAT_VERSION}"
        )
    try:
        _parse_iso(manifest["created_at"])
    except ValueError:
        problems.append("manifest.json: 'created_at' must be a timestamp")
    if not all(isinstance(m, str) for m in manifest["migrations"]):
        problems.append("manifest.json: 'migrations' must be a list of names")
    if not all(isinstance(k, str) and _whole(v) for k, v in manifest["row_counts"].items()):
        problems.append("manifest.json: 'row_counts' must map table names to whole numbers")
    missing = manifest.get("missing_files", [])
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        problems.append("manifest.json: 'missing_files' must be a list of names")
    members = manifest["members"]
    if DB_MEMBER not in members:
        problems.append("the manifest lists no database")
    for name, entry in members.items():
        if not _safe_member(name) or not (name == DB_MEMBER or name.startswith(FILES_PREFIX)):
            problems.append(f"the manifest lists an unsafe or foreign member name: {name[:120]!r}")
        elif not isinstance(entry, dict):
            problems.append(f"manifest.json: the entry of {name} must be an object with sha256 and size")
        elif not (isinstance(entry.get("sha256"), str) and _HEX64.match(entry["sha256"])):
            problems.append(f"manifest.json: the sha256 of {name} must be 64 hexadecimal digits")
        elif not _whole(entry.get("size")):
            problems.append(f"manifest.json: the size of {name} must be a whole number of bytes")
        if len(problems) >= 5:
            return problems
    folders = {str(parent) for name in members for parent in PurePosixPath(name).parents}
    clashes = sorted(name for name in members if name in folders)
    if clashes:
        problems.append(f"member name(s) used both as a file and as a folder: {', '.join(clashes[:3])}")
    return problems


def _check_members(zf: zipfile.ZipFile, manifest: dict[str, Any], scratch: Path, problems: list[str]) -> int:
    """Unpack and check every member; returns how many were checked. Refuses before unpacking
    anything when members are missing, unlisted, or of another size than the manifest says; raises
    :class:`NotEnoughSpace` when the declared total does not fit or a write finds the disk full."""
    listed = manifest["members"]
    infos = {info.filename: info for info in zf.infolist()}
    present = set(infos) - {MANIFEST}
    for name in sorted(set(listed) - present):
        problems.append(f"member missing from the archive: {name}")
    for name in sorted(present - set(listed)):
        problems.append(f"member not listed in the manifest: {name}")
    names = sorted(set(listed) & present)
    for name in names:
        if infos[name].file_size != listed[name]["size"]:
            problems.append(
                f"member {name} unpacks to {infos[name].file_size} bytes but the manifest says {listed[name]['size']}"
            )
    if problems:
        return 0
    declared = sum(listed[name]["size"] for name in names)
    free = shutil.disk_usage(scratch).free
    if declared > free:
        raise NotEnoughSpace(
            f"not enough disk space to unpack the archive: it holds {declared} bytes and {free} are free"
        )
    checked = 0
    for name in names:
        expected = listed[name]
        target = scratch / name
        digest = hashlib.sha256()
        size = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(infos[name]) as src, open(target, "xb") as out:
                while chunk := src.read(_CHUNK):
                    size += len(chunk)
                    if size > expected["size"]:
                        break  # never unpack beyond what the manifest states
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            if disk_full(exc):
                raise NotEnoughSpace(f"not enough disk space to unpack the archive: {exc.strerror}") from None
            problems.append(f"member {name} cannot be unpacked: {exc}")
            continue
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
            problems.append(f"member {name} cannot be read: {exc}")
            continue
        checked += 1
        if size > expected["size"]:
            problems.append(f"member {name} is larger than the manifest says ({expected['size']} bytes)")
        elif size != expected["size"] or digest.hexdigest() != expected["sha256"]:
            problems.append(f"member {name} does not match its checksum in the manifest")
    return checked


def _check_database(db_path: Path, manifest: dict[str, Any], problems: list[str]) -> str | None:
    if not db_path.is_file():
        # Unpacked a moment ago: gone means something removed the scratch folder under us.
        problems.append("the unpacked database disappeared before it could be checked; verify again")
        return None
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
            raw = _read_small(zf, MANIFEST, MAX_MANIFEST_BYTES)
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
    offsite copies), and the failed ones it would not keep either: of those kept aside in
    ``backups/failed``, the newest of each of the ``keep_daily`` days and ``keep_weekly`` weeks stay,
    and always the newest one. Unverified archives (not yet checked) are left for the admin.
    Returns ``{"kept": [...], "deleted": [...]}``; raises :class:`Busy` during another backup or restore.
    """
    with exclusive_operation(paths, "prune"):
        items = list_backups(paths)
        failed = [item for item in items if item["status"] == "failed"]
        verified = [item for item in items if item["verified"]]
        kept = select_kept(verified, keep_daily, keep_weekly)
        kept_failed = select_kept([item | {"verified": True} for item in failed], keep_daily, keep_weekly)
        deleted = []
        for item in verified + failed:
            if item["name"] in kept or item["name"] in kept_failed:
                continue
            archive = paths.backups_dir / item["name"]
            if item["status"] == "failed" and not archive.is_file():
                archive = paths.backups_dir / FAILED_DIR / item["name"]
            targets = [archive, archive.with_name(archive.name + VERIFY_SUFFIX)]
            targets.append(archive.with_name(archive.name + DRILL_SUFFIX))
            if offsite_dir and item["verified"]:
                targets.append(Path(offsite_dir) / item["name"])
            for target in targets:
                with contextlib.suppress(FileNotFoundError, OSError):
                    target.unlink()
            deleted.append(item["name"])
        return {"kept": sorted(kept | kept_failed), "deleted": sorted(deleted)}


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
        _create_private(partial)
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
