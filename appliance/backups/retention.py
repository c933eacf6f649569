"""Keeping backups: retention (which archives stay, the rest are deleted) and the offsite copy.

Retention keeps the newest verified archive of each of the last
``keep_daily`` days and ``keep_weekly`` ISO weeks (UTC), and always the newest
one; failed archives kept aside go by the same rule among themselves.
Unverified archives are left for the admin. The offsite copy of a verified
archive goes to a folder (a mounted share, a USB disk) and is checked there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

from appliance.backups.catalogue import exclusive_operation, list_backups
from appliance.backups.format import DRILL_SUFFIX, FAILED_DIR, VERIFY_SUFFIX, sha256_file
from appliance.clock import iso, parse_iso
from appliance.config.home import Paths
from appliance.durable import create_private_file


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
        created = parse_iso(item["created_at"])
        day = created.date()
        iso_year, iso_week, _day = created.isocalendar()
        week = (iso_year, iso_week)
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
        create_private_file(partial)
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
