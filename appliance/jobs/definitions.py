"""Scheduled jobs: their definitions and runs in the database, the built-in jobs, and running one.

A job definition (``job`` table) holds the name, the schedule (a cron
expression or ``every <n><s|m|h|d>``, see :mod:`appliance.schedules`),
whether it is enabled, its options, a ``version`` bumped at every change
(the scheduler in the server's parent process compares it to reschedule
without a restart), the next planned run and a pending run-now request.

:func:`run_job` runs one job in the calling process and records the run; a
per-job OS lock in ``<home>/run`` makes a job never overlap itself, whether
the scheduler or ``appliance jobs run`` started it. Built-in jobs: ``backup``,
``prune_backups``, ``db_maintenance``, ``cleanup`` and ``restore_drill``; other parts add theirs
with :func:`register_job`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee

from appliance.backups.archive import PRIVATE_FILE, create_backup, fsync_dir, private_dir, prune_backups
from appliance.clock import as_stored, aware, iso
from appliance.config.home import Instance, Paths
from appliance.config.schedules import parse_schedule
from appliance.config.settings import Settings, load_settings
from appliance.errors import ApplianceError, BackupFailed, Busy, NotFound, SettingsError, ValidationFailed
from appliance.jobs.alerts import raise_alert
from appliance.storage.db import database, is_sqlite
from appliance.storage.locks import FileLock
from appliance.storage.models import AuditEvent, Job, JobRun, SetupLink

log = logging.getLogger("appliance.jobs")


class JobFailed(Exception):
    """A job's own way to fail with a clear message; ``alerted`` when it already raised its alert."""

    def __init__(self, message: str, *, alerted: bool = False):
        super().__init__(message)
        self.alerted = alerted


@dataclass
class JobContext:
    """What a job function gets: the instance, fresh settings, the clock and the job's options."""

    instance: Instance
    settings: Settings
    now: Callable[[], dt.datetime]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[[JobContext], str]
    default_schedule: Callable[[Settings], str]
    description: str


_REGISTRY: dict[str, JobSpec] = {}


def register_job(
    name: str, func: Callable[[JobContext], str], default_schedule: str | Callable[[Settings], str], description: str
) -> None:
    """Make ``func`` a job; it returns a one-line summary or raises to fail. Its row is created with
    ``default_schedule`` the next time the scheduler starts or the jobs are listed."""
    schedule = default_schedule if callable(default_schedule) else (lambda _s, text=default_schedule: text)
    _REGISTRY[name] = JobSpec(name, func, schedule, description)


def unregister_job(name: str) -> None:
    """Forget a registered job (its row and runs stay in the database, unlisted)."""
    _REGISTRY.pop(name, None)


def job_specs() -> dict[str, JobSpec]:
    return dict(_REGISTRY)


def current_settings(instance: Instance) -> Settings:
    """The settings as the file and environment say now (jobs pick up changes without a restart);
    the instance's own when the file has become unreadable."""
    try:
        return load_settings(instance.paths.settings_file)
    except SettingsError as exc:
        log.warning("settings unreadable, using those read at start: %s", exc.message)
        return instance.settings


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- definitions ------------------------------------------------------------------------


def ensure_jobs(settings: Settings, now: dt.datetime | None = None) -> list[str]:
    """Create the row of every registered job that has none yet; returns the names created."""
    created = []
    existing = {name for (name,) in Job.select(Job.name).tuples()}
    for spec in _REGISTRY.values():
        if spec.name in existing:
            continue
        with database.atomic():
            Job.insert(
                name=spec.name,
                schedule=parse_schedule(spec.default_schedule(settings)).text,
                enabled=True,
                options="{}",
                version=1,
                updated_at=as_stored(now),
                created_at=as_stored(now),
            ).on_conflict_ignore().execute()
        created.append(spec.name)
    return created


_ENSURED: set[str] = set()


