"""Keeping backups: retention (which archives stay, the rest are deleted) and the offsite copy.

Retention knows each archive's kind (:data:`KINDS`, from its manifest):

- ``scheduled`` archives are thinned: the newest verified one of each of the
  last ``keep_daily`` days and ``keep_weekly`` ISO weeks (UTC) stays;
- ``manual``, ``safety`` (before a restore) and ``pre-update`` archives stay
  for ``keep_manual_days`` after they were made, and the archive last
  restored from stays for ``keep_manual_days`` after that restore;
- an archive whose manifest names no known kind (one written by an older
  version, or an unreadable manifest) is treated as manual while it is young
  (a ``safety-`` name as a safety copy), then joins the scheduled ones'
  daily/weekly selection: deleting is the irreversible direction;
- at least ``keep_min`` verified archives (the newest) always stay, and
  always the newest one.

Failed archives kept aside go by the daily/weekly rule among themselves.
Unverified archives are left for the admin. The result of the last prune is
kept beside the archives (``last-prune.json``) for the status and dashboard.
The offsite copy of a verified archive goes to a folder (a mounted share, a
USB disk) and is checked there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.backups.catalogue import exclusive_operation, last_restore, list_backups
from appliance.backups.format import DRILL_SUFFIX, FAILED_DIR, VERIFY_SUFFIX, sha256_file
from appliance.clock import iso, parse_iso
from appliance.config.home import Paths
from appliance.durable import create_private_file, private_dir, write_private_file

KINDS = ("scheduled", "manual", "safety", "pre-update")
LAST_PRUNE = "last-prune.json"


def archive_kind(item: dict[str, Any]) -> str:
    """The kind of a listing item: its manifest's when known, else ``safety`` for a ``safety-`` name, else
    ``unknown``."""
    kind = item.get("kind")
    if kind in KINDS:
        return str(kind)
    return "safety" if str(item.get("name", "")).startswith("safety-") else "unknown"


@dataclass(frozen=True)
class RetentionRules:
    """How many scheduled archives stay (days and weeks), how long others stay, and the floor."""

    keep_daily: int
    keep_weekly: int
    keep_manual_days: int = 0
    keep_min: int = 0

    @classmethod
    def from_settings(cls, settings: Any) -> RetentionRules:
        return cls(
            settings.backup_keep_daily,
            settings.backup_keep_weekly,
            settings.backup_keep_manual_days,
            settings.backup_keep_min,
        )


def _newest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: (i["created_at"], i["name"]), reverse=True)


def _daily_weekly(items: list[dict[str, Any]], keep_daily: int, keep_weekly: int) -> set[str]:
    kept: set[str] = set()
    days: list[dt.date] = []
    weeks: list[tuple[int, int]] = []
    for item in _newest_first(items):
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
    return kept


def select_kept(
    items: list[dict[str, Any]],
    keep_daily: int,
    keep_weekly: int,
    *,
    keep_manual_days: int = 0,
    keep_min: int = 0,
    now: dt.datetime | None = None,
    restored: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The verified archives retention keeps, each with why: ``{name: reason}``.

    ``restored`` is the last restore (``{"archive", "at"}``, see
    :func:`appliance.backups.catalogue.last_restore`); ``now`` the time of the
    prune (default: the real clock).
    """
    moment = now or dt.datetime.now(dt.UTC)
    window = dt.timedelta(days=keep_manual_days)
    verified = _newest_first([item for item in items if item["verified"]])
    reasons: dict[str, str] = {}
    pool = []
    for item in verified:
        kind = archive_kind(item)
        young = moment - parse_iso(item["created_at"]) < window
        if kind == "scheduled":
            pool.append(item)
        elif young:
            reasons[item["name"]] = f"{kind}, kept {keep_manual_days} days"
        elif kind == "unknown":
            pool.append(item)
    for name in _daily_weekly(pool, keep_daily, keep_weekly):
        reasons.setdefault(name, "daily/weekly")
    if restored and isinstance(restored.get("archive"), str) and isinstance(restored.get("at"), str):
        with contextlib.suppress(ValueError):
            recent = moment - parse_iso(restored["at"]) < window
            if recent and any(item["name"] == restored["archive"] for item in verified):
                reasons[restored["archive"]] = "last restored from"
    for item in verified:
        if len(reasons) >= keep_min:
            break
        reasons.setdefault(item["name"], f"one of the newest {keep_min}")
    if verified:
        reasons.setdefault(verified[0]["name"], "the newest")
    return reasons


def prune_backups(
    paths: Paths,
    keep_daily: int,
    keep_weekly: int,
    *,
    keep_manual_days: int = 0,
    keep_min: int = 0,
    offsite_dir: str = "",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Delete the verified archives that retention does not keep (see :func:`select_kept`; with their
    verification files and offsite copies), and the failed ones it would not keep either: of those kept
    aside in ``backups/failed``, the newest of each of the ``keep_daily`` days and ``keep_weekly`` weeks
    stay, and always the newest one. Unverified archives (not yet checked) are left for the admin.

    Returns ``{"kept": [...], "deleted": [...], "reasons": {name: why}, "at", "message"}`` and stores it
    as the last prune (:func:`last_prune`); raises :class:`Busy` during another backup or restore.
    """
    moment = now or dt.datetime.now(dt.UTC)
    with exclusive_operation(paths, "prune"):
        items = list_backups(paths)
        failed = [item for item in items if item["status"] == "failed"]
        verified = [item for item in items if item["verified"]]
        reasons = select_kept(
            verified,
            keep_daily,
            keep_weekly,
            keep_manual_days=keep_manual_days,
            keep_min=keep_min,
            now=moment,
            restored=last_restore(paths),
        )
        failed_pool = [item | {"verified": True} for item in failed]
        kept_failed = _daily_weekly(failed_pool, keep_daily, keep_weekly)
        if failed_pool:
            kept_failed.add(_newest_first(failed_pool)[0]["name"])
        deleted = []
        for item in verified + failed:
            if item["name"] in reasons or item["name"] in kept_failed:
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
        kept = sorted(set(reasons) | kept_failed)
        outcome: dict[str, Any] = {
            "at": iso(moment),
            "kept": kept,
            "deleted": sorted(deleted),
            "reasons": dict(sorted(reasons.items())),
        }
        outcome["message"] = prune_message(outcome)
        write_private_file(
            private_dir(paths.backups_dir) / LAST_PRUNE, json.dumps(outcome, indent=2, sort_keys=True), durable=False
        )
        return outcome


def prune_message(outcome: dict[str, Any]) -> str:
    """``"kept 7, deleted 2: name, name"`` for a prune's outcome."""
    deleted = outcome.get("deleted") or []
    text = f"kept {len(outcome.get('kept') or [])}, deleted {len(deleted)}"
    return text + (": " + ", ".join(deleted) if deleted else "")


def last_prune(paths: Paths) -> dict[str, Any] | None:
    """The last prune's outcome (``{"at", "kept", "deleted", "reasons", "message"}``), or ``None``."""
    try:
        data = json.loads((paths.backups_dir / LAST_PRUNE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("at"), str):
        return None
    return {key: data.get(key) for key in ("at", "kept", "deleted", "reasons", "message")}


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
