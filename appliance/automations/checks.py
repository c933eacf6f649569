"""Checking a rule as an admin writes it (the API and the pages send the same object).

:func:`check_rule` turns the submitted object into the stored one or raises
:class:`ValidationFailed` naming each bad part (``name``, ``collection``,
``events``, ``changed_fields``, ``daily_at``, ``filter``, ``actions``); a
message about an action says which one ("Action 2: ...").
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from appliance.automations.matching import check_filter, relative_date
from appliance.automations.templates import TemplateError, template_names
from appliance.collections.definitions import CollectionDef, get_collection
from appliance.collections.fields import SYSTEM_FIELDS
from appliance.collections.formulas import FormulaError, check_formula
from appliance.errors import NotFound, ValidationFailed
from appliance.records.events import EVENT_TYPES
from appliance.records.validation import clean_values
from appliance.storage.models import Role

NAME_RE = re.compile(r"^[^<>\n\r\t]{1,60}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
ACTION_TYPES = ("email", "webhook", "set_fields")
MAX_ACTIONS = 10
MAX_ADDRESSES = 50
FORMULA_NAMES = ("today", "now")  # beside the record's fields, a set-fields formula may name these


def new_webhook_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\n]", value)]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of texts")
    return [v.strip() for v in value if v.strip()]


def _email_action(collection: CollectionDef, action: Mapping[str, Any]) -> dict[str, Any]:
    addresses = _strings(action.get("to"), "to")
    if len(addresses) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} fixed addresses")
    for address in addresses:
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError:
            raise ValueError(f"{address[:80]!r} is not an email address") from None
    to_field = str(action.get("to_field") or "").strip() or None
    if to_field is not None:
        spec = collection.field(to_field)
        if spec is None or spec.type not in ("email", "text"):
            raise ValueError(f"'{to_field}' is not an email or text field of this collection")
    to_role = str(action.get("to_role") or "").strip() or None
    if to_role is not None and Role.get_or_none(Role.name == to_role) is None:
        raise ValueError(f"there is no role '{to_role}'")
    if not (addresses or to_field or to_role):
        raise ValueError("say whom to email: addresses, a field holding the address, or a role")
    known = [*SYSTEM_FIELDS, *(f.name for f in collection.fields)]
    subject = str(action.get("subject") or "").strip()
    body = str(action.get("body") or "")
    if not subject:
        raise ValueError("the subject is empty")
    if len(subject) > 200 or "\n" in subject or "\r" in subject:
        raise ValueError("the subject is one line of at most 200 characters")
    for label, template in (("subject", subject), ("body", body)):
        try:
            template_names(template, known)
        except TemplateError as exc:
            raise ValueError(f"the {label}: {exc}") from None
    return {
        "type": "email",
        "to": addresses,
        "to_field": to_field,
        "to_role": to_role,
        "subject": subject,
        "body": body,
    }


def check_webhook_url(url: Any) -> str:
    """``url`` when it is an absolute http or https address; :class:`ValueError` saying why not."""
    text = str(url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the webhook address must be an http:// or https:// URL")
    if len(text) > 2000 or any(c.isspace() for c in text):
        raise ValueError("the webhook address is too long or has spaces")
    return text


def _webhook_action(action: Mapping[str, Any], old: Mapping[str, Any] | None) -> dict[str, Any]:
    url = check_webhook_url(action.get("url"))
    secret = action.get("secret") or (old or {}).get("secret") or new_webhook_secret()
    if not isinstance(secret, str) or not secret.startswith("whsec_") or len(secret) > 200:
        raise ValueError("the secret must start with whsec_ (leave it out to have one made)")
    return {"type": "webhook", "url": url, "secret": secret}


def _set_fields_action(collection: CollectionDef, action: Mapping[str, Any]) -> dict[str, Any]:
    values = action.get("values") or {}
    formulas = action.get("formulas") or {}
    if not isinstance(values, Mapping) or not isinstance(formulas, Mapping):
        raise ValueError("values and formulas are objects of field names")
    if not values and not formulas:
        raise ValueError("say which fields to set")
    for name in [*values, *formulas]:
        spec = collection.field(str(name))
        if spec is None or spec.read_only or spec.type == "file":
            raise ValueError(f"'{name}' is not a field a rule can set")
    both = set(values) & set(formulas)
    if both:
        raise ValueError(f"'{sorted(both)[0]}' has both a value and a formula")
    plain = [f.name for f in collection.fields if f.type not in ("computed", "file")]
    for name, formula in formulas.items():
        try:
            check_formula(str(formula), [*plain, *SYSTEM_FIELDS, *FORMULA_NAMES])
        except FormulaError as exc:
            raise ValueError(f"the formula of '{name}': {exc}") from None
    fixed = {k: v for k, v in values.items() if not _relative(collection, str(k), v)}
    _cleaned, errors = clean_values(collection, fixed, existing={"id": 0})  # a change: only these fields
    errors = {k: v for k, v in errors.items() if k in fixed}  # a required field elsewhere is the record's matter
    if errors:
        name, message = next(iter(errors.items()))
        raise ValueError(f"'{name}': {message}")
    return {"type": "set_fields", "values": dict(values), "formulas": {k: str(v) for k, v in formulas.items()}}


def _relative(collection: CollectionDef, name: str, value: Any) -> bool:
    """Whether ``value`` is a relative date (``today``...) for a date field: checked when the rule runs."""
    spec = collection.field(name)
    kind = spec.type if spec else None
    return isinstance(value, str) and kind in ("date", "datetime") and relative_date(value, dt.date.today()) is not None


def check_actions(
    collection: CollectionDef, actions: Any, old: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The actions as stored; :class:`ValidationFailed` on ``actions`` naming the first bad one.
    A webhook action without a ``secret`` keeps the one of the action at its place before (else gets one)."""
    if not isinstance(actions, list) or not actions:
        raise ValidationFailed({"actions": "Give at least one action: email, webhook or set_fields."})
    if len(actions) > MAX_ACTIONS:
        raise ValidationFailed({"actions": f"A rule has at most {MAX_ACTIONS} actions."})
    out = []
    for number, action in enumerate(actions, start=1):
        try:
            if not isinstance(action, Mapping) or action.get("type") not in ACTION_TYPES:
                raise ValueError(f"the type must be one of {', '.join(ACTION_TYPES)}")
            if action["type"] == "email":
                out.append(_email_action(collection, action))
            elif action["type"] == "webhook":
                before = (old or [])[number - 1] if old and len(old) >= number else None
                same = before if before and before.get("type") == "webhook" else None
                out.append(_webhook_action(action, same))
            else:
                out.append(_set_fields_action(collection, action))
        except ValueError as exc:
            raise ValidationFailed({"actions": f"Action {number}: {str(exc).rstrip('.')}."}) from None
    return out


