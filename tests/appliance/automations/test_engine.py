"""Automation rules run from the outbox in the scheduler's process: mail, field changes, the loop guard,
the mail cap, time rules, and a test run that leaves no trace."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.automations.engine import dry_run
from appliance.automations.rules import create_rule, list_runs, serialize_run
from appliance.config.settings import write_settings
from appliance.jobs.rules_service import RuleRunner
from appliance.records.delete import delete_record
from appliance.records.query import list_records
from appliance.records.write import create_record, update_record
from appliance.storage.models import OutboxEvent, RecordVersion, RuleRun
from tests.appliance.data_helpers import make_orders, make_users
from tests.fakes import FakeClock
from tests.mailbox import mailbox  # noqa: F401  (the fixture)


@pytest.fixture
def users(instance):
    people = make_users()
    make_orders(people["admin"])
    return people


@pytest.fixture
def clock():
    return FakeClock(dt.datetime(2026, 1, 5, 12, 0).astimezone())  # noon, local time


@pytest.fixture
def runner(instance, clock):
    return RuleRunner(instance, now=clock.now)


@pytest.fixture
def smtp(home, mailbox):  # noqa: F811
    write_settings(home / "appliance.toml", mailbox.settings())
    return mailbox


def _runs(rule):
    return [serialize_run(r) for r in list_runs(rule)]


def email_rule(admin, **extra):
    data = {
        "name": "Tell the warehouse",
        "collection": "orders",
        "events": ["record.created"],
        "actions": [
            {
                "type": "email",
                "to": ["warehouse@example.com"],
                "subject": "New order {title}",
                "body": "{quantity} x {title} at {unit_price}; total {total}. Braces: {{x}}",
            }
        ],
    }
    data.update(extra)
    return create_rule(data, admin)


def test_a_rule_emails_on_create_with_the_records_fields(users, smtp, runner):
    rule = email_rule(users["admin"], filter={"quantity__gte": "2"})
    create_record("orders", {"title": "Chairs", "quantity": 4, "unit_price": 5}, users["editor"])
    create_record("orders", {"title": "Pens", "quantity": 1, "unit_price": 1}, users["editor"])  # filtered out
    assert any("Tell the warehouse: ok" in line for line in runner.step())
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "New order Chairs" and message["To"] == "warehouse@example.com"
    body = message.get_payload(decode=True).decode()
    assert "4 x Chairs at 5" in body and "total 20" in body and "Braces: {x}" in body
    [run] = _runs(rule)
    assert run["outcome"] == "ok" and run["trigger"] == "record.created" and run["actions"][0]["outcome"] == "done"
    assert runner.step() == []  # the cursor moved on: nothing runs twice
    assert len(smtp.messages) == 1


def test_a_field_setting_rule_writes_through_validation_as_the_rule_in_history(users, runner):
    admin = users["admin"]
    create_rule(
        {
            "name": "settle",
            "collection": "orders",
            "events": ["record.updated"],
            "changed_fields": ["paid"],
            "filter": {"paid": "true"},
            "actions": [{"type": "set_fields", "values": {"status": "paid", "due": "today"}}],
        },
        admin,
    )
    made = create_record("orders", {"title": "Desk", "quantity": 1, "unit_price": 100}, admin)
    update_record("orders", made["id"], {"notes": "no change of paid"}, admin)
    runner.step()
    assert RuleRun.select().count() == 0  # the rule waits for "paid" to change
    update_record("orders", made["id"], {"paid": True}, admin)
    runner.step()
    versions = list(RecordVersion.select().where(RecordVersion.record_id == made["id"]).order_by(RecordVersion.version))
    assert versions[-1].actor == "rule:settle" and versions[-1].actor_id is None
    assert set(__import__("json").loads(versions[-1].changes)) == {"status", "due"}
    stored = list_records("orders", admin, {"id": str(made["id"])})["items"][0]
    assert stored["status"] == "paid" and stored["due"] == dt.date(2026, 1, 5).isoformat()


def test_a_field_setting_rule_with_a_bad_value_fails_in_its_log_and_writes_nothing(users, runner):
    admin = users["admin"]
    rule = create_rule(
        {
            "name": "too many",
            "collection": "orders",
            "events": ["record.created"],
            "actions": [{"type": "set_fields", "formulas": {"quantity": "quantity - 10"}}],
        },
        admin,
    )
    made = create_record("orders", {"title": "Lamp", "quantity": 1}, admin)
    runner.step()
    [run] = _runs(rule)
    assert run["outcome"] == "failed" and "quantity" in run["error"]
    assert list_records("orders", admin, {"id": str(made["id"])})["items"][0]["quantity"] == 1


def test_the_loop_guard_stops_a_rule_that_sets_off_itself_after_three_writes(users, runner):
    admin = users["admin"]
    rule = create_rule(
        {
            "name": "bump",
            "collection": "orders",
            "events": ["record.updated"],
            "actions": [{"type": "set_fields", "formulas": {"quantity": "quantity + 1"}}],
        },
        admin,
    )
    made = create_record("orders", {"title": "Loop", "quantity": 0}, admin)
    update_record("orders", made["id"], {"quantity": 10}, admin)
    for _ in range(6):  # bounded: each step handles the events written by the last
        runner.step()
    assert list_records("orders", admin, {"id": str(made["id"])})["items"][0]["quantity"] == 13
    runs = _runs(rule)
    assert [r["outcome"] for r in reversed(runs)] == ["ok", "ok", "ok", "skipped"]
    assert [r["depth"] for r in reversed(runs)] == [0, 1, 2, 3]
    assert "loop guard" in runs[0]["error"]
    actors = [v.actor for v in RecordVersion.select().where(RecordVersion.record_id == made["id"])]
    assert actors[-1] == "rule:bump > rule:bump > rule:bump"


def test_a_test_run_shows_each_action_and_changes_and_sends_nothing(users, smtp):
    admin = users["admin"]
    rule = create_rule(
        {
            "name": "everything",
            "collection": "orders",
            "events": ["record.created"],
            "filter": {"status": "open"},
            "actions": [
                {
                    "type": "email",
                    "to_field": "contact",
                    "to_role": "viewer",
                    "subject": "Hi {title}",
                    "body": "{notes}",
                },
                {"type": "webhook", "url": "http://127.0.0.1:9/never-called"},
                {"type": "set_fields", "values": {"status": "paid"}, "formulas": {"discount": "0.5"}},
            ],
        },
        admin,
    )
    made = create_record("orders", {"title": "Sofa", "contact": "buyer@example.com", "notes": "n"}, admin)
    counts = (OutboxEvent.select().count(), RecordVersion.select().count(), RuleRun.select().count())
    answer = dry_run(rule.id, made["id"], admin)
    assert answer["matches"] is True
    mail, hook, fields = answer["actions"]
    assert mail["to"] == ["buyer@example.com", "viewer@example.com"] and mail["subject"] == "Hi Sofa"
    assert hook["url"].endswith("/never-called") and hook["headers"]["webhook-signature"].startswith("v1,")
    assert fields["values"] == {"status": "paid", "discount": 0.5} and "error" not in fields
    assert (OutboxEvent.select().count(), RecordVersion.select().count(), RuleRun.select().count()) == counts
    assert list_records("orders", admin, {"id": str(made["id"])})["items"][0]["status"] == "open"
    assert smtp.messages == []


def test_the_filter_means_what_the_listing_means(users, runner):
    admin = users["admin"]
    conditions = {"title__icontains": "CHA", "sent_at": "2026-01-05", "status__in": "open,paid"}
    rule = create_rule(
        {
            "name": "mark",
            "collection": "orders",
            "events": ["record.created"],
            "filter": conditions,
            "actions": [{"type": "set_fields", "values": {"notes": "matched"}}],
        },
        admin,
    )
    titles = {
        "Chairs": "2026-01-05T23:30:00Z",
        "Armchair": "2026-01-05T00:00:00Z",
        "Chain": "2026-01-06T00:00:00Z",  # the next UTC day
        "Table": "2026-01-05T10:00:00Z",
    }
    for title, sent in titles.items():
        create_record("orders", {"title": title, "sent_at": sent}, admin)
    expected = {r["title"] for r in list_records("orders", admin, conditions)["items"]}
    runner.step()
    matched = {r["title"] for r in list_records("orders", admin, {"notes": "matched"})["items"]}
    assert matched == expected == {"Chairs", "Armchair"}
    assert len(_runs(rule)) == 2


def test_a_delete_rule_filters_on_the_deleted_record(users, smtp, runner):
    admin = users["admin"]
    email_rule(admin, name="gone", events=["record.deleted"], filter={"quantity__gt": "3"})
    big = create_record("orders", {"title": "Big", "quantity": 5}, admin)
    small = create_record("orders", {"title": "Small", "quantity": 1}, admin)
    delete_record("orders", big["id"], admin)
    delete_record("orders", small["id"], admin)
    runner.step()
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "New order Big"


def test_an_email_rule_sends_at_most_its_hourly_cap(users, smtp, runner, clock, home):
    write_settings(home / "appliance.toml", {"rules_mail_per_hour": 2})
    rule = email_rule(users["admin"])
    for n in range(3):
        create_record("orders", {"title": f"Order {n}"}, users["admin"])
    runner.step()
    smtp.wait_for(2)
    runs = list(reversed(_runs(rule)))
    assert [r["actions"][0]["outcome"] for r in runs] == ["done", "done", "skipped"]
    assert "cap" in runs[2]["actions"][0]["detail"]
    clock.advance(minutes=61)
    create_record("orders", {"title": "Order later"}, users["admin"])
    runner.step()
    assert [m["Subject"] for m in smtp.wait_for(3)][-1] == "New order Order later"
    assert len(smtp.messages) == 3


def test_a_time_rule_runs_once_a_day_at_its_time_for_the_matching_records(users, smtp, runner, clock):
    admin = users["admin"]
    clock.current = dt.datetime(2026, 1, 5, 6, 0).astimezone()
    rule = create_rule(
        {
            "name": "due tomorrow",
            "collection": "orders",
            "daily_at": "07:00",
            "filter": {"due": "tomorrow", "status": "open"},
            "actions": [{"type": "email", "to_field": "contact", "subject": "{title} is due {due}", "body": ""}],
        },
        admin,
        now=clock.now(),
    )
    create_record("orders", {"title": "Due", "due": "2026-01-06", "contact": "a@example.com"}, admin)
    create_record("orders", {"title": "Paid", "due": "2026-01-06", "status": "paid", "contact": "b@example.com"}, admin)
    create_record("orders", {"title": "Later", "due": "2026-01-07", "contact": "c@example.com"}, admin)
    clock.current = dt.datetime(2026, 1, 5, 6, 59).astimezone()
    runner.step()
    assert RuleRun.select().where(RuleRun.rule_id == rule.id).count() == 0
    clock.current = dt.datetime(2026, 1, 5, 7, 1).astimezone()
    runner.step()
    [message] = smtp.wait_for(1)
    assert message["To"] == "a@example.com" and message["Subject"] == "Due is due 2026-01-06"
    clock.current = dt.datetime(2026, 1, 5, 9, 0).astimezone()
    runner.step()
    assert len(smtp.messages) == 1  # once a day
    clock.current = dt.datetime(2026, 1, 6, 7, 0).astimezone()  # the next day "tomorrow" is the 7th
    runner.step()
    assert [m["To"] for m in smtp.wait_for(2)] == ["a@example.com", "c@example.com"]
    assert [r["trigger"] for r in _runs(rule)] == ["daily", "daily"]
