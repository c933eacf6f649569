"""Verifying a backup archive: unpack it into a scratch folder and check every byte against its manifest.

A bad archive (damaged, foreign, crafted) is never raised: every fault is a
problem in the verification result. The manifest's own checksum is in the zip
comment, so an edited manifest is caught too; sizes are checked before
anything is unpacked, and no member is unpacked beyond the size its manifest
states.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import shutil
import sqlite3
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, cast

from appliance.backups.catalogue import exclusive_operation, scratch_name, write_verification
from appliance.backups.format import (
    CHUNK,
    COMMENT_PREFIX,
    DB_MEMBER,
    FAILED_DIR,
    FILES_PREFIX,
    FORMAT,
    FORMAT_VERSION,
    HEX64,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    SETTINGS_MEMBER,
    disk_full,
    inspect_database,
    read_member,
)
from appliance.backups.signing import FOREIGN_WARNING, signature_state, signing_key
from appliance.clock import iso, parse_iso
from appliance.config.home import Paths
from appliance.durable import private_dir
from appliance.errors import NotEnoughSpace

log = logging.getLogger("appliance.backups")


def verify_backup(paths: Paths, archive: Path, *, accept_foreign: bool = False) -> dict[str, Any]:
    """Verify ``archive`` again under the home's backup lock (no backup prunes its scratch folder
    meanwhile) and, when it lives in the backups folder, store the result beside it.

    Returns the verification result. Raises :class:`Busy` during a backup or
    restore, :class:`NotEnoughSpace` when the disk has no room to unpack it
    (nothing is stored then: the archive is not at fault).
    """
    with exclusive_operation(paths, "verify"):
        backups_dir = private_dir(paths.backups_dir)
        result = verify_archive(archive, backups_dir, paths=paths, accept_foreign=accept_foreign)
        if archive.parent in (backups_dir, backups_dir / FAILED_DIR):
            write_verification(archive, result)
        return result


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


def verify_archive(
    archive: Path,
    scratch_parent: Path,
    *,
    keep_into: Path | None = None,
    paths: Paths | None = None,
    accept_foreign: bool = False,
) -> dict[str, Any]:
    """Check an archive: unpack it into a scratch folder, compare every checksum and size with the
    manifest (whose own checksum is in the zip comment), run ``integrity_check`` on the database and
    compare its row counts and schema version with the manifest.

    Returns the verification result: ``{"ok", "checked_at", "duration_seconds", "problems": [...],
    "integrity_check", "members_checked", ...}``. It never raises for a bad archive (damaged, foreign,
    crafted): every such fault is a problem in the result. Sizes are checked before anything is
    unpacked, and no member is unpacked beyond the size its manifest states. Raises
    :class:`NotEnoughSpace` when the scratch side has no room (a full disk says nothing about the
    archive). With ``keep_into`` the unpacked tree is left in that (new) folder for a restore;
    otherwise only the database is unpacked (for ``integrity_check``), every other member is streamed
    through its checksum, and the scratch folder inside ``scratch_parent`` is removed.

    With ``paths`` the manifest's signature is checked against that home's key (see
    :mod:`appliance.backups.signing`) before any member is read: an archive signed by another instance,
    edited, or unsigned is refused (``signature`` says which) unless ``accept_foreign``; an unsigned one
    lying in that home's own backups folder (owner-only, so written by this instance before archives
    were signed) is accepted as ``"unsigned (own folder)"``.
    """
    started = time.monotonic()
    problems: list[str] = []
    manifest: dict[str, Any] = {}
    signature = "not checked"
    integrity = None
    checked = 0
    scratch = keep_into or (scratch_parent / scratch_name("verify"))
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
            return (
                _result(problems, manifest, integrity, checked, started)
                | {"signature": signature}
                | {"signature": signature}
            )
        with zf:
            manifest = _read_manifest(zf, problems)
            if manifest and paths is not None:
                signature = _check_signature(zf, archive, paths, accept_foreign, problems)
            if manifest and not problems:
                checked = _check_members(zf, manifest, scratch, problems, unpack_all=keep_into is not None)
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
    return _result(problems, manifest, integrity, checked, started) | {"signature": signature}


def _check_signature(
    zf: zipfile.ZipFile, archive: Path, paths: Paths, accept_foreign: bool, problems: list[str]
) -> str:
    """The signature state of the archive; a problem (nothing is read further) unless it is acceptable."""
    raw = read_member(zf, MANIFEST, MAX_MANIFEST_BYTES) or b""
    state = signature_state(signing_key(paths), raw, zf.comment.decode("utf-8", "replace"))
    if state == "own":
        return state
    own_folder = archive.resolve().parent in (paths.backups_dir.resolve(), (paths.backups_dir / FAILED_DIR).resolve())
    if state == "unsigned" and own_folder:
        return "unsigned (own folder)"
    if accept_foreign:
        return f"{state} (accepted)"
    what = "is signed by another instance (or was changed)" if state == "foreign" else "is not signed"
    problems.append(
        f"the archive {what}: refused; {FOREIGN_WARNING} To go on anyway, verify or restore with --accept-foreign"
    )
    return state


def _result(
    problems: list[str], manifest: dict[str, Any], integrity: str | None, checked: int, started: float
) -> dict[str, Any]:
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
        problems.append(f"unsafe member name(s) in the archive: {', '.join(repr(n) for n in unsafe[:3])}")
        return {}
    if len(set(names)) != len(names) or len({n.lower() for n in names}) != len(names):
        problems.append("the archive holds two members with the same name (or names that differ only in case)")
        return {}
    if MANIFEST not in names:
        problems.append("manifest.json is missing: this is not an Office Appliance backup")
        return {}
    try:
        raw = read_member(zf, MANIFEST, MAX_MANIFEST_BYTES)
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
    if hashlib.sha256(raw).hexdigest() != (comment[len(COMMENT_PREFIX) :].split() or [""])[0]:
        problems.append("manifest.json was changed after the backup was written (its checksum does not match)")
        return {}
    try:
        manifest: Any = json.loads(raw)
    except ValueError as exc:
        problems.append(f"manifest.json is not valid JSON: {exc}")
        return {}
    found = manifest_problems(manifest)
    if found:
        problems.extend(found)
        return {}
    return cast("dict[str, Any]", manifest)  # a dict: manifest_problems found none


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
        elif not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, int) and value < 0):
            problems.append(f"manifest.json: {key!r} must be {what}")
    if problems:
        return problems
    if manifest["format_version"] > FORMAT_VERSION:
        problems.append(
            f"manifest.json has format version {manifest['format_version']}; this version reads up to {FORMAT_VERSION}"
        )
    try:
        parse_iso(manifest["created_at"])
    except ValueError:
        problems.append("manifest.json: 'created_at' must be a timestamp")
    if not all(isinstance(m, str) for m in manifest["migrations"]):
        problems.append("manifest.json: 'migrations' must be a list of names")
    if not all(isinstance(k, str) and _whole(v) for k, v in manifest["row_counts"].items()):
        problems.append("manifest.json: 'row_counts' must map table names to whole numbers")
    missing = manifest.get("missing_files", [])
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        problems.append("manifest.json: 'missing_files' must be a list of names")
    settings = manifest.get("settings", {"member": SETTINGS_MEMBER, "secrets": []})
    if (
        not isinstance(settings, dict)
        or settings.get("member") != SETTINGS_MEMBER
        or not isinstance(settings.get("secrets"), list)
        or not all(isinstance(n, str) for n in settings["secrets"])
    ):
        problems.append(f"manifest.json: 'settings' must name {SETTINGS_MEMBER} and list its secret setting names")
    members = manifest["members"]
    if DB_MEMBER not in members:
        problems.append("the manifest lists no database")
    for name, entry in members.items():
        if not _safe_member(name) or not (name in (DB_MEMBER, SETTINGS_MEMBER) or name.startswith(FILES_PREFIX)):
            problems.append(f"the manifest lists an unsafe or foreign member name: {name[:120]!r}")
        elif not isinstance(entry, dict):
            problems.append(f"manifest.json: the entry of {name} must be an object with sha256 and size")
        elif not (isinstance(entry.get("sha256"), str) and HEX64.match(entry["sha256"])):
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


def _check_members(
    zf: zipfile.ZipFile, manifest: dict[str, Any], scratch: Path, problems: list[str], *, unpack_all: bool = True
) -> int:
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
    declared = sum(listed[name]["size"] for name in names if unpack_all or name == DB_MEMBER)
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
            unpack = unpack_all or name == DB_MEMBER
            with zf.open(infos[name]) as src, open(target, "xb") if unpack else contextlib.nullcontext() as out:
                while chunk := src.read(CHUNK):
                    size += len(chunk)
                    if size > expected["size"]:
                        break  # never read beyond what the manifest states
                    digest.update(chunk)
                    if out is not None:
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
