"""The webhooks themselves: create, read, change, delete, rotate the secret; each change audited.

A webhook sends the events of one collection (some or all of
``record.created``, ``record.updated``, ``record.deleted``) to one URL. Its
secret is made here and shown once, in the answer to its creation or to a
rotation. A new webhook starts at the newest outbox event: it receives what
happens from then on. A paused or inactive webhook keeps its place in the
outbox, so turning it back on delivers what happened meanwhile.
"""

from __future__ import annotations

import json
from typing import Any

from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import iso, utcnow
from appliance.collections.definitions import get_collection
from appliance.errors import NotFound, ValidationFailed
from appliance.records.events import EVENT_TYPES, newest_event_id
from appliance.storage.db import write_transaction
from appliance.storage.models import Webhook, WebhookDelivery
from appliance.webhooks.addresses import address_problem, url_problem
from appliance.webhooks.signing import new_secret

FIELDS = ("url", "collection", "events", "active", "description")


def _check(data: dict[str, Any], current: Webhook | None, allowed_private: str) -> dict[str, Any]:
    """The checked values of ``data`` (only the keys given); raises :class:`ValidationFailed` naming each bad field."""
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - set(FIELDS))
    for key in unknown:
        errors[key] = "Unknown field; a webhook has url, collection, events, active and description."
    values: dict[str, Any] = {}
    if "url" in data or current is None:
        raw_url = data.get("url")
        url = raw_url.strip() if isinstance(raw_url, str) else ""
        problem = url_problem(url) or address_problem(url, allowed_private)
        if problem:
            errors["url"] = problem
        else:
            values["url"] = url
    if "collection" in data or current is None:
        name = data.get("collection")
        if not isinstance(name, str) or not name:
            errors["collection"] = "Choose the collection whose records are sent."
        else:
            try:
                values["collection"] = get_collection(name).name
            except NotFound:
                errors["collection"] = f"There is no collection named {name!r}."
    if "events" in data or current is None:
        events = data.get("events", list(EVENT_TYPES) if current is None else None)
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            errors["events"] = "Choose at least one of " + ", ".join(EVENT_TYPES) + "."
        elif any(e not in EVENT_TYPES for e in events):
            bad = next(e for e in events if e not in EVENT_TYPES)
            errors["events"] = f"{bad!r} is not an event; choose from " + ", ".join(EVENT_TYPES) + "."
        else:
            values["events"] = [e for e in EVENT_TYPES if e in events]
    if "active" in data:
        if not isinstance(data["active"], bool):
            errors["active"] = "Write true or false."
        else:
            values["active"] = data["active"]
    if "description" in data:
        text = data["description"]
        if not isinstance(text, str) or len(text) > 200:
            errors["description"] = "Write at most 200 characters."
        else:
            values["description"] = text.strip()
    if errors:
        raise ValidationFailed(errors)
    return values


def get_webhook(webhook_id: int) -> Webhook:
    """The webhook ``webhook_id``; raises :class:`NotFound`."""
    webhook = Webhook.get_or_none(Webhook.id == webhook_id)
    if webhook is None:
        raise NotFound(f"There is no webhook {webhook_id}.")
    return webhook


def list_webhooks() -> list[Webhook]:
    return list(Webhook.select().order_by(Webhook.id))


def webhooks_query() -> Any:
    return Webhook.select().order_by(Webhook.id)


def create_webhook(
    data: dict[str, Any], actor: ActorLike | str, *, allowed_private: str = "", address: str | None = None
) -> tuple[Webhook, str]:
    """Create a webhook from ``{"url", "collection", "events"?, "active"?, "description"?}``.

    Returns the webhook and its secret (shown once). Raises :class:`ValidationFailed`.
    """
    values = _check(data, None, allowed_private)
    now = utcnow()
    secret = new_secret()
    with write_transaction():
        webhook = Webhook.create(
            url=values["url"],
            collection=values["collection"],
            events=json.dumps(values["events"]),
            description=values.get("description", ""),
            secret=secret,
            active=values.get("active", True),
            cursor=newest_event_id(),
            created_at=now,
            updated_at=now,
            created_by=str(getattr(actor, "email", "") or "")[:320],
        )
        record_event(
            "webhook.create", actor=actor, target=f"webhook:{webhook.id}", address=address, details=_audited(webhook)
        )
    return webhook, secret


def update_webhook(
    webhook_id: int,
    data: dict[str, Any],
    actor: ActorLike | str,
    *,
    allowed_private: str = "",
    address: str | None = None,
) -> Webhook:
    """Change a webhook; ``"active": true`` also lifts a self-pause and its failure count.
    Raises :class:`NotFound`, :class:`ValidationFailed`."""
    webhook = get_webhook(webhook_id)
    values = _check(data, webhook, allowed_private)
    with write_transaction():
        webhook = get_webhook(webhook_id)
        for name, value in values.items():
            setattr(webhook, name, json.dumps(value) if name == "events" else value)
        if values.get("active") is True:
            webhook.paused_reason = None
            webhook.paused_at = None
            webhook.consecutive_failures = 0
        webhook.updated_at = utcnow()
        webhook.save()
        record_event(
            "webhook.update",
            actor=actor,
            target=f"webhook:{webhook.id}",
            address=address,
            details={"changed": sorted(values)},
        )
    return webhook


def delete_webhook(webhook_id: int, actor: ActorLike | str, *, address: str | None = None) -> None:
    """Delete a webhook and its delivery log. Raises :class:`NotFound`."""
    with write_transaction():
        webhook = get_webhook(webhook_id)
        details = _audited(webhook)
        WebhookDelivery.delete().where(WebhookDelivery.webhook == webhook.id).execute()
        webhook.delete_instance()
        record_event("webhook.delete", actor=actor, target=f"webhook:{webhook_id}", address=address, details=details)


def rotate_secret(webhook_id: int, actor: ActorLike | str, *, address: str | None = None) -> tuple[Webhook, str]:
    """Give the webhook a new secret (returned once); every try from now on is signed with it."""
    secret = new_secret()
    with write_transaction():
        webhook = get_webhook(webhook_id)
        webhook.secret = secret
        webhook.updated_at = utcnow()
        webhook.save()
        record_event("webhook.rotate_secret", actor=actor, target=f"webhook:{webhook.id}", address=address)
    return webhook, secret


def webhook_events(webhook: Webhook) -> list[str]:
    events: list[str] = json.loads(webhook.events)
    return events


def _audited(webhook: Webhook) -> dict[str, Any]:
    return {"url": webhook.url, "collection": webhook.collection, "events": webhook_events(webhook)}


def serialize_webhook(webhook: Webhook, secret: str | None = None) -> dict[str, Any]:
    """A webhook as the API answers it; ``secret`` only in the answer that made it."""
    body: dict[str, Any] = {
        "id": webhook.id,
        "url": webhook.url,
        "collection": webhook.collection,
        "events": webhook_events(webhook),
        "active": webhook.active,
        "description": webhook.description,
        "paused": webhook.paused_reason is not None,
        "paused_reason": webhook.paused_reason,
        "paused_at": iso(webhook.paused_at),
        "consecutive_failures": webhook.consecutive_failures,
        "created_at": iso(webhook.created_at),
        "updated_at": iso(webhook.updated_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body
