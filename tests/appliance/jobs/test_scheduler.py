"""The scheduler: persisted definitions, changes without restart, catch-up, no overlap, failures, alerts."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator

import pytest

from appliance.config.settings import write_settings
from appliance.errors import Busy
from appliance.jobs import definitions as jobs
from appliance.jobs.definitions import ensure_jobs, register_job, request_run, unregister_job, update_job
from appliance.jobs.runner import job_lock, mark_interrupted_runs, run_job
from appliance.jobs.scheduler import SYNC_JOB_ID, JobScheduler
from appliance.storage.db import database
from appliance.storage.models import Alert, Job, JobRun
from tests.conftest import start_server
from tests.fakes import FakeClock
from tests.mailbox import mailbox  # noqa: F401 - the fixture
from tests.waiting import eventually


def wait_until(predicate, timeout: float = 15.0):
    """:func:`eventually` ``predicate``, each look inside a database connection."""

    def look():
        with database.connection_context():
            return predicate()

    return eventually(look, timeout=timeout)


def sync_steps(sched: JobScheduler) -> list[object]:
    """A list that grows by one each time the scheduler's sync step ends from now on: the sign that it
    has looked at the jobs again (and would have acted on them by then)."""
    from apscheduler.events import EVENT_JOB_EXECUTED

    ended: list[object] = []
    sched._aps.add_listener(lambda event: event.job_id == SYNC_JOB_ID and ended.append(event), EVENT_JOB_EXECUTED)
    return ended


@pytest.fixture
def test_jobs() -> Iterator[dict]:
    """Two extra jobs for the tests: ``counter`` (counts its runs) and ``explode`` (always fails)."""
    calls = {"counter": 0, "explode": 0}

    def counter(ctx):
        calls["counter"] += 1
        return f"counted {calls['counter']}"

    def explode(ctx):
        calls["explode"] += 1
        raise RuntimeError("the disk is on fire")

    register_job("counter", counter, "0 3 1 1 *", "counts")
    register_job("explode", explode, "0 3 1 1 *", "fails")
    yield calls
    unregister_job("counter")
    unregister_job("explode")


@pytest.fixture
def scheduler(instance, test_jobs) -> Iterator[JobScheduler]:
    sched = JobScheduler(instance, sync_seconds=0.2)
    yield sched
    sched.stop()


def runs(name: str, **where) -> list[JobRun]:
    query = JobRun.select().where(JobRun.job == name).order_by(JobRun.id)
    for key, value in where.items():
        query = query.where(getattr(JobRun, key) == value)
    return list(query)


def test_job_definitions_persist_with_their_defaults(instance):
    with database.connection_context():
        ensure_jobs(instance.settings)
        names = {job.name: job for job in Job.select()}
    assert {"backup", "prune_backups", "db_maintenance", "cleanup"} <= set(names)
    assert names["backup"].schedule == "0 2 * * *"
    assert names["backup"].enabled


def test_a_run_missed_while_the_server_was_off_runs_once_at_start_and_alerts(instance, scheduler, test_jobs):
    with database.connection_context():
        ensure_jobs(instance.settings)
        # Planned three days ago: three runs were missed, one catch-up run is due.
        Job.update(next_run_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=3)).where(
            Job.name == "counter"
        ).execute()
    scheduler.start()
    assert wait_until(lambda: len(runs("counter", outcome="ok")) == 1)
    # A wrong second catch-up would have started by the second sync step after the first one ran, and
    # the stop waits for the runs in progress.
    steps = sync_steps(scheduler)
    eventually(lambda: len(steps) >= 2, message="the scheduler did not sync twice")
    scheduler.stop()
    with database.connection_context():
        assert [r.trigger for r in runs("counter") if r.outcome == "ok"] == ["catch-up"]
        assert Alert.select().where((Alert.kind == "job_missed") & (Alert.job == "counter")).count() == 1
    # The next planned run is written just after the catch-up run is recorded.
    assert wait_until(lambda: Job.get_by_id("counter").next_run_at > dt.datetime.now(dt.UTC).replace(tzinfo=None))
    again = JobScheduler(instance, sync_seconds=0.2)
    again.start()
    try:
        # A wrong catch-up is submitted by the start; two sync steps later it has started.
        steps = sync_steps(again)
        eventually(lambda: len(steps) >= 2, message="the restarted scheduler did not sync twice")
    finally:
        again.stop()
    with database.connection_context():
        assert len(runs("counter", outcome="ok")) == 1, "a restart does not run it again"
    assert test_jobs["counter"] == 1


def test_changing_a_schedule_takes_effect_without_a_restart(instance, scheduler):
    scheduler.start()
    with database.connection_context():
        update_job("counter", {"schedule": "every 45m"})
    assert wait_until(
        lambda: getattr(scheduler._aps.get_job("counter").trigger, "interval", None) == dt.timedelta(minutes=45)
    )
    with database.connection_context():
        next_run = Job.get_by_id("counter").next_run_at
    assert (
        dt.timedelta(minutes=44) < next_run - dt.datetime.now(dt.UTC).replace(tzinfo=None) <= dt.timedelta(minutes=45)
    )
    with database.connection_context():
        update_job("counter", {"enabled": False})
    assert wait_until(lambda: scheduler._aps.get_job("counter") is None)
    with database.connection_context():
        assert Job.get_by_id("counter").next_run_at is None


def test_a_bad_cron_expression_is_refused_with_the_reason_and_changes_nothing(instance):
    from appliance.errors import ValidationFailed

    with database.connection_context():
        ensure_jobs(instance.settings)
        with pytest.raises(ValidationFailed) as caught:
            update_job("backup", {"schedule": "0 25 * * *"})
        assert "25" in caught.value.fields["schedule"]
        assert Job.get_by_id("backup").schedule == "0 2 * * *"
        assert Job.get_by_id("backup").version == 1


def test_run_now_requests_are_picked_up_by_the_scheduler(instance, scheduler, test_jobs):
    scheduler.start()
    with database.connection_context():
        request_run("counter")
    assert wait_until(lambda: len(runs("counter", outcome="ok")) == 1)
    with database.connection_context():
        assert runs("counter")[0].trigger == "manual"
        assert Job.get_by_id("counter").run_requested_at is None


def test_a_failing_job_is_recorded_alerts_the_admins_by_mail_and_does_not_stall_the_scheduler(
    instance,
    personas,
    scheduler,
    test_jobs,
    mailbox,  # noqa: F811
):
    write_settings(instance.home / "appliance.toml", mailbox.settings())
    scheduler.start()
    with database.connection_context():
        request_run("explode")
    assert wait_until(lambda: len(runs("explode", outcome="failed")) == 1)
    with database.connection_context():
        request_run("counter")
    assert wait_until(lambda: len(runs("counter", outcome="ok")) == 1), "the scheduler goes on after a failure"
    with database.connection_context():
        failed = runs("explode")[0]
        assert "the disk is on fire" in failed.message
        assert failed.finished_at is not None and failed.duration_seconds is not None
    [message] = mailbox.wait_for(1)
    assert message["Subject"] == "[Office Appliance] Job explode failed"
    assert message["To"] == "alice@example.com"
    assert "the disk is on fire" in message.get_payload()


def test_a_job_never_overlaps_itself(instance, test_jobs):
    started = threading.Event()
    release = threading.Event()

    def slow(ctx):
        started.set()
        release.wait(10)
        return "slow done"

    register_job("slow", slow, "0 3 1 1 *", "slow")
    try:
        with database.connection_context():
            ensure_jobs(instance.settings)
        first: list = []

        def run_first():
            with database.connection_context():
                first.append(run_job(instance, "slow"))

        thread = threading.Thread(target=run_first)
        thread.start()
        assert started.wait(10)
        with database.connection_context(), pytest.raises(Busy, match="already running"):
            run_job(instance, "slow")
        release.set()
        thread.join(10)
        assert first[0].outcome == "ok"
        with database.connection_context():
            assert len(runs("slow")) == 1
    finally:
        release.set()
        unregister_job("slow")


def test_a_scheduled_run_while_another_process_runs_the_job_is_skipped_and_recorded(instance, scheduler):
    with job_lock(instance.paths, "counter"):
        scheduler.start()
        with database.connection_context():
            request_run("counter")
        assert wait_until(lambda: len(runs("counter", outcome="skipped")) == 1)
    with database.connection_context():
        assert runs("counter", outcome="ok") == []


def test_a_planned_run_that_did_not_happen_alerts_once(instance, test_jobs):
    clock = FakeClock(dt.datetime.now(dt.UTC))
    sched = JobScheduler(instance, now=clock.now, sync_seconds=0.2)
    sched.start()
    try:
        with database.connection_context():
            planned = Job.get_by_id("counter").next_run_at
            # Time jumps past the planned run without the run happening (the process was frozen).
            clock.current = planned.replace(tzinfo=dt.UTC) + dt.timedelta(minutes=10)
            Job.update(next_run_at=planned).where(Job.name == "counter").execute()
            sched.poll_once()
            sched.poll_once()
            alerts = list(Alert.select().where((Alert.kind == "job_missed") & (Alert.job == "counter")))
        assert len(alerts) == 1
    finally:
        sched.stop()


def test_a_stuck_run_alerts_once(instance, test_jobs):
    clock = FakeClock(dt.datetime.now(dt.UTC))
    sched = JobScheduler(instance, now=clock.now, sync_seconds=60)
    sched.start()
    try:
        with job_lock(instance.paths, "counter"), database.connection_context():
            JobRun.create(
                job="counter", trigger="schedule", started_at=clock.now().replace(tzinfo=None), outcome="running"
            )
            clock.advance(hours=3)
            sched.poll_once()
            sched.poll_once()
            assert Alert.select().where(Alert.kind == "job_stuck").count() == 1
    finally:
        sched.stop()


def test_the_server_runs_the_scheduler_in_its_parent_process(home, test_jobs):
    server = start_server(home, workers=1)
    try:
        from appliance.config.home import open_instance
        from appliance.storage.db import open_database

        open_database(open_instance(home))
        with database.connection_context():
            request_run("cleanup")
        assert wait_until(lambda: len(runs("cleanup", outcome="ok")) == 1)
        with database.connection_context():
            assert runs("cleanup")[0].pid == server.process.pid
            assert Job.get_by_id("backup").next_run_at is not None
    finally:
        server.stop()
        database.initialize(None)


def test_runs_left_running_by_a_dead_process_are_marked_interrupted(instance):
    with database.connection_context():
        ensure_jobs(instance.settings)
        JobRun.create(job="backup", trigger="schedule", started_at=dt.datetime(2026, 1, 1), outcome="running")
        assert mark_interrupted_runs(instance.paths) == 1
        assert runs("backup")[0].outcome == "interrupted"


@pytest.mark.parametrize(
    ("schedule", "weekday", "hour"),
    [("0 3 * * 0", "Sun", 3), ("0 3 * * 7", "Sun", 3), ("0 3 * * 1-5", "Tue", 3), ("30 1 * * sat", "Sat", 1)],
)
def test_cron_weekdays_mean_what_they_mean_in_cron_with_sunday_as_0(schedule, weekday, hour):
    from appliance.config.schedules import parse_schedule

    monday_noon = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
    planned = parse_schedule(schedule).next_after(monday_noon, dt.UTC)
    assert (planned.strftime("%a"), planned.hour) == (weekday, hour)


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("0 2 * *", "has 4 field(s)"),
        ("61 2 * * *", "higher than the maximum"),
        ("0 3 * * 8", "is not a weekday"),
        ("every 5s", "at least 10 seconds"),
        ("every day", "is not an interval"),
        ("", "a schedule is required"),
        ("every 99999999999999d", "at most 366 days"),
        ("every 367d", "at most 366 days"),
        ("0 2 30 2 *", "never fires"),
        ("0 0 31 4 *", "never fires"),
    ],
)
def test_a_bad_schedule_is_refused_with_its_reason(schedule, reason):
    from appliance.config.schedules import parse_schedule

    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_schedule(schedule)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("daily 02:00", "0 2 * * *"),
        ("Daily 7:05", "5 7 * * *"),
        ("weekdays 07:30", "30 7 * * 1-5"),
        ("weekly sunday 04:45", "45 4 * * 0"),
        ("weekly Sat 23:59", "59 23 * * 6"),
        ("weekly mon 00:00", "0 0 * * 1"),
        ("every 6 hours", "every 6h"),
        ("every 30 minutes", "every 30m"),
        ("every 1 day", "every 1d"),
        ("every 2 days", "every 2d"),
        ("every 6h", "every 6h"),
        ("0 2 * * *", "0 2 * * *"),
    ],
)
def test_plain_schedules_are_accepted_and_stored_normalised(typed, stored):
    from appliance.config.schedules import parse_schedule

    assert parse_schedule(typed).text == stored


def test_a_plain_weekly_schedule_runs_on_its_day():
    from appliance.config.schedules import parse_schedule

    monday_noon = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
    planned = parse_schedule("weekly sunday 04:45").next_after(monday_noon, dt.UTC)
    assert (planned.strftime("%a"), planned.hour, planned.minute) == ("Sun", 4, 45)
    planned = parse_schedule("weekdays 07:30").next_after(dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC), dt.UTC)
    assert planned.strftime("%a %H:%M") == "Mon 07:30"  # Saturday noon: the next weekday is Monday


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("daily 25:00", "'25:00' is not a time of day; write it as HH:MM"),
        ("daily 12:60", "is not a time of day"),
        ("daily", "the time of day is missing"),
        ("weekdays 7", "'7' is not a time of day"),
        ("weekly funday 10:00", "'funday' is not a day of the week; write mon … sun or monday … sunday"),
        ("weekly", "name the day and the time"),
        ("daily 02:00 03:00", "write one time of day"),
        ("every 5 weeks", "a number and minutes, hours or days"),
    ],
)
def test_a_bad_plain_schedule_is_refused_with_its_reason(schedule, reason):
    from appliance.config.schedules import parse_schedule

    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_schedule(schedule)


def test_an_interval_schedule_keeps_its_rhythm_across_restarts(instance, scheduler):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    set_at = now - dt.timedelta(hours=10, minutes=20)
    with database.connection_context():
        ensure_jobs(instance.settings)
        Job.update(schedule="every 1h", updated_at=set_at, next_run_at=None).where(Job.name == "counter").execute()
    scheduler.start()
    with database.connection_context():
        planned = Job.get_by_id("counter").next_run_at
    assert (planned - set_at) % dt.timedelta(hours=1) == dt.timedelta(0)
    assert dt.timedelta(0) < planned - now <= dt.timedelta(hours=1)


def test_one_job_that_cannot_be_scheduled_alerts_once_and_every_other_job_is_still_scheduled(instance, test_jobs):
    with database.connection_context():
        ensure_jobs(instance.settings)
        # Stored before schedules were checked this strictly (or written by hand): its next run is past year 9999.
        Job.update(schedule="every 99999999999999d", version=Job.version + 1).where(Job.name == "explode").execute()
    sched = JobScheduler(instance, sync_seconds=60)
    sched.start()
    try:
        assert sched._aps.get_job("counter") is not None
        assert sched._aps.get_job("backup") is not None
        assert sched._aps.get_job("explode") is None
        with database.connection_context():
            sched.poll_once()
            [alert] = Alert.select().where(Alert.kind == "job_unscheduled")
            assert alert.job == "explode" and "at most 366 days" in alert.message
            assert Job.get_by_id("explode").next_run_at is None
            update_job("explode", {"schedule": "0 3 * * *"})
            sched.poll_once()
        assert sched._aps.get_job("explode") is not None, "a corrected schedule is picked up"
    finally:
        sched.stop()


def test_a_planned_run_that_did_not_happen_is_mailed_to_the_admins(
    instance,
    personas,
    test_jobs,
    mailbox,  # noqa: F811
):
    write_settings(instance.home / "appliance.toml", mailbox.settings())
    clock = FakeClock(dt.datetime.now(dt.UTC))
    sched = JobScheduler(instance, now=clock.now, sync_seconds=60)
    sched.start()
    try:
        with database.connection_context():
            planned = Job.get_by_id("counter").next_run_at
            clock.current = planned.replace(tzinfo=dt.UTC) + dt.timedelta(minutes=10)
            sched.poll_once()
    finally:
        sched.stop()
    # Every job's plan was overtaken by the jump in time; each is mailed once. Counter's:
    subjects = {" ".join(str(m["Subject"]).split()): m for m in mailbox.wait_for(len(jobs.job_specs()))}
    expected = f"[Office Appliance] Job counter did not run at {planned.isoformat(timespec='seconds')}Z"
    assert expected in subjects, sorted(subjects)
    message = subjects[expected]
    assert message["To"] == "alice@example.com"
    assert "did not run" in message.get_payload(decode=True).decode()