def ensure_jobs_once(settings: Settings) -> None:
    """:func:`ensure_jobs` once per process and database (views call it: a request must not write).
    The scheduler and the command line call :func:`ensure_jobs` themselves."""
    key = _database_key()
    if key in _ENSURED:
        return
    ensure_jobs(settings)
    _ENSURED.add(key)


def _database_key() -> str:
    target = getattr(database, "obj", database)
    return f"{type(target).__name__}:{getattr(target, 'database', '')}"


def get_job(name: str) -> Job:
    """The definition of job ``name``; raises :class:`NotFound`."""
    job = Job.get_or_none(Job.name == name) if name in _REGISTRY else None
    if job is None:
        known = ", ".join(sorted(_REGISTRY))
        raise NotFound(f"there is no job named {name!r} (jobs: {known})")
    return job


def list_jobs() -> list[Job]:
    """Every registered job's definition, by name."""
    return list(Job.select().where(Job.name.in_(list(_REGISTRY))).order_by(Job.name))


def last_runs(names: list[str]) -> dict[str, JobRun]:
    """The newest finished-or-running run of each job (one query)."""
    if not names:
        return {}
    newest = (
        JobRun.select(peewee.fn.MAX(JobRun.id))
        .where(JobRun.job.in_(names) & (JobRun.outcome != "missed"))
        .group_by(JobRun.job)
    )
    return {run.job: run for run in JobRun.select().where(JobRun.id.in_(newest))}


def serialize_job(job: Job, last_run: JobRun | None = None) -> dict[str, Any]:
    """The job item of API.md: ``{"name", "schedule", "enabled", "last_run", "next_run", "last_outcome"}``
    (``last_run`` is when the last run started, ISO 8601, or ``None``) plus ``last_message``,
    ``description``, ``options``, ``running`` and ``run_requested``."""
    spec = _REGISTRY.get(job.name)
    return {
        "name": job.name,
        "schedule": job.schedule,
        "enabled": job.enabled,
        "last_run": iso(last_run.started_at) if last_run else None,
        "next_run": iso(job.next_run_at) if job.enabled else None,
        "last_outcome": last_run.outcome if last_run else None,
        "last_message": last_run.message if last_run else None,
        "running": bool(last_run and last_run.outcome == "running"),
        "run_requested": job.run_requested_at is not None,
        "description": spec.description if spec else "",
        "options": json.loads(job.options or "{}"),
    }


def job_items() -> list[dict[str, Any]]:
    """Every job as a listing item, with its last run."""
    jobs = list_jobs()
    runs = last_runs([j.name for j in jobs])
    return [serialize_job(job, runs.get(job.name)) for job in jobs]


def update_job(
    name: str,
    changes: dict[str, Any],
    *,
    actor: Any = None,
    address: str | None = None,
    now: dt.datetime | None = None,
) -> Job:
    """Change a job's ``schedule``, ``enabled`` or ``options``; the scheduler applies it within
    seconds, no restart needed. Raises :class:`NotFound`, or :class:`ValidationFailed` naming each
    bad field (a bad cron expression says why); then nothing changes."""
    from appliance.audit import record_event

    job = get_job(name)
    if not isinstance(changes, dict):
        raise ValidationFailed({"body": "Send an object with schedule, enabled or options."})
    problems: dict[str, str] = {}
    for key in changes:
        if key not in ("schedule", "enabled", "options"):
            problems[key] = "Unknown field; a job has schedule, enabled and options."
    values: dict[str, Any] = {}
    if "schedule" in changes:
        try:
            values["schedule"] = parse_schedule(changes["schedule"]).text
        except ValueError as exc:
            problems["schedule"] = str(exc)
    if "enabled" in changes:
        if isinstance(changes["enabled"], bool):
            values["enabled"] = changes["enabled"]
        else:
            problems["enabled"] = "Must be true or false."
    if "options" in changes:
        if isinstance(changes["options"], dict):
            values["options"] = json.dumps(changes["options"], sort_keys=True)
        else:
            problems["options"] = "Must be an object."
    if problems:
        raise ValidationFailed(problems)
    if not values:
        return job
    moment = as_stored(now)
    enabled = values.get("enabled", job.enabled)
    schedule = parse_schedule(values.get("schedule", job.schedule))
    # The answer shows the next run at once; the scheduler overwrites it with its own plan.
    planned = schedule.next_after(aware(moment)) if enabled else None
    values["next_run_at"] = as_stored(planned) if planned is not None else None
    with database.atomic():
        Job.update(**values, version=Job.version + 1, updated_at=moment).where(Job.name == name).execute()
        record_event(
            "job.updated",
            actor=actor,
            target=f"job:{name}",
            address=address,
            details={k: v for k, v in changes.items() if k in ("schedule", "enabled", "options")},
            now=moment,
        )
    return get_job(name)


