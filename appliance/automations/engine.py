"""Running the rules: from the outbox (record events) and every day at their time, in the scheduler's process.

:func:`poll_once` is the one step of the rules' loop: it reads the outbox
events after the rules' own cursor (``rule_cursor``; the outbox is never
deleted from), runs each active rule of that collection and event on the
record when the record passes the rule's filter, moves the cursor on, then
runs the time rules whose time of day has come (once a day; a day missed
while the server was off runs once when it starts again). Every run on a
record is a ``rule_run`` row; a rule already logged for an event is not run
for it again (after a crash, a run whose log was written is not repeated).

Loop guard: a field-setting action writes as ``rule:<name>``, after the
rules that led to it (``rule:a > rule:b``), so the event of that write
carries the chain. A rule reached through :data:`DEPTH_LIMIT` rule writes
does not run; its log says so. A change that changes nothing writes no event.

Mail cap: an email rule sends at most ``rules_mail_per_hour`` messages in
any hour; a message over the cap is not sent and its log says so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import peewee

from appliance.actors import ActorLike
from appliance.automations.actions import Context, Mailer, chain_of, perform_action, plan_action, preview_action
from appliance.automations.matching import local_today, matching_ids, record_matches, snapshot_matches
from appliance.automations.rules import DEPTH_LIMIT, get_rule, require_rule_admin, stored_rule
from appliance.clock import as_stored, aware, utcnow
from appliance.collections.definitions import CollectionDef, get_collection
from appliance.config.settings import Settings
from appliance.errors import NotFound
from appliance.records.events import DELETED, UPDATED, events_after, newest_event_id
from appliance.records.read import fetch_values, serialize_record
from appliance.storage.db import database
from appliance.storage.models import OutboxEvent, Rule, RuleCursor, RuleRun

CURSOR = "rules"
BATCH = 100


def _cursor() -> int:
    row = RuleCursor.get_or_none(RuleCursor.name == CURSOR)
    if row is not None:
        return int(row.last_event_id)
    # A first start: from the oldest point any active rule waits for, never from the beginning of time.
    oldest = Rule.select(peewee.fn.MIN(Rule.since_event)).where(Rule.active).scalar()
    start = min(int(oldest), newest_event_id()) if oldest is not None else newest_event_id()
    RuleCursor.insert(name=CURSOR, last_event_id=start).on_conflict_ignore().execute()
    return start


def _move_cursor(event_id: int) -> None:
    RuleCursor.update(last_event_id=event_id).where(RuleCursor.name == CURSOR).execute()


def _mails_last_hour(rule_id: int, now: dt.datetime) -> int:
    since = as_stored(now) - dt.timedelta(hours=1)
    total = (
        RuleRun.select(peewee.fn.SUM(RuleRun.mails_sent))
        .where((RuleRun.rule_id == rule_id) & (RuleRun.at > since))
        .scalar()
    )
    return int(total or 0)


def _log(ctx: Context, outcome: str, actions: list[dict[str, Any]], error: str | None, mails: int) -> RuleRun:
    run: RuleRun = RuleRun.create(
        rule_id=ctx.rule_id,
        rule_name=ctx.rule_name,
        at=as_stored(ctx.now),
        trigger=ctx.trigger,
        event_id=ctx.event_id,
        collection=ctx.collection.name,
        record_id=ctx.record_id,
        outcome=outcome,
        actions=json.dumps(actions, ensure_ascii=False, default=str),
        error=error,
        mails_sent=mails,
        depth=len(ctx.chain),
    )
    return run


def run_actions(actions: list[dict[str, Any]], ctx: Context, settings: Settings, mailer: Mailer | None) -> RuleRun:
    """Do the rule's actions on the record, in order, and log the run (a failed action does not stop the next)."""
    if len(ctx.chain) >= DEPTH_LIMIT:
        chain = " > ".join(ctx.chain)
        return _log(
            ctx,
            "skipped",
            [],
            f"loop guard: this change comes from {DEPTH_LIMIT} rule changes in a row ({chain}); rules stop here",
            0,
        )
    cap = int(settings.rules_mail_per_hour)
    sent_before = _mails_last_hour(ctx.rule_id, ctx.now) if any(a["type"] == "email" for a in actions) else 0
    results: list[dict[str, Any]] = []
    mails = 0
    for action in actions:
        try:
            plan = plan_action(action, ctx)
        except Exception as exc:  # a plan that cannot be made is this action's failure, not the loop's
            results.append({"type": action["type"], "outcome": "failed", "detail": str(exc)[:500]})
            continue
        if plan["type"] == "email" and plan["to"] and sent_before + mails >= cap:
            results.append(
                {
                    "type": "email",
                    "outcome": "skipped",
                    "detail": f"not sent: this rule sent {cap} messages in the last hour, its cap "
                    "(setting rules_mail_per_hour)",
                }
            )
            continue
        allowed = str(getattr(settings, "webhook_allowed_private_networks", "") or "")
        result = perform_action(plan, ctx, mailer, allowed)
        if plan["type"] == "email" and result["outcome"] == "done":
            mails += 1
        results.append(result)
    failed = [r for r in results if r["outcome"] == "failed"]
    outcome = "failed" if failed else "ok"
    return _log(ctx, outcome, results, "; ".join(r["detail"] for r in failed)[:2000] or None, mails)


def _changed(data: Mapping[str, Any], fields: list[str]) -> bool:
    record, previous = data.get("record") or {}, data.get("previous") or {}
    return any(record.get(f) != previous.get(f) for f in fields)


