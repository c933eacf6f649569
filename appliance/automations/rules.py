"""Keeping the rules: create, change, delete, list, and each rule in the API's shape and in plain words.

Only admins manage rules (checked here, so the API and the pages agree);
every change is an audit event. A new or re-activated rule reacts to the
record changes made from then on, not to older ones.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import peewee

from appliance.actors import ActorLike, is_admin
from appliance.audit import record_event
from appliance.automations.checks import check_rule
from appliance.clock import as_stored, iso, utcnow
from appliance.collections.definitions import get_collection
from appliance.errors import Conflict, NotFound, PermissionDenied
from appliance.records.events import newest_event_id
from appliance.storage.db import write_transaction
from appliance.storage.models import Rule, RuleRun

DEPTH_LIMIT = 3  # a change made by a rule may set off other rules; a chain stops at this many rule writes
_EVENT_WORDS = {"record.created": "created", "record.updated": "changed", "record.deleted": "deleted"}


def require_rule_admin(actor: ActorLike) -> None:
    if not is_admin(actor):
        raise PermissionDenied("Only admins may manage automation rules.")


def stored_rule(rule: Rule) -> dict[str, Any]:
    """The rule's checked parts, as :func:`check_rule` made them."""
    return {
        "name": rule.name,
        "collection": rule.collection,
        "active": rule.active,
        "events": json.loads(rule.events),
        "changed_fields": json.loads(rule.changed_fields),
        "daily_at": rule.daily_at,
        "filter": json.loads(rule.conditions),
        "actions": json.loads(rule.actions),
    }


def get_rule(rule_id: int | str) -> Rule:
    """The rule with that id; :class:`NotFound` otherwise."""
    try:
        number = int(rule_id)
    except (TypeError, ValueError):
        number = 0
    rule = Rule.get_or_none(Rule.id == number) if 0 < number < 2**63 else None
    if rule is None:
        raise NotFound(f"There is no rule {str(rule_id)[:40]}.")
    return rule


def list_rules() -> list[Rule]:
    """Every rule, by name."""
    return list(Rule.select().order_by(Rule.name))


def _columns(stored: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": stored["name"],
        "collection": stored["collection"],
        "active": stored["active"],
        "events": json.dumps(stored["events"]),
        "changed_fields": json.dumps(stored["changed_fields"]),
        "daily_at": stored["daily_at"],
        "conditions": json.dumps(stored["filter"], ensure_ascii=False),
        "actions": json.dumps(stored["actions"], ensure_ascii=False),
    }


def _taken(exc: peewee.IntegrityError) -> Conflict:
    return Conflict("Another rule has this name.", fields={"name": "Another rule has this name."})


def create_rule(data: Any, actor: ActorLike, *, address: str | None = None, now: dt.datetime | None = None) -> Rule:
    """Add a rule; raises :class:`PermissionDenied`, :class:`ValidationFailed`, :class:`Conflict` (name taken).
    A time rule first runs at its next time of day after ``now``."""
    require_rule_admin(actor)
    stored = check_rule(data)
    now = as_stored(now)
    with write_transaction():
        try:
            rule = Rule.create(
                **_columns(stored),
                since_event=newest_event_id(),
                created_at=now,
                updated_at=now,
                created_by=str(getattr(actor, "email", "") or "")[:320],
            )
        except peewee.IntegrityError as exc:
            raise _taken(exc) from None
        record_event("rule.created", actor=actor, target=f"rule:{rule.id}", address=address, details=_audit(stored))
    return rule


def update_rule(rule_id: int | str, data: Any, actor: ActorLike, *, address: str | None = None) -> Rule:
    """Change a rule (parts left out stay); raises as :func:`create_rule` and :class:`NotFound`."""
    require_rule_admin(actor)
    rule = get_rule(rule_id)
    old = stored_rule(rule)
    stored = check_rule(data, old)
    columns = _columns(stored)
    with write_transaction():
        if stored["active"] and not old["active"]:
            columns["since_event"] = newest_event_id()  # a paused rule does not catch up on what it missed
        try:
            Rule.update(**columns, updated_at=utcnow()).where(Rule.id == rule.id).execute()
        except peewee.IntegrityError as exc:
            raise _taken(exc) from None
        record_event("rule.updated", actor=actor, target=f"rule:{rule.id}", address=address, details=_audit(stored))
    return get_rule(rule.id)