def request_run(name: str, *, actor: Any = None, address: str | None = None, now: dt.datetime | None = None) -> Job:
    """Ask the server's scheduler to run job ``name`` now (it picks the request up within seconds).
    Raises :class:`NotFound`."""
    from appliance.audit import record_event

    get_job(name)
    moment = as_stored(now)
    with database.atomic():
        Job.update(run_requested_at=moment).where(Job.name == name).execute()
        record_event("job.run_requested", actor=actor, target=f"job:{name}", address=address, now=moment)
    return get_job(name)


def list_runs(name: str) -> peewee.ModelSelect:
    """Runs of job ``name``, newest first (for :func:`appliance.pagination.paginate`). Raises :class:`NotFound`."""
    get_job(name)
    return JobRun.select().where(JobRun.job == name).order_by(JobRun.started_at.desc(), JobRun.id.desc())


def serialize_run(run: JobRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.job,
        "trigger": run.trigger,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "outcome": run.outcome,
        "message": run.message,
        "duration_seconds": run.duration_seconds,
    }


# --- running ------------------------------------------------------------------------------


@contextlib.contextmanager
def job_lock(paths: Paths, name: str) -> Iterator[None]:
    """Hold job ``name``'s OS lock (``run/job-<name>.lock``); raises :class:`Busy` while a run of it
    goes on anywhere on this home. The OS frees it when the holder dies."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(paths.run_dir / f"job-{name}.lock")
    if not lock.acquire():
        raise Busy(f"busy: the job {name!r} is already running")
    try:
        yield
    finally:
        lock.release()


def job_is_running(paths: Paths, name: str) -> bool:
    try:
        with job_lock(paths, name):
            return False
    except Busy:
        return True


def record_run(name: str, trigger: str, outcome: str, message: str, *, now: dt.datetime | None = None) -> JobRun:
    """Record a run that did not execute (``skipped`` or ``missed``), so the history shows it."""
    moment = as_stored(now)
    with database.atomic():
        return JobRun.create(
            job=name,
            trigger=trigger,
            started_at=moment,
            finished_at=moment,
            outcome=outcome,
            message=message,
            duration_seconds=0.0,
            pid=os.getpid(),
        )


def run_job(
    instance: Instance,
    name: str,
    *,
    trigger: str = "manual",
    now: Callable[[], dt.datetime] = _utcnow,
    scheduled_for: dt.datetime | None = None,
) -> JobRun:
    """Run job ``name`` here and now, record the run, and return it (outcome ``ok``, ``failed`` or
    ``skipped``).

    A failing job never raises: the run is recorded as failed and an alert is
    raised (mailed to the admins). A job that finds its work busy (a manual
    backup or a restore holds the backup lock) is recorded as ``skipped``, with
    no alert. Raises :class:`NotFound` for an unknown job and :class:`Busy`
    while a run of the same job goes on (nothing is recorded then).
    """
    if name in _REGISTRY and not Job.select().where(Job.name == name).exists():
        ensure_jobs(current_settings(instance))
    job = get_job(name)
    spec = _REGISTRY[name]
    with job_lock(instance.paths, name):
        settings = current_settings(instance)
        with database.atomic():
            run = JobRun.create(
                job=name,
                trigger=trigger,
                started_at=as_stored(now()),
                outcome="running",
                pid=os.getpid(),
                scheduled_for=as_stored(scheduled_for) if scheduled_for else None,
            )
        started = time.monotonic()
        context = JobContext(instance, settings, now, json.loads(job.options or "{}"))
        alerted = False
        try:
            message = spec.func(context) or ""
            outcome = "ok"
        except JobFailed as exc:
            outcome, message, alerted = "failed", str(exc), exc.alerted
        except Busy as exc:
            outcome, message = "skipped", exc.message
        except ApplianceError as exc:
            log.warning("job %s failed: %s", name, exc.message)
            outcome, message = "failed", exc.message
        except Exception as exc:
            log.exception("job %s failed", name)
            outcome, message = "failed", f"{type(exc).__name__}: {exc}"
        run.outcome = outcome
        run.message = message[:4000]
        run.finished_at = as_stored(now())
        run.duration_seconds = round(time.monotonic() - started, 3)
        with database.atomic():
            run.save()
            if context.options != json.loads(job.options or "{}"):
                Job.update(options=json.dumps(context.options, sort_keys=True)).where(Job.name == name).execute()
        log.info("job %s: %s", name, outcome, extra={"job": name, "outcome": outcome})
        if outcome == "failed" and not alerted:
            raise_alert(
                settings,
                "job_failed",
                f"Job {name} failed",
                f"The job {name!r} ({trigger} run) failed: {message}",
                job=name,
                key=f"run-failed:{run.id}",
                now=now(),
            )
        return run


def mark_interrupted_runs(paths: Paths, now: dt.datetime | None = None) -> int:
    """Runs still marked ``running`` whose job nobody runs any more (the process died) become
    ``interrupted``; returns how many."""
    count = 0
    for run in JobRun.select().where(JobRun.outcome == "running"):
        if job_is_running(paths, run.job):
            continue
        with database.atomic():
            count += (
                JobRun.update(
                    outcome="interrupted", finished_at=as_stored(now), message="the process running it stopped"
                )
                .where((JobRun.id == run.id) & (JobRun.outcome == "running"))
                .execute()
            )
    return count


# --- the built-in jobs ---------------------------------------------------------------------


def take_backup(instance: Instance, *, kind: str = "manual", now: dt.datetime | None = None) -> dict[str, Any]:
    """Write and verify a backup now (with its offsite copy when set); returns the listing item.

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
    outcome = prune_backups(
        ctx.instance.paths,
        ctx.settings.backup_keep_daily,
        ctx.settings.backup_keep_weekly,
        offsite_dir=ctx.settings.backup_offsite_dir,
    )
    return f"kept {len(outcome['kept'])} backup(s), deleted {len(outcome['deleted'])}"


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
    if last is None or now - dt.datetime.fromisoformat(last.replace("Z", "+00:00")) >= INTEGRITY_EVERY:
        rows = [row[0] for row in database.execute_sql("PRAGMA integrity_check").fetchall()]
        ctx.options["last_integrity_check"] = iso(now)
        if rows != ["ok"]:
            raise JobFailed("integrity_check found problems: " + "; ".join(rows[:5]))
        parts.append("integrity_check ok")
    return "; ".join(parts)


