"""The built-in jobs: backup, prune_backups, db_maintenance, cleanup and restore_drill.

Each job body calls the services of the area it serves (backups, accounts,
audit, the blob store) and returns a one-line summary or raises
:class:`JobFailed`. They are registered when :mod:`appliance.jobs` is
imported. :func:`take_backup` and :func:`drill_backup` are also what the API,
the pages, the console and the command line call: they raise the alerts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

from appliance.accounts.sessions import delete_expired_sessions
from appliance.accounts.throttle import ThrottleRules, prune_throttle
from appliance.accounts.token_expiry import expiry_alert, tokens_expiring_soon
from appliance.accounts.tokens import prune_tokens
from appliance.actors import ActorLike
from appliance.audit import delete_events, events_before, record_event
from appliance.backups.archive import create_backup
from appliance.backups.drill import run_restore_drill
from appliance.backups.retention import RetentionRules, prune_backups
from appliance.clock import as_stored, iso, parse_iso
from appliance.config.home import Instance, Paths
from appliance.durable import private_dir, write_private_file
from appliance.errors import BackupFailed, NotFound
from appliance.jobs.alerts import raise_alert
from appliance.jobs.definitions import JobContext, JobFailed, current_settings, register_job
from appliance.records.csv.cells import guard_formula
from appliance.storage.blobs import remove_orphan_blobs
from appliance.storage.db import database, is_sqlite
from appliance.storage.models import SetupLink

# --- backups ---------------------------------------------------------------------------------


def take_backup(
    instance: Instance,
    *,
    kind: str = "manual",
    now: dt.datetime | None = None,
    actor: ActorLike | str | None = None,
) -> dict[str, Any]:
    """Write and verify a backup now (with its offsite copy when set); returns the listing item.

    Records a ``backup.created`` audit event by ``actor`` (default: the kind, e.g. ``"scheduled"``).

    A failed verification and an unreachable offsite folder raise alerts; the
    item tells which (``verified`` false, ``verification.offsite.ok`` false).
    Raises :class:`Busy` during another backup or restore.
    """
    settings = current_settings(instance)
    if settings.database_url:
        raise BackupFailed(
            "this instance uses PostgreSQL (database_url); back it up with pg_dump: "
            "the appliance's archives hold the embedded SQLite database"
        )
    result = create_backup(instance.paths, now=now, kind=kind, offsite_dir=settings.backup_offsite_dir)
    name = result.item["name"]
    with database.atomic():
        record_event(
            "backup.created",
            actor=actor if actor is not None else kind,
            target=name,
            details={"kind": kind, "verified": result.verified, "size": result.item["size"]},
            now=now,
        )
    if not result.verified:
        raise_alert(
            settings,
            "backup_failed",
            f"Backup {name} failed verification",
            f"The backup {name} failed verification and was kept aside in {instance.paths.backups_dir / 'failed'}. "
            "Problems: " + "; ".join(result.verification["problems"]),
            job="backup",
            key=f"backup-failed:{name}",
            now=now,
        )
    offsite = result.verification.get("offsite")
    if offsite and not offsite["ok"]:
        raise_alert(
            settings,
            "offsite_failed",
            f"Offsite copy of {name} failed",
            f"The backup is safe locally, but could not be copied to {settings.backup_offsite_dir}: {offsite.get('error')}",
            job="backup",
            key=f"offsite-failed:{name}",
            now=now,
        )
    return result.item


def drill_backup(instance: Instance, archive: Path | None = None, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Run a restore drill of ``archive`` (default: the newest verified backup) and raise a
    ``restore_drill_failed`` alert, mailed to the admins, when it fails. Returns the drill result
    (see :func:`appliance.backups.drill.run_restore_drill`); needs the instance's database open (for the alert).

    Raises :class:`Busy` during a backup or restore, :class:`NotFound` when there is no verified backup.
    """
    result = run_restore_drill(instance.paths, archive, now=now)
    if result["outcome"] != "ok":
        raise_alert(
            current_settings(instance),
            "restore_drill_failed",
            f"Restore drill of {result['backup']} failed",
            f"The backup {result['backup']} could not be restored in the drill of {result['at']}. "
            "Problems: " + "; ".join(result["problems"][:5]),
            job="restore_drill",
            key=f"drill-failed:{result['backup']}:{result['at']}",
            now=now,
        )
    return result


def _backup_job(ctx: JobContext) -> str:
    item = take_backup(ctx.instance, kind="scheduled", now=ctx.now())
    if not item["verified"]:
        raise JobFailed(
            f"{item['name']} failed verification: " + "; ".join(item["verification"]["problems"][:3]), alerted=True
        )
    message = f"{item['name']} written ({item['size']} bytes) and verified"
    offsite = item["verification"].get("offsite")
    if offsite:
        message += "; offsite copy " + ("checked" if offsite["ok"] else f"FAILED: {offsite.get('error')}")
    return message


def _prune_job(ctx: JobContext) -> str:
    rules = RetentionRules.from_settings(ctx.settings)
    outcome = prune_backups(
        ctx.instance.paths,
        rules.keep_daily,
        rules.keep_weekly,
        keep_manual_days=rules.keep_manual_days,
        keep_min=rules.keep_min,
        offsite_dir=ctx.settings.backup_offsite_dir,
        now=ctx.now(),
    )
    with database.atomic():
        record_event(
            "backups.pruned",
            actor="prune_backups",
            target=f"{len(outcome['deleted'])} deleted",
            details={"kept": outcome["kept"], "deleted": outcome["deleted"]},
            now=ctx.now(),
        )
    return str(outcome["message"])


