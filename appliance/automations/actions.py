"""What a rule's actions do on one record, or would do (a test run): mail, webhook call, fields set.

Each action is first *planned* (recipients found, templates rendered, the
webhook's body signed, the new field values computed) with no side effect;
:func:`perform_action` then carries out a plan. A test run shows the plans
and writes, sends and calls nothing.

The webhook action POSTs ``{"id", "type", "timestamp", "data": {"collection",
"record", "rule"}}`` to its URL, signed the Standard Webhooks way with the
rule's own secret (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``
``v1,<base64 HMAC-SHA256 of id.timestamp.body>``); one try, 10 s at most, a
2xx answer is a success. Retries with back-off are what the webhooks of the
webhooks area are for; a rule's call is a notification.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from appliance.actors import ADMIN_ROLE, Actor
from appliance.automations.checks import FORMULA_NAMES
from appliance.automations.matching import relative_date
from appliance.automations.templates import render_template
from appliance.clock import iso
from appliance.collections.definitions import CollectionDef
from appliance.collections.formulas import FormulaLimit, compute_formula
from appliance.errors import ApplianceError
from appliance.records.read import fetch_values
from appliance.records.validation import check_record
from appliance.records.write import update_record
from appliance.storage.models import User

Mailer = Callable[[list[str], str, str], None]
WEBHOOK_TIMEOUT_SECONDS = 10.0
ANSWER_BYTES = 200


@dataclass(frozen=True)
class Context:
    """One run of one rule on one record."""

    rule_id: int
    rule_name: str
    collection: CollectionDef
    record: Mapping[str, Any]  # as the API shows it
    trigger: str  # record.created, record.updated, record.deleted or daily
    event_id: str | None
    chain: tuple[str, ...]  # the rules whose writes led here, first first (empty: a person's change)
    now: dt.datetime
    today: dt.date

    @property
    def record_id(self) -> int:
        return int(self.record["id"])

    @property
    def actor(self) -> Actor:
        """Who a field-setting action writes as: ``rule:<name>``, after the rules that led here."""
        return Actor(None, ADMIN_ROLE, chain_text((*self.chain, self.rule_name)))


def chain_text(chain: tuple[str, ...]) -> str:
    """The actor a chain of rules writes as: ``rule:a``, then ``rule:a > rule:b``..."""
    return " > ".join(f"rule:{name}" for name in chain)


def chain_of(actor: str) -> tuple[str, ...]:
    """The rules whose writes an event's actor names (empty for a person or program)."""
    parts = [p.strip() for p in (actor or "").split(" > ")]
    if not parts or not all(p.startswith("rule:") for p in parts):
        return ()
    return tuple(p[len("rule:") :] for p in parts)