def _csv_text(value: Any) -> str:
    """A text cell of the audit archive, guarded as the CSV export guards its cells: one a spreadsheet
    would run as a formula gets a leading ``'``."""
    from appliance.records.csv_io import _FORMULA_START

    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def archive_audit_events(paths: Paths, retention_days: int, now: dt.datetime) -> tuple[int, Path | None]:
    """Move audit events older than ``retention_days`` into a CSV file under ``backups/audit-archive``,
    then delete them. Returns ``(count, file)``.

    The file is written and flushed to disk before anything is deleted, and only the events it holds
    are deleted; a crash in between archives them again next time (in a second file), never loses one.
    """
    if retention_days <= 0:
        return 0, None
    cutoff = as_stored(now) - dt.timedelta(days=retention_days)
    events = list(AuditEvent.select().where(AuditEvent.at < cutoff).order_by(AuditEvent.id))
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
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with open(fd, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "at", "actor_id", "actor", "action", "target", "address", "details"])
        for e in events:
            writer.writerow(
                [e.id, iso(e.at), e.actor_id]
                + [_csv_text(v) for v in (e.actor, e.action, e.target, e.address or "", e.details)]
            )
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    fsync_dir(folder)
    ids = [e.id for e in events]
    with database.atomic():
        for start in range(0, len(ids), 500):
            AuditEvent.delete().where(AuditEvent.id.in_(ids[start : start + 500])).execute()
    return len(events), target