def _restore_drill_job(ctx: JobContext) -> str:
    try:
        result = drill_backup(ctx.instance, now=ctx.now())
    except NotFound as exc:
        return f"nothing to drill: {exc.message}"
    if result["outcome"] != "ok":
        raise JobFailed(result["message"], alerted=True)
    return str(result["message"])


# --- the database --------------------------------------------------------------------------


INTEGRITY_EVERY = dt.timedelta(days=7)


def _maintenance_job(ctx: JobContext) -> str:
    if not is_sqlite():
        database.execute_sql("ANALYZE")
        return "analyzed (PostgreSQL)"
    busy, wal_pages, moved = database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    database.execute_sql("PRAGMA optimize")
    parts = [
        f"checkpoint moved {moved} of {wal_pages} WAL page(s)" + (" (readers kept part)" if busy else ""),
        "optimized",
    ]
    last = ctx.options.get("last_integrity_check")
    now = ctx.now()
    if last is None or now - parse_iso(last) >= INTEGRITY_EVERY:
        rows = [row[0] for row in database.execute_sql("PRAGMA integrity_check").fetchall()]
        ctx.options["last_integrity_check"] = iso(now)
        if rows != ["ok"]:
            raise JobFailed("integrity_check found problems: " + "; ".join(rows[:5]))
        parts.append("integrity_check ok")
    return "; ".join(parts)


# --- clean-up ------------------------------------------------------------------------------


def _csv_text(value: Any) -> str:
    """A text cell of the audit archive, guarded as the CSV export guards its cells: one a spreadsheet
    would run as a formula gets a leading ``'``."""
    return guard_formula("" if value is None else str(value))


def archive_audit_events(paths: Paths, retention_days: int, now: dt.datetime) -> tuple[int, Path | None]:
    """Move audit events older than ``retention_days`` into a CSV file under ``backups/audit-archive``,
    then delete them. Returns ``(count, file)``.

    The file is written and flushed to disk before anything is deleted, and only the events it holds
    are deleted; a crash in between archives them again next time (in a second file), never loses one.
    """
    if retention_days <= 0:
        return 0, None
    cutoff = as_stored(now) - dt.timedelta(days=retention_days)
    events = events_before(cutoff)
    if not events:
        return 0, None
    private_dir(paths.backups_dir)
    folder = private_dir(paths.backups_dir / "audit-archive")
    stem = f"audit-until-{cutoff:%Y%m%dT%H%M%SZ}"
    target = folder / f"{stem}.csv"
    counter = 2
    while target.exists():
        target = folder / f"{stem}-{counter}.csv"
        counter += 1
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["id", "at", "actor_id", "actor", "action", "target", "address", "details"])
    for e in events:
        writer.writerow(
            [e.id, iso(e.at), e.actor_id]
            + [_csv_text(v) for v in (e.actor, e.action, e.target, e.address or "", e.details)]
        )
    write_private_file(target, text.getvalue())
    delete_events([e.id for e in events])
    return len(events), target


def _cleanup_job(ctx: JobContext) -> str:
    now = ctx.now()
    with database.atomic():
        tokens = prune_tokens(now)
        sessions = delete_expired_sessions(now)
        throttle = prune_throttle(ThrottleRules.from_settings(ctx.settings), now)
        links = (
            SetupLink.delete()
            .where((SetupLink.expires_at <= as_stored(now)) | SetupLink.used_at.is_null(False))
            .execute()
        )
    archived, target = archive_audit_events(ctx.instance.paths, ctx.settings.audit_retention_days, now)
    orphans = remove_orphan_blobs(ctx.instance.paths.files_dir)
    message = (
        f"removed {tokens} expired token(s), {sessions} expired session(s), {throttle} old sign-in record(s), "
        f"{links} used or expired set-up link(s), {orphans} stored file(s) no record refers to"
    )
    if archived and target is not None:
        message += f"; archived {archived} audit event(s) to {target.name}"
    # One alert for the tokens about to expire; its key keeps the same list from being mailed every day.
    alert = expiry_alert(tokens_expiring_soon(now))
    if alert is not None:
        key, subject, text = alert
        sent = raise_alert(ctx.settings, "tokens_expiring", subject, text, job="cleanup", key=key, now=now)
        message += f"; {subject}" + ("" if getattr(sent, "is_new", True) else " (already reported)")
    return message


# --- registration --------------------------------------------------------------------------


register_job(
    "backup",
    _backup_job,
    lambda settings: settings.backup_schedule,
    "Makes a backup of all records, users, settings and files, and checks that it can be read back.",
)
register_job(
    "prune_backups",
    _prune_job,
    "30 3 * * *",
    "Deletes old backups: keeps as many daily and weekly scheduled ones as the backup settings say, manual and "
    "safety ones and the one last restored from for the days set, and never fewer than the minimum.",
)
register_job(
    "db_maintenance",
    _maintenance_job,
    "0 4 * * *",
    "Tidies up the database so it stays fast; once a week it also checks it for damage.",
)
register_job(
    "cleanup",
    _cleanup_job,
    "15 4 * * *",
    "Removes expired API tokens, old sign-in records, used set-up links and files no record uses; "
    "moves old audit log entries to a CSV file.",
)
# Sundays after the night's backup (02:00), prune (03:30, which also takes the backup lock) and maintenance.
RESTORE_DRILL_SCHEDULE = "45 4 * * 0"
register_job(
    "restore_drill",
    _restore_drill_job,
    RESTORE_DRILL_SCHEDULE,
    "Practises a restore: restores the newest good backup into a scratch folder and checks that nothing is missing.",
)