def _address(value: Any) -> str | None:
    try:
        return validate_email(str(value or ""), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def plan_email(action: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """Recipients and the rendered message; ``notes`` say why a part gave no address."""
    recipients = list(action.get("to") or [])
    notes: list[str] = []
    if action.get("to_field"):
        found = _address(ctx.record.get(action["to_field"]))
        if found:
            recipients.append(found)
        else:
            notes.append(f"{action['to_field']} holds no email address")
    if action.get("to_role"):
        people = [u.email for u in User.select(User.email).where((User.role == action["to_role"]) & User.active)]
        recipients += people
        if not people:
            notes.append(f"no active user has the role {action['to_role']}")
    return {
        "type": "email",
        "to": list(dict.fromkeys(recipients)),
        "subject": render_template(action["subject"], ctx.record).replace("\n", " ").replace("\r", " ")[:300],
        "body": render_template(action.get("body", ""), ctx.record),
        "notes": notes,
    }


def _webhook_id(ctx: Context) -> str:
    return f"rule{ctx.rule_id}_{ctx.event_id or f'daily{ctx.today:%Y%m%d}_{ctx.record_id}'}"


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The Standard Webhooks signature header value: ``v1,`` and base64 of HMAC-SHA256 over
    ``id.timestamp.body`` keyed with the secret's bytes (the base64 after ``whsec_``)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def plan_webhook(action: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """The request the action would send: URL, headers (signed) and body."""
    message_id = _webhook_id(ctx)
    timestamp = int(ctx.now.timestamp())
    payload = {
        "id": message_id,
        "type": ctx.trigger if ctx.trigger != "daily" else "rule.daily",
        "timestamp": iso(ctx.now),
        "data": {"collection": ctx.collection.name, "record": dict(ctx.record), "rule": ctx.rule_name},
    }
    body = json.dumps(payload, ensure_ascii=False, default=str)
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(action["secret"], message_id, timestamp, body),
    }
    return {"type": "webhook", "url": action["url"], "headers": headers, "body": body}


def plan_set_fields(action: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """The values the action would write: fixed values (relative dates resolved) and computed formulas."""
    values: dict[str, Any] = {}
    for name, value in (action.get("values") or {}).items():
        spec = ctx.collection.field(name)
        if isinstance(value, str) and spec is not None and spec.type in ("date", "datetime"):
            value = relative_date(value, ctx.today) or value
        values[name] = value
    names = {**ctx.record, "today": ctx.today.isoformat(), "now": iso(ctx.now)}
    assert set(FORMULA_NAMES) <= set(names)
    for name, formula in (action.get("formulas") or {}).items():
        try:
            values[name] = compute_formula(formula, names)
        except FormulaLimit as exc:
            raise ApplianceError(f"the formula of {name} gives a value too large: {exc}") from None
    return {"type": "set_fields", "values": values}


PLANNERS = {"email": plan_email, "webhook": plan_webhook, "set_fields": plan_set_fields}


def plan_action(action: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """What the action would do on this record; never has a side effect."""
    return PLANNERS[action["type"]](action, ctx)


def preview_action(action: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """A test run's answer for one action: its plan, with ``error`` when it would fail (field values
    checked the way a write checks them; nothing is written)."""
    try:
        plan = plan_action(action, ctx)
    except ApplianceError as exc:
        return {"type": action["type"], "error": exc.message}
    if plan["type"] == "email" and not plan["to"]:
        plan["error"] = "there is nobody to send it to"
    if plan["type"] == "set_fields":
        if ctx.trigger == "record.deleted":
            plan["error"] = "the record is deleted: there is nothing to set"
        else:
            existing = fetch_values(ctx.collection, ctx.record_id)
            try:
                check_record(ctx.collection, plan["values"], actor=ctx.actor, existing=existing or {})
            except ApplianceError as exc:
                plan["error"] = exc.message + (f": {exc.fields}" if exc.fields else "")
    return plan


def private_address_problem(url: str, allowed: str) -> str | None:
    """Why ``url`` may not be called under the setting ``webhook_allowed_private_networks`` (``allowed``:
    comma-separated ranges; empty allows any address), or ``None``. Public addresses are always allowed."""
    if not allowed.strip():
        return None
    networks = [ipaddress.ip_network(part.strip(), strict=False) for part in allowed.split(",") if part.strip()]
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for info in socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global and not any(address in network for network in networks):
            return f"{parts.hostname} is the private address {address}, outside webhook_allowed_private_networks"
    return None


def _post(plan: Mapping[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        plan["url"], data=plan["body"].encode(), headers=dict(plan["headers"]), method="POST"
    )
    try:
        with urllib.request.urlopen(
            request, timeout=WEBHOOK_TIMEOUT_SECONDS
        ) as answer:  # the URL was checked: http or https only
            return int(answer.status), answer.read(ANSWER_BYTES).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(ANSWER_BYTES).decode("utf-8", "replace")


def perform_action(
    plan: Mapping[str, Any], ctx: Context, mailer: Mailer | None, allowed_private: str = ""
) -> dict[str, Any]:
    """Carry out a plan; returns the run log's entry ``{"type", "outcome", "detail"}`` (outcome ``done``
    or ``failed``). Raises nothing for a failure of the action itself."""
    kind = plan["type"]
    try:
        if kind == "email":
            if not plan["to"]:
                return {
                    "type": kind,
                    "outcome": "failed",
                    "detail": "nobody to send it to; " + "; ".join(plan["notes"]),
                }
            if mailer is None:
                return {"type": kind, "outcome": "failed", "detail": "mail is not set up"}
            mailer(list(plan["to"]), plan["subject"], plan["body"])
            return {"type": kind, "outcome": "done", "detail": f"sent “{plan['subject']}” to {', '.join(plan['to'])}"}
        if kind == "webhook":
            refused = private_address_problem(plan["url"], allowed_private)
            if refused:
                return {"type": kind, "outcome": "failed", "detail": f"not called: {refused}"}
            status, text = _post(plan)
            outcome = "done" if 200 <= status < 300 else "failed"
            return {
                "type": kind,
                "outcome": outcome,
                "detail": f"{plan['url']} answered {status}: {text[:ANSWER_BYTES]}",
            }
        if ctx.trigger == "record.deleted":
            return {"type": kind, "outcome": "failed", "detail": "the record is deleted: there is nothing to set"}
        update_record(ctx.collection.name, ctx.record_id, plan["values"], ctx.actor)
        shown = ", ".join(f"{k} = {v!r}" for k, v in plan["values"].items())
        return {"type": kind, "outcome": "done", "detail": f"set {shown}"}
    except ApplianceError as exc:
        detail = exc.message + (f" ({'; '.join(f'{k}: {v}' for k, v in exc.fields.items())})" if exc.fields else "")
        return {"type": kind, "outcome": "failed", "detail": detail}
    except (OSError, ValueError) as exc:
        return {"type": kind, "outcome": "failed", "detail": f"{type(exc).__name__}: {exc}"[:500]}