# A stored file younger than this may be an upload whose record is still being written: left alone.
ORPHAN_GRACE_SECONDS = 3600
_DIGEST_NAME = re.compile(r"^[0-9a-f]{64}$")


def remove_orphan_files(paths: Paths) -> int:
    """Remove the stored files that no record refers to (left by a removal that a backup was holding
    off, or by a crash) once they are an hour old, and upload leftovers older than a day.
    Returns how many went; removes nothing while a backup copies the files."""
    from appliance.records.files import remove_unreferenced

    files_dir = paths.files_dir
    if not files_dir.is_dir() or not database.table_exists("file_ref"):
        return 0
    referenced = {sha for (sha,) in database.execute_sql("SELECT DISTINCT sha256 FROM file_ref").fetchall()}
    cutoff = time.time() - ORPHAN_GRACE_SECONDS
    orphans = []
    removed = 0
    for entry in files_dir.iterdir():
        if entry.is_file() and entry.name.startswith(".upload-"):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < time.time() - 86400:
                    entry.unlink()
                    removed += 1
            continue
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        for stored in entry.iterdir():
            if not _DIGEST_NAME.match(stored.name) or stored.name[:2] != entry.name or stored.name in referenced:
                continue
            with contextlib.suppress(OSError):
                if stored.stat().st_mtime < cutoff:
                    orphans.append(stored.name)
    return removed + remove_unreferenced(files_dir, orphans)


def _cleanup_job(ctx: JobContext) -> str:
    from appliance.accounts.sessions import delete_expired_sessions
    from appliance.accounts.throttle import ThrottleRules, prune_throttle
    from appliance.accounts.tokens import prune_tokens

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
    orphans = remove_orphan_files(ctx.instance.paths)
    message = (
        f"removed {tokens} expired token(s), {sessions} expired session(s), {throttle} old sign-in record(s), "
        f"{links} used or expired set-up link(s), {orphans} stored file(s) no record refers to"
    )
    if archived:
        message += f"; archived {archived} audit event(s) to {target.name}"
    return message


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
    "Deletes old backups, keeping as many daily and weekly ones as the backup settings say.",
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


def _restore_drill_job(ctx: JobContext) -> str:
    from appliance.backups.drill import drill_backup

    try:
        result = drill_backup(ctx.instance, now=ctx.now())
    except NotFound as exc:
        return f"nothing to drill: {exc.message}"
    if result["outcome"] != "ok":
        raise JobFailed(result["message"], alerted=True)
    return result["message"]


# Sundays after the night's backup (02:00), prune (03:30, which also takes the backup lock) and maintenance.
RESTORE_DRILL_SCHEDULE = "45 4 * * 0"
register_job(
    "restore_drill",
    _restore_drill_job,
    RESTORE_DRILL_SCHEDULE,
    "Practises a restore: restores the newest good backup into a scratch folder and checks that nothing is missing.",
)