def delete_rule(rule_id: int | str, actor: ActorLike, *, address: str | None = None) -> None:
    """Remove a rule and its run log; raises :class:`PermissionDenied`, :class:`NotFound`."""
    require_rule_admin(actor)
    rule = get_rule(rule_id)
    with write_transaction():
        RuleRun.delete().where(RuleRun.rule_id == rule.id).execute()
        Rule.delete().where(Rule.id == rule.id).execute()
        record_event(
            "rule.deleted", actor=actor, target=f"rule:{rule.id}", address=address, details={"name": rule.name}
        )


def _audit(stored: Mapping[str, Any]) -> dict[str, Any]:
    # The audit log never holds a webhook action's secret.
    actions = [{k: v for k, v in a.items() if k != "secret"} for a in stored.get("actions", [])]
    return {**stored, "actions": actions}


def last_runs(rule_ids: list[int]) -> dict[int, RuleRun]:
    """The newest run of each rule among ``rule_ids``."""
    newest = RuleRun.select(peewee.fn.MAX(RuleRun.id)).where(RuleRun.rule_id.in_(rule_ids)).group_by(RuleRun.rule_id)
    ids = [int(row[0]) for row in newest.tuples()]  # type: ignore[index]  # peewee's tuples are untyped
    return {run.rule_id: run for run in RuleRun.select().where(RuleRun.id.in_(ids))} if ids else {}


def serialize_rule(rule: Rule, last: RuleRun | None = None) -> dict[str, Any]:
    """A rule in the API's shape (webhook actions with their signing secret: only admins see rules)."""
    return {
        "id": rule.id,
        **stored_rule(rule),
        "description": describe_rule(stored_rule(rule)),
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
        "created_by": rule.created_by,
        "last_run": serialize_run(last) if last is not None else None,
    }


def serialize_run(run: RuleRun) -> dict[str, Any]:
    """A run-log item: ``id``, ``rule``, ``at``, ``trigger``, ``event``, ``record_id``, ``outcome``, ``actions``
    (what each did), ``error``, ``depth``."""
    return {
        "id": run.id,
        "rule": run.rule_name,
        "at": iso(run.at),
        "trigger": run.trigger,
        "event": run.event_id,
        "collection": run.collection,
        "record_id": run.record_id,
        "outcome": run.outcome,
        "actions": json.loads(run.actions),
        "error": run.error,
        "depth": run.depth,
    }


def list_runs(rule: Rule) -> Any:
    """The rule's runs, newest first (a query, for paging)."""
    return RuleRun.select().where(RuleRun.rule_id == rule.id).order_by(RuleRun.id.desc())


def describe_action(action: Mapping[str, Any]) -> str:
    """One action in plain words."""
    if action["type"] == "email":
        whom = [*action.get("to", [])]
        if action.get("to_field"):
            whom.append(f"the address in {action['to_field']}")
        if action.get("to_role"):
            whom.append(f"every {action['to_role']}")
        return f"email {', '.join(whom)}: “{action['subject']}”"
    if action["type"] == "webhook":
        return f"send the record to {action['url']}"
    parts = [f"{k} to {v!r}" for k, v in action.get("values", {}).items()]
    parts += [f"{k} to {v}" for k, v in action.get("formulas", {}).items()]
    return "set " + ", ".join(parts)


def describe_rule(stored: Mapping[str, Any]) -> str:
    """The rule in one plain sentence: "When a record of Orders is created where status is open: email ..."."""
    try:
        label = get_collection(stored["collection"]).label
    except NotFound:
        label = stored["collection"]
    if stored.get("daily_at"):
        when = f"Every day at {stored['daily_at']}, for each record of {label}"
    else:
        words = [_EVENT_WORDS[e] for e in stored.get("events", [])]
        when = f"When a record of {label} is {' or '.join(words)}"
        if stored.get("changed_fields"):
            when += f" (for a change: only when {' or '.join(stored['changed_fields'])} changes)"
    conditions = [_condition_words(k, v) for k, v in stored.get("filter", {}).items()]
    if conditions:
        when += " where " + " and ".join(conditions)
    return when + ": " + "; ".join(describe_action(a) for a in stored.get("actions", [])) + "."


_OP_WORDS = {
    "eq": "is",
    "ne": "is not",
    "lt": "is before/below",
    "lte": "is at most",
    "gt": "is after/above",
    "gte": "is at least",
    "contains": "contains",
    "icontains": "contains (any case)",
    "startswith": "starts with",
    "in": "is one of",
}


def _condition_words(parameter: str, value: str) -> str:
    name, _, op = parameter.partition("__")
    if op == "isnull":
        return f"{name} is {'empty' if value.lower() in ('true', '1', 'yes') else 'not empty'}"
    return f"{name} {_OP_WORDS.get(op or 'eq', op)} {value}"
