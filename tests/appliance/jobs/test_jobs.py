"""The built-in jobs (cleanup with its audit archive, database maintenance) and ``appliance jobs``."""

from __future__ import annotations

import csv
import datetime as dt
import json

from appliance.audit import record_event
from appliance.config.settings import write_settings
from appliance.jobs.runner import job_lock, run_job
from appliance.storage.db import database
from appliance.storage.models import AuditEvent, JobRun
from tests.conftest import run_cli
from tests.fakes import FakeClock


def test_cleanup_archives_old_audit_events_to_csv_before_deleting_them(instance):
    clock = FakeClock(dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC))
    write_settings(instance.home / "appliance.toml", {"audit_retention_days": 30})
    with database.connection_context():
        with database.atomic():
            record_event(
                "user.created", actor="test", target="old@example.com", now=clock.now() - dt.timedelta(days=40)
            )
            record_event(
                "user.created", actor="test", target="older@example.com", now=clock.now() - dt.timedelta(days=90)
            )
            record_event("user.created", actor="test", target="new@example.com", now=clock.now() - dt.timedelta(days=2))
        run = run_job(instance, "cleanup", now=clock.now)
        assert run.outcome == "ok", run.message
        assert "archived 2 audit event(s)" in run.message
        left = [e.target for e in AuditEvent.select()]
    assert left == ["new@example.com"]
    [archive] = (instance.home / "backups" / "audit-archive").glob("*.csv")
    with archive.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["target"] for r in rows) == ["old@example.com", "older@example.com"]
    assert rows[0]["action"] == "user.created" and rows[0]["at"].endswith("Z")


def test_cleanup_keeps_every_audit_event_when_retention_is_zero(instance):
    write_settings(instance.home / "appliance.toml", {"audit_retention_days": 0})
    with database.connection_context():
        with database.atomic():
            record_event("user.created", actor="test", target="x", now=dt.datetime(2000, 1, 1))
        assert run_job(instance, "cleanup").outcome == "ok"
        assert AuditEvent.select().count() == 1


def test_db_maintenance_checks_integrity_once_a_week(instance):
    clock = FakeClock()
    with database.connection_context():
        first = run_job(instance, "db_maintenance", now=clock.now)
        clock.advance(days=3)
        second = run_job(instance, "db_maintenance", now=clock.now)
        clock.advance(days=5)
        third = run_job(instance, "db_maintenance", now=clock.now)
    assert "integrity_check ok" in first.message
    assert "integrity_check" not in second.message
    assert "integrity_check ok" in third.message
    assert all(run.outcome == "ok" for run in (first, second, third))


def test_jobs_list_and_run_from_the_command_line(home):
    listed = run_cli("jobs", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert [i["name"] for i in items] == ["backup", "cleanup", "db_maintenance", "prune_backups", "restore_drill"]
    ran = run_cli("jobs", "run", "backup", "--json", home=home)
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)
    assert run["outcome"] == "ok" and run["trigger"] == "cli" and "verified" in run["message"]
    assert len(list((home / "backups").glob("backup-*.zip"))) == 1


def test_jobs_run_is_refused_while_the_same_job_runs_elsewhere(instance):
    with job_lock(instance.paths, "cleanup"):
        answer = run_cli("jobs", "run", "cleanup", home=instance.home)
    assert answer.returncode == 1
    assert answer.stderr.strip() == "error: busy: the job 'cleanup' is already running"
    with database.connection_context():
        assert JobRun.select().count() == 0


def test_jobs_run_of_an_unknown_job_names_the_known_ones(home):
    answer = run_cli("jobs", "run", "defrag", home=home)
    assert answer.returncode == 1
    assert "no job named 'defrag'" in answer.stderr and "backup" in answer.stderr


def test_cleanup_removes_used_and_expired_set_up_links(instance):
    from appliance.storage.models import SetupLink

    now = dt.datetime(2026, 6, 1, 4, 0)
    with database.connection_context():
        SetupLink.create(digest="a" * 64, created_at=now, expires_at=now - dt.timedelta(hours=1))
        SetupLink.create(digest="b" * 64, created_at=now, expires_at=now + dt.timedelta(hours=1), used_at=now)
        SetupLink.create(digest="c" * 64, created_at=now, expires_at=now + dt.timedelta(hours=1))
        run = run_job(instance, "cleanup", now=lambda: now.replace(tzinfo=dt.UTC))
        assert "2 used or expired set-up link(s)" in run.message
        assert [link.digest[0] for link in SetupLink.select()] == ["c"]


def test_cleanup_removes_stored_files_no_record_refers_to_once_they_are_an_hour_old(instance):
    import hashlib
    import os
    import time

    def stored(content: bytes, age_seconds: float, referenced: bool) -> object:
        digest = hashlib.sha256(content).hexdigest()
        path = instance.home / "files" / digest[:2] / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (time.time() - age_seconds, time.time() - age_seconds))
        if referenced:
            database.execute_sql(
                "INSERT INTO file_ref (sha256, collection, record_id, field) VALUES (?, 'notes', 1, ?)",
                (digest, digest[:8]),
            )
        return path

    with database.connection_context():
        kept = stored(b"a file a record refers to", 7200, referenced=True)
        orphan = stored(b"left behind while a backup ran", 7200, referenced=False)
        fresh = stored(b"an upload whose record is being written", 5, referenced=False)
        run = run_job(instance, "cleanup")
    assert run.outcome == "ok", run.message
    assert "1 stored file(s) no record refers to" in run.message
    assert kept.exists() and fresh.exists() and not orphan.exists()


def test_the_audit_archive_guards_cells_a_spreadsheet_would_run_as_formulas(instance):
    clock = FakeClock(dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC))
    write_settings(instance.home / "appliance.toml", {"audit_retention_days": 30})
    with database.connection_context():
        with database.atomic():
            record_event(
                "user.created",
                actor="test",
                target='=HYPERLINK("http://evil")',
                now=clock.now() - dt.timedelta(days=40),
            )
        assert run_job(instance, "cleanup", now=clock.now).outcome == "ok"
    [archive] = (instance.home / "backups" / "audit-archive").glob("*.csv")
    with archive.open(encoding="utf-8", newline="") as fh:
        [row] = list(csv.DictReader(fh))
    assert row["target"] == '\'=HYPERLINK("http://evil")'
    assert archive.stat().st_mode & 0o777 == 0o600
    assert archive.parent.stat().st_mode & 0o777 == 0o700