def _handle_event(event: OutboxEvent, settings: Settings, mailer: Mailer | None, now: dt.datetime) -> list[str]:
    rules = list(
        Rule.select().where(
            Rule.active
            & (Rule.collection == event.collection)
            & (Rule.since_event < event.id)
            & Rule.daily_at.is_null()
        )
    )
    rules = [r for r in rules if event.type in json.loads(r.events)]
    if not rules:
        return []
    try:
        collection = get_collection(event.collection)
    except NotFound:
        return []
    data = json.loads(event.data)
    snapshot = data.get("record") or {}
    stored = fetch_values(collection, event.record_id) if event.type != DELETED else None
    record = serialize_record(collection, stored) if stored is not None else snapshot
    today = local_today(now)
    done: list[str] = []
    for rule in rules:
        spec = stored_rule(rule)
        if event.type == UPDATED and spec["changed_fields"] and not _changed(data, spec["changed_fields"]):
            continue
        if RuleRun.select().where((RuleRun.rule_id == rule.id) & (RuleRun.event_id == event.event_id)).exists():
            continue
        if stored is not None:
            matched = record_matches(collection, event.record_id, spec["filter"], today)
        else:
            matched = snapshot_matches(collection, snapshot, spec["filter"], today)
        if not matched:
            continue
        ctx = Context(
            rule.id, rule.name, collection, record, event.type, event.event_id, chain_of(event.actor), now, today
        )
        run = run_actions(spec["actions"], ctx, settings, mailer)
        done.append(f"rule {rule.name}: {run.outcome} on {collection.name} {event.record_id} ({event.type})")
    return done


def _daily_due(rule: Rule, now: dt.datetime) -> bool:
    local = (now if now.tzinfo else now.replace(tzinfo=dt.UTC)).astimezone()
    hour, minute = (int(p) for p in str(rule.daily_at).split(":"))
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    created = aware(rule.created_at)
    return local >= due and rule.last_daily_on != local.date().isoformat() and (created is None or created <= due)


def _run_daily(rule: Rule, settings: Settings, mailer: Mailer | None, now: dt.datetime) -> list[str]:
    today = local_today(now)
    claimed = (
        Rule.update(last_daily_on=today.isoformat())
        .where((Rule.id == rule.id) & ((Rule.last_daily_on != today.isoformat()) | Rule.last_daily_on.is_null()))
        .execute()
    )
    if not claimed:
        return []
    try:
        collection: CollectionDef = get_collection(rule.collection)
    except NotFound:
        return [f"rule {rule.name}: its collection {rule.collection} is gone"]
    spec = stored_rule(rule)
    outcomes = []
    for record_id in matching_ids(collection, spec["filter"], today):
        values = fetch_values(collection, record_id)
        if values is None:
            continue
        record = serialize_record(collection, values)
        ctx = Context(rule.id, rule.name, collection, record, "daily", None, (), now, today)
        outcomes.append(run_actions(spec["actions"], ctx, settings, mailer).outcome)
    return [f"rule {rule.name}: ran on {len(outcomes)} record(s) for {today}"]


def poll_once(settings: Settings, mailer: Mailer | None, *, now: dt.datetime | None = None) -> list[str]:
    """Handle the outbox events that arrived since the last step (at most a few batches), then the time rules
    whose time has come. Returns what happened, for the log and tests."""
    moment = now or utcnow()
    done: list[str] = []
    cursor = _cursor()
    for _batch in range(10):
        events = events_after(cursor, BATCH)
        for event in events:
            done += _handle_event(event, settings, mailer, moment)
            cursor = event.id
            _move_cursor(cursor)
        if len(events) < BATCH:
            break
    for rule in list(Rule.select().where(Rule.active & Rule.daily_at.is_null(False))):
        if _daily_due(rule, moment):
            done += _run_daily(rule, settings, mailer, moment)
    return done


def dry_run(rule_id: int | str, record_id: Any, actor: ActorLike, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the rule would do on one stored record, with no side effect: nothing written, sent or called.

    Answers ``{"rule", "record_id", "matches", "trigger", "actions": [plan, ...]}``; a plan holds the
    rendered mail (``to``, ``subject``, ``body``), the signed request, or the field ``values``, and ``error``
    when it would fail. Raises :class:`PermissionDenied`, :class:`NotFound` (rule or record).
    """
    require_rule_admin(actor)
    rule = get_rule(rule_id)
    spec = stored_rule(rule)
    collection = get_collection(rule.collection)
    try:
        number = int(record_id)
    except (TypeError, ValueError):
        number = 0
    values = fetch_values(collection, number)
    if values is None:
        raise NotFound(f"No record {str(record_id)[:40]} in {collection.name!r}.")
    moment = now or utcnow()
    today = local_today(moment)
    trigger = spec["events"][0] if spec["events"] else "daily"
    record = serialize_record(collection, values)
    ctx = Context(rule.id, rule.name, collection, record, trigger, None, (), moment, today)
    with database.atomic() as transaction:
        # Nothing here writes; the transaction is rolled back all the same, so a test run cannot leave a trace.
        plans = [preview_action(a, ctx) for a in spec["actions"]]
        matches = record_matches(collection, number, spec["filter"], today)
        transaction.rollback()
    return {"rule": rule.name, "record_id": number, "matches": matches, "trigger": trigger, "actions": plans}
