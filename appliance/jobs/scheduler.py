"""The job scheduler: APScheduler 3 in the server's parent process, and only there.

The server runner starts it after the workers (see :func:`server_services`)
and stops it before them; the home lock guarantees one server, hence one
scheduler, per home. Job definitions live in the database (:mod:`appliance.jobs.definitions`).

How changes reach it without a restart: every ``scheduler_sync_seconds`` the
scheduler re-reads the ``job`` table (:meth:`JobScheduler.poll_once`) and
reschedules each job whose ``version`` changed since it last looked (the API,
the admin page and the console bump it), and starts any run-now request. The
same step watches for runs that did not happen (the planned time passed with
no run) and runs that are stuck, and raises an alert once for each.

At start, a job whose stored next run lies in the past (the server was off
then) raises a "missed" alert and runs once, however many times it was missed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

from appliance.clock import as_stored, aware, iso
from appliance.config.home import Instance
from appliance.config.schedules import parse_schedule
from appliance.errors import Busy
from appliance.jobs.alerts import raise_alert
from appliance.jobs.definitions import current_settings, ensure_jobs, job_specs, record_run
from appliance.jobs.rules_service import RuleRunner
from appliance.jobs.runner import mark_interrupted_runs, run_job
from appliance.jobs.webhook_service import webhook_dispatcher
from appliance.storage.db import database
from appliance.storage.models import Job, JobRun
from appliance.webhooks.dispatcher import WebhookDispatcher

log = logging.getLogger("appliance.scheduler")

SYNC_JOB_ID = "__sync__"
# A planned run this late with no run recorded counts as one that did not happen.
OVERDUE_AFTER = dt.timedelta(minutes=2)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobScheduler:
    """Schedules the jobs of one instance; ``start()``/``stop()`` for the server runner,
    ``poll_once()`` as the testable step of its sync loop."""

    def __init__(
        self,
        instance: Instance,
        *,
        now: Callable[[], dt.datetime] = _utcnow,
        timezone: Any = None,
        sync_seconds: float | None = None,
    ):
        self.instance = instance
        self.now = now
        self.timezone = timezone
        self.sync_seconds = sync_seconds or instance.settings.scheduler_sync_seconds
        self._versions: dict[str, int] = {}
        self._aps: Any = None

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start APScheduler's thread, schedule every enabled job, catch up missed runs, then sync
        every few seconds. A failure here is logged and leaves the server serving."""
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        options: dict[str, Any] = {
            "executors": {"default": ThreadPoolExecutor(4)},
            "job_defaults": {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        }
        if self.timezone is not None:
            options["timezone"] = self.timezone
        # APScheduler logs every run at INFO, the sync step included (every few seconds): keep its warnings only;
        # our own runs are logged and recorded by appliance.jobs.runner.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        logging.getLogger("apscheduler.scheduler").setLevel(logging.WARNING)
        self._aps = BackgroundScheduler(**options)
        self._aps.add_listener(self._on_not_run, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self._aps.start()
        try:
            with database.connection_context():
                events = self.startup()
            for event in events:
                log.info(event)
        except Exception:
            log.exception("the scheduler could not load the jobs; it retries at every sync")
        self._aps.add_job(
            self._poll_safely, "interval", seconds=self.sync_seconds, id=SYNC_JOB_ID, max_instances=1, coalesce=True
        )
        log.info("scheduler started", extra={"jobs": sorted(self._versions)})

    def stop(self) -> None:
        """Stop scheduling; waits for runs in progress to finish (each job is a bounded step)."""
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=True)
            log.info("scheduler stopped")

    def startup(self) -> list[str]:
        """Create missing job rows, close runs a dead process left ``running``, schedule everything,
        and run once each job whose planned run passed while the server was off."""
        settings = current_settings(self.instance)
        ensure_jobs(settings, self.now())
        events = []
        interrupted = mark_interrupted_runs(self.instance.paths, self.now())
        if interrupted:
            events.append(f"{interrupted} run(s) left running by a stopped process marked interrupted")
        events += self.poll_once(startup=True)
        return events

    # --- the sync step ----------------------------------------------------------------

    def _poll_safely(self) -> None:
        try:
            with database.connection_context():
                for event in self.poll_once():
                    log.info(event)
        except Exception:
            log.exception("scheduler sync failed; retrying at the next one")

    def poll_once(self, *, startup: bool = False) -> list[str]:
        """Apply changed job definitions, start run-now requests, and watch for missed and stuck runs.
        Returns what happened, for the log and tests."""
        events: list[str] = []
        now = self.now()
        specs = job_specs()
        # Read the rows first: a cursor left open across the writes below pins a read snapshot, and a write on
        # that connection after another connection's commit is refused with "database is locked".
        for job in list(Job.select().where(Job.name.in_(list(specs)))):
            if self._versions.get(job.name) != job.version:
                events.append(self._apply_safely(job, now, startup=startup))
            if job.run_requested_at is not None:
                cleared = (
                    Job.update(run_requested_at=None)
                    .where((Job.name == job.name) & (Job.run_requested_at == job.run_requested_at))
                    .execute()
                )
                if cleared:
                    self._submit(job.name, "manual")
                    events.append(f"{job.name}: run requested, starting")
        events += self._watch(now)
        return events

    def _apply_safely(self, job: Job, now: dt.datetime, *, startup: bool) -> str:
        """:meth:`_apply`, with any failure kept to this one job: it is logged, alerted once per
        definition (version) and left unscheduled until its definition changes; the others go on."""
        try:
            return self._apply(job, now, startup=startup)
        except Exception as exc:
            log.exception("job %s could not be scheduled", job.name)
            self._versions[job.name] = job.version
            with contextlib.suppress(Exception):
                if self._aps.get_job(job.name) is not None:
                    self._aps.remove_job(job.name)
            with contextlib.suppress(Exception):
                Job.update(next_run_at=None).where(Job.name == job.name).execute()
            reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
            try:
                raise_alert(
                    current_settings(self.instance),
                    "job_unscheduled",
                    f"Job {job.name} cannot be scheduled",
                    f"The job {job.name!r} with the schedule {job.schedule!r} cannot be scheduled ({reason}); "
                    "it does not run until its schedule is changed.",
                    job=job.name,
                    key=f"unscheduled:{job.name}:{job.version}",
                    now=now,
                )
            except Exception:
                log.exception("could not raise the alert for job %s", job.name)
            return f"{job.name}: not scheduled ({reason})"

    def _apply(self, job: Job, now: dt.datetime, *, startup: bool) -> str:
        """(Re)schedule one job from its definition; at start, catch up a run missed while off.
        Raises when the definition cannot be scheduled (see :meth:`_apply_safely`)."""
        if self._aps.get_job(job.name) is not None:
            self._aps.remove_job(job.name)
        next_run = None
        event = f"{job.name}: disabled"
        if job.enabled:
            # An interval counts from when the schedule was set, so that restarts do not push it back.
            trigger = parse_schedule(job.schedule).trigger(self._aps.timezone, start=aware(job.updated_at))
            aps_job = self._aps.add_job(
                self._run_scheduled, trigger, args=[job.name], id=job.name, name=job.name, replace_existing=True
            )
            next_run = aps_job.next_run_time
            event = (
                f"{job.name}: scheduled '{job.schedule}', next run {iso(as_stored(next_run)) if next_run else 'never'}"
            )
            planned = aware(job.next_run_at)
            if startup and planned is not None and planned < now - dt.timedelta(seconds=5):
                self._missed(job.name, planned, "the server was not running then", now)
                self._submit(job.name, "catch-up", scheduled_for=planned)
                event += f"; missed its run of {iso(as_stored(planned))}, running it once now"
        Job.update(next_run_at=as_stored(next_run) if next_run else None).where(Job.name == job.name).execute()
        self._versions[job.name] = job.version
        return event

    def _missed(self, name: str, planned: dt.datetime, why: str, now: dt.datetime) -> None:
        key = f"missed:{name}:{iso(as_stored(planned))}"
        alert = raise_alert(
            current_settings(self.instance),
            "job_missed",
            f"Job {name} did not run at {iso(as_stored(planned))}",
            f"The job {name!r} was planned for {iso(as_stored(planned))} and did not run: {why}.",
            job=name,
            key=key,
            now=now,
        )
        if alert.is_new:
            record_run(name, "schedule", "missed", f"planned for {iso(as_stored(planned))}; {why}", now=now)

    def _watch(self, now: dt.datetime) -> list[str]:
        events = []
        settings = current_settings(self.instance)
        stuck_before = as_stored(now) - dt.timedelta(minutes=settings.job_stuck_minutes)
        for run in list(JobRun.select().where((JobRun.outcome == "running") & (JobRun.started_at < stuck_before))):
            alert = raise_alert(
                settings,
                "job_stuck",
                f"Job {run.job} is stuck",
                f"The job {run.job!r} has been running since {iso(run.started_at)} "
                f"(more than {settings.job_stuck_minutes} minutes); its next runs are skipped until it ends.",
                job=run.job,
                key=f"stuck:{run.id}",
                now=now,
            )
            if alert.is_new:
                events.append(f"{run.job}: stuck since {iso(run.started_at)}")
        for job in list(Job.select().where(Job.enabled & Job.next_run_at.is_null(False))):
            planned = aware(job.next_run_at)
            if planned is not None and planned < now - OVERDUE_AFTER and self._aps.get_job(job.name) is not None:
                self._missed(job.name, planned, "the scheduler could not start it in time", now)
                self._refresh_next_run(job.name)
                events.append(f"{job.name}: run of {iso(as_stored(planned))} did not happen")
        return events

    # --- running ------------------------------------------------------------------------

    def _refresh_next_run(self, name: str) -> None:
        aps_job = self._aps.get_job(name) if self._aps is not None else None
        next_run = aps_job.next_run_time if aps_job is not None else None
        Job.update(next_run_at=as_stored(next_run) if next_run else None).where(Job.name == name).execute()

    def _submit(self, name: str, trigger: str, scheduled_for: dt.datetime | None = None) -> None:
        self._aps.add_job(
            self._run, "date", args=[name, trigger, scheduled_for], id=f"{name}@{trigger}@{uuid.uuid4().hex[:8]}"
        )

    def _run_scheduled(self, name: str) -> None:
        self._run(name, "schedule")

    def _run(self, name: str, trigger: str, scheduled_for: dt.datetime | None = None) -> None:
        """One run, in a scheduler thread; never raises (a failing job must not stall the scheduler)."""
        try:
            with database.connection_context():
                if trigger == "schedule":
                    self._refresh_next_run(name)
                try:
                    run_job(self.instance, name, trigger=trigger, now=self.now, scheduled_for=scheduled_for)
                except Busy:
                    now = self.now()
                    record_run(name, trigger, "skipped", "an earlier run of this job is still going", now=now)
                    if trigger != "manual":
                        raise_alert(
                            current_settings(self.instance),
                            "job_missed",
                            f"Job {name} did not run at {iso(as_stored(now))}",
                            f"The planned run of {name!r} did not happen: an earlier run is still going.",
                            job=name,
                            key=f"skipped:{name}:{iso(as_stored(now))}",
                            now=now,
                        )
        except Exception:
            log.exception("job %s could not be run", name)

    def _on_not_run(self, event: Any) -> None:
        """APScheduler skipped a planned run (too late, or the previous run still going)."""
        if event.job_id == SYNC_JOB_ID or event.job_id not in job_specs():
            return
        planned = event.scheduled_run_time
        from apscheduler.events import EVENT_JOB_MISSED

        why = "the scheduler was too late" if event.code == EVENT_JOB_MISSED else "the previous run was still going"
        try:
            with database.connection_context():
                self._missed(event.job_id, planned, why, self.now())
                self._refresh_next_run(event.job_id)
        except Exception:
            log.exception("could not record the missed run of %s", event.job_id)


def server_services(instance: Instance) -> list[JobScheduler | WebhookDispatcher | RuleRunner]:
    """The services the server's parent process runs beside its workers: the job scheduler, the
    webhook dispatcher and the automation rules."""
    return [JobScheduler(instance), webhook_dispatcher(instance), RuleRunner(instance)]
