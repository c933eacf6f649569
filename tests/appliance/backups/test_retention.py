"""Retention by kind: scheduled archives are thinned by day and week, manual and safety ones and the archive
last restored from stay for a stated time, never fewer than N stay; every prune, backup and restore is an
audit event and the last prune's result is kept for the status and the jobs page."""

from __future__ import annotations

import datetime as dt
import json

from appliance.backups.archive import create_backup
from appliance.backups.catalogue import list_backups
from appliance.backups.restore import restore_backup
from appliance.backups.retention import archive_kind, last_prune, prune_backups
from appliance.config.home import Paths
from appliance.jobs.builtin import take_backup
from appliance.jobs.runner import run_job
from appliance.storage.db import database
from appliance.storage.models import AuditEvent
from tests.fakes import FakeClock

RULES = {"keep_daily": 1, "keep_weekly": 0, "keep_manual_days": 30, "keep_min": 3}


def names(paths: Paths) -> set[str]:
    return {item["name"] for item in list_backups(paths)}


def night_of_backups(paths: Paths, clock: FakeClock) -> dict[str, str]:
    """The night that broke: a scheduled backup at 02:00, one from the web at 03:29, one from the command
    line, then a restore from the web one (which writes a safety copy of the state rolled back from)."""
    made = {"older_scheduled": create_backup(paths, now=clock.now() - dt.timedelta(days=1), kind="scheduled")}
    made["scheduled"] = create_backup(paths, now=clock.now(), kind="scheduled")
    clock.advance(minutes=89)  # 03:29
    made["web"] = create_backup(paths, now=clock.now(), kind="manual")
    made["cli"] = create_backup(paths, now=clock.now() + dt.timedelta(seconds=20), kind="manual")
    outcome = restore_backup(paths, made["web"].path, now=clock.now() + dt.timedelta(seconds=40))
    out = {key: result.item["name"] for key, result in made.items()}
    out["safety"] = outcome["safety_backup"]
    return out


def test_the_nightly_prune_keeps_the_manual_backups_and_the_one_restored_from(home):
    paths = Paths(home)
    clock = FakeClock(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC))
    made = night_of_backups(paths, clock)
    clock.advance(minutes=1)  # the prune at 03:30
    outcome = prune_backups(paths, **RULES, now=clock.now())
    left = names(paths)
    for key in ("scheduled", "web", "cli", "safety"):
        assert made[key] in left, key
    assert outcome["deleted"] == [made["older_scheduled"]]
    assert outcome["reasons"][made["web"]] == "last restored from"
    assert outcome["reasons"][made["cli"]] == "manual, kept 30 days"
    assert outcome["message"] == f"kept 4, deleted 1: {made['older_scheduled']}"
    assert last_prune(paths)["message"] == outcome["message"]


def test_after_the_stated_time_manual_ones_go_and_scheduled_ones_follow_the_daily_rule(home):
    paths = Paths(home)
    clock = FakeClock(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC))
    made = night_of_backups(paths, clock)
    later = []
    for _day in range(31):
        clock.advance(days=1)
        later.append(create_backup(paths, now=clock.now(), kind="scheduled").item["name"])
    outcome = prune_backups(paths, **RULES, now=clock.now())
    assert names(paths) == set(later[-3:]), "the newest three verified (keep_min) stay, the rest went"
    assert {made["web"], made["cli"], made["safety"]} <= set(outcome["deleted"])


def test_never_fewer_than_the_minimum_of_verified_archives_stay(home):
    paths = Paths(home)
    clock = FakeClock(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC))
    made = [create_backup(paths, now=clock.now() + dt.timedelta(hours=h), kind="scheduled") for h in range(5)]
    outcome = prune_backups(paths, keep_daily=1, keep_weekly=0, keep_min=3, now=clock.now() + dt.timedelta(hours=6))
    assert names(paths) == {r.item["name"] for r in made[-3:]}
    assert len(outcome["deleted"]) == 2


def test_an_archive_without_a_known_kind_is_kept_like_a_manual_one_then_thinned_with_the_scheduled():
    young = {"name": "backup-20260301T020000Z.zip", "kind": None, "verified": True}
    assert archive_kind(young) == "unknown"
    assert archive_kind({"name": "safety-20260301T020000Z.zip", "kind": None}) == "safety"


def test_prune_backup_and_restore_are_audit_events_and_the_prune_run_says_what_went(instance, personas):
    from appliance.config.settings import write_settings

    write_settings(instance.home / "appliance.toml", {"backup_keep_daily": 1, "backup_keep_weekly": 0})
    paths = instance.paths
    clock = FakeClock(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC))
    with database.connection_context():
        old = take_backup(instance, kind="scheduled", now=clock.now() - dt.timedelta(days=2))
        take_backup(instance, kind="scheduled", now=clock.now())
        at = clock.now() + dt.timedelta(minutes=89)
        web = take_backup(instance, kind="manual", now=at, actor=personas.admin.email)
    restore_backup(paths, paths.backups_dir / web["name"], actor="console", now=at)
    clock.advance(minutes=90)
    with database.connection_context():
        run = run_job(instance, "prune_backups", now=clock.now)
        assert run.outcome == "ok"
        assert run.message.startswith("kept ") and run.message.endswith(f"deleted 1: {old['name']}")
        events = {e.action: e for e in AuditEvent.select().order_by(AuditEvent.id)}
        assert events["backup.restored"].target == web["name"] and events["backup.restored"].actor == "console"
        assert json.loads(events["backups.pruned"].details)["deleted"] == [old["name"]]
        assert "backup.created" in events