def check_rule(data: Any, old: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stored form of a rule (``old``: the stored rule a change starts from, whose values stay
    where ``data`` leaves them out). Raises :class:`ValidationFailed` naming every bad part."""
    if not isinstance(data, Mapping):
        raise ValidationFailed({"body": "Send the rule as a JSON object."})
    merged = {**(old or {}), **data}
    problems: dict[str, str] = {}
    allowed = {"name", "collection", "active", "events", "changed_fields", "daily_at", "filter", "actions"}
    for key in data:
        if key not in allowed and key not in ("id", "created_at", "updated_at", "created_by", "last_run"):
            problems[str(key)] = "Unknown part of a rule."
    name = str(merged.get("name") or "").strip()
    if not NAME_RE.match(name):
        problems["name"] = "Give the rule a name of 1 to 60 characters, without < or >."
    collection: CollectionDef | None = None
    try:
        collection = get_collection(str(merged.get("collection") or ""))
    except NotFound:
        problems["collection"] = "There is no such collection."
    active = merged.get("active", True)
    if not isinstance(active, bool):
        problems["active"] = "Must be true or false."
    events = merged.get("events") or []
    if not isinstance(events, list) or any(e not in EVENT_TYPES for e in events):
        problems["events"] = f"Events are some of {', '.join(EVENT_TYPES)}."
        events = []
    daily_at = str(merged.get("daily_at") or "").strip() or None
    if daily_at is not None and not TIME_RE.match(daily_at):
        problems["daily_at"] = "Give the time of day as HH:MM (24 hours), for example 07:30."
    if bool(events) == bool(daily_at) and "events" not in problems and "daily_at" not in problems:
        problems["events"] = "A rule runs either on record events or every day at a time: give one of them."
    changed = merged.get("changed_fields") or []
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        problems["changed_fields"] = "A list of field names."
        changed = []
    elif changed and "record.updated" not in events:
        problems["changed_fields"] = "Only a rule that runs on updates can wait for given fields to change."
    elif collection is not None:
        unknown = [c for c in changed if collection.field(c) is None]
        if unknown:
            problems["changed_fields"] = f"'{unknown[0]}' is no field of this collection."
    stored: dict[str, Any] = {"name": name, "active": active, "events": list(dict.fromkeys(events))}
    stored.update(changed_fields=list(dict.fromkeys(changed)), daily_at=daily_at)
    if collection is not None:
        stored["collection"] = collection.name
        for key, check in (
            ("filter", lambda: check_filter(collection, merged.get("filter"))),
            ("actions", lambda: check_actions(collection, merged.get("actions"), (old or {}).get("actions"))),
        ):
            try:
                stored[key] = check()
            except ValidationFailed as exc:
                problems.update(exc.fields)
    if problems:
        raise ValidationFailed(problems)
    return stored
