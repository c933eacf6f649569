"""Running one job: its OS lock, so that a job never overlaps itself, and its run record.

:func:`run_job` runs a job in the calling process and records the run; a
per-job OS lock in ``<home>/run`` makes a job never overlap itself, whether
the scheduler or ``appliance jobs run`` started it. A failing run raises an
alert (mailed to the admins).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import time
from collections.abc import Callable, Iterator

from appliance.clock import as_stored
from appliance.config.home import Instance, Paths
from appliance.errors import ApplianceError, Busy
from appliance.jobs.alerts import raise_alert
from appliance.jobs.definitions import JobContext, JobFailed, current_settings, ensure_jobs, get_job, job_specs
from appliance.storage.db import database
from appliance.storage.locks import FileLock
from appliance.storage.models import Job, JobRun

log = logging.getLogger("appliance.jobs")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
    specs = job_specs()
    if name in specs and not Job.select().where(Job.name == name).exists():
        ensure_jobs(current_settings(instance))
    job = get_job(name)
    spec = specs[name]
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
    for run in list(JobRun.select().where(JobRun.outcome == "running")):
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
