"""Scheduled jobs: the registry of jobs, and their definitions and runs in the database.

A job definition (``job`` table) holds the name, the schedule (a cron
expression or ``every <n><s|m|h|d>``, see :mod:`appliance.config.schedules`),
whether it is enabled, its options, a ``version`` bumped at every change
(the scheduler in the server's parent process compares it to reschedule
without a restart), the next planned run and a pending run-now request.
Each run is a row of ``job_run``.

A job is a function registered with :func:`register_job`; the built-in ones
(:mod:`appliance.jobs.builtin`) are registered when :mod:`appliance.jobs` is
imported. :mod:`appliance.jobs.runner` runs one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peewee

from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import as_stored, iso
from appliance.config.home import Instance
from appliance.config.schedules import parse_schedule
from appliance.config.settings import Settings, load_settings
from appliance.errors import NotFound, SettingsError, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import Job, JobRun

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


# --- definitions ------------------------------------------------------------------------


def ensure_jobs(settings: Settings, now: dt.datetime | None = None) -> list[str]:
    """Create the row of every registered job that has none yet; returns the names created."""
    created = []
    existing = {job.name for job in Job.select(Job.name)}
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
    actor: ActorLike | None = None,
    address: str | None = None,
    now: dt.datetime | None = None,
) -> Job:
    """Change a job's ``schedule``, ``enabled`` or ``options``; the scheduler applies it within
    seconds, no restart needed. Raises :class:`NotFound`, or :class:`ValidationFailed` naming each
    bad field (a bad cron expression says why); then nothing changes."""
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
    planned = schedule.next_after(moment.replace(tzinfo=dt.UTC)) if enabled else None
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


def request_run(
    name: str, *, actor: ActorLike | None = None, address: str | None = None, now: dt.datetime | None = None
) -> Job:
    """Ask the server's scheduler to run job ``name`` now (it picks the request up within seconds).
    Raises :class:`NotFound`."""
    get_job(name)
    moment = as_stored(now)
    with database.atomic():
        Job.update(run_requested_at=moment).where(Job.name == name).execute()
        record_event("job.run_requested", actor=actor, target=f"job:{name}", address=address, now=moment)
    return get_job(name)


# --- runs --------------------------------------------------------------------------------


def list_runs(name: str) -> peewee.ModelSelect[JobRun]:
    """Runs of job ``name``, newest first (for :func:`appliance.storage.pagination.paginate`). Raises :class:`NotFound`."""
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
