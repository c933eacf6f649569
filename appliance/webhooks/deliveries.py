"""Delivery rows: made from the outbox, tried with growing delays, replayed on request.

:func:`make_deliveries` turns new outbox events into one delivery per
matching webhook, in the transaction that moves the webhook's cursor, so an
event is never turned into two deliveries for one webhook nor skipped. Each
delivery keeps the exact body it sends and a ``message_id`` (the
``webhook-id`` header) that stays the same on every try and replay, so a
receiver can drop duplicates: delivery is at least once.

A try that does not answer 2xx within the time-out is tried again after 1
minute, 5 minutes, 30 minutes, 2 hours and 6 hours; after the last try the
delivery is ``failed``. :data:`PAUSE_AFTER_FAILURES` failed deliveries in a
row pause the webhook (``active`` false, with the reason) until an admin
turns it back on.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.clock import as_stored, iso
from appliance.errors import NotFound
from appliance.records.events import newest_event_id, serialize_event
from appliance.storage.db import write_transaction
from appliance.storage.models import OutboxEvent, Webhook, WebhookDelivery
from appliance.webhooks.definitions import get_webhook, webhook_events

RETRY_DELAYS = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=6),
)
TRIES = len(RETRY_DELAYS) + 1
PAUSE_AFTER_FAILURES = 10
RESPONSE_KEPT = 500  # characters of the receiver's answer kept in the log
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)


@dataclass(frozen=True)
class Attempt:
    """How one try went: ``ok`` for a 2xx answer within the time-out."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    response: str | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What :func:`record_attempt` made of a try: the delivery's new ``status``, whether it has now
    ``failed`` for good, and whether its webhook ``paused`` itself because of it."""

    status: str
    failed: bool = False
    paused: bool = False


def message_id(event: OutboxEvent, webhook: Webhook) -> str:
    """The ``webhook-id`` of an event sent to a webhook: the event's id and the webhook's."""
    return f"{event.event_id}_{webhook.id}"


def make_deliveries(now: dt.datetime | None = None, limit: int = 500) -> int:
    """Make the deliveries of the events each active webhook has not looked at yet; returns how many.

    At most ``limit`` events per webhook per call; the rest wait for the next call.
    """
    made = 0
    newest = newest_event_id()
    # Only a webhook behind the newest event needs the write transaction (this runs every second or so).
    behind = [w.id for w in Webhook.select(Webhook.id).where(Webhook.active & (Webhook.cursor < newest))]
    for webhook_id in behind:
        with write_transaction():
            webhook = Webhook.get_or_none((Webhook.id == webhook_id) & Webhook.active)
            if webhook is None:
                continue
            top = newest_event_id()
            if top <= webhook.cursor:
                continue
            events = list(
                OutboxEvent.select()
                .where(
                    (OutboxEvent.id > webhook.cursor)
                    & (OutboxEvent.id <= top)
                    & (OutboxEvent.collection == webhook.collection)
                    & OutboxEvent.type.in_(webhook_events(webhook))
                )
                .order_by(OutboxEvent.id)
                .limit(limit)
            )
            stamp = as_stored(now)
            rows = [
                {
                    "webhook": webhook.id,
                    "event": event.id,
                    "message_id": message_id(event, webhook),
                    "type": event.type,
                    "body": json.dumps(serialize_event(event), ensure_ascii=False, separators=(",", ":")),
                    "status": PENDING,
                    "next_attempt_at": stamp,
                    "created_at": stamp,
                }
                for event in events
            ]
            for start in range(0, len(rows), 100):
                WebhookDelivery.insert_many(rows[start : start + 100]).execute()
            webhook.cursor = top if len(events) < limit else events[-1].id
            Webhook.update(cursor=webhook.cursor).where(Webhook.id == webhook.id).execute()
            made += len(rows)
    return made


def due_deliveries(now: dt.datetime | None = None, limit: int = 16, exclude: set[int] | None = None) -> list[int]:
    """Ids of pending deliveries of active webhooks whose next try is due, oldest first."""
    query = (
        WebhookDelivery.select(WebhookDelivery.id)
        .join(Webhook)
        .where(
            (WebhookDelivery.status == PENDING) & (WebhookDelivery.next_attempt_at <= as_stored(now)) & Webhook.active
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit + len(exclude or ()))
    )
    return [row.id for row in query if row.id not in (exclude or set())][:limit]


def record_attempt(delivery_id: int, attempt: Attempt, now: dt.datetime | None = None) -> Outcome | None:
    """Store how a try went and plan the next one; ``None`` when the delivery is gone (its webhook deleted)."""
    stamp = as_stored(now)
    with write_transaction():
        delivery = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id)
        if delivery is None:
            return None
        webhook = Webhook.get_by_id(delivery.webhook_id)
        delivery.attempts += 1
        delivery.round_attempts += 1
        delivery.last_attempt_at = stamp
        delivery.last_status_code = attempt.status_code
        delivery.last_error = attempt.error
        delivery.last_response = (attempt.response or "")[:RESPONSE_KEPT] or None
        delivery.last_duration_ms = attempt.duration_ms
        outcome = Outcome(PENDING)
        if attempt.ok:
            delivery.status = DELIVERED
            delivery.delivered_at = stamp
            delivery.next_attempt_at = None
            webhook.consecutive_failures = 0
            outcome = Outcome(DELIVERED)
        elif delivery.round_attempts < TRIES:
            delivery.next_attempt_at = stamp + RETRY_DELAYS[delivery.round_attempts - 1]
        else:
            delivery.status = FAILED
            delivery.next_attempt_at = None
            webhook.consecutive_failures += 1
            paused = webhook.active and webhook.consecutive_failures >= PAUSE_AFTER_FAILURES
            if paused:
                webhook.active = False
                webhook.paused_at = stamp
                webhook.paused_reason = (
                    f"Paused by itself after {webhook.consecutive_failures} failed deliveries in a row; "
                    f"the last one: {attempt.error or f'answered {attempt.status_code}'}."
                )
            outcome = Outcome(FAILED, failed=True, paused=paused)
        delivery.save()
        webhook.save(only=[Webhook.consecutive_failures, Webhook.active, Webhook.paused_at, Webhook.paused_reason])
    return outcome


def retry_delivery(
    webhook_id: int,
    delivery_id: int,
    actor: ActorLike | str,
    *,
    now: dt.datetime | None = None,
    address: str | None = None,
) -> WebhookDelivery:
    """Send a delivery again now, with the same ``webhook-id`` and body, and a fresh series of tries.
    Raises :class:`NotFound`."""
    with write_transaction():
        get_webhook(webhook_id)
        delivery = WebhookDelivery.get_or_none(
            (WebhookDelivery.id == delivery_id) & (WebhookDelivery.webhook == webhook_id)
        )
        if delivery is None:
            raise NotFound(f"Webhook {webhook_id} has no delivery {delivery_id}.")
        delivery.status = PENDING
        delivery.round_attempts = 0
        delivery.next_attempt_at = as_stored(now)
        delivery.save()
        record_event(
            "webhook.retry",
            actor=actor,
            target=f"webhook:{webhook_id}",
            address=address,
            details={"delivery": delivery_id},
        )
    return delivery


def retry_failed(
    webhook_id: int, actor: ActorLike | str, *, now: dt.datetime | None = None, address: str | None = None
) -> int:
    """Send every failed delivery of a webhook again now; returns how many. Raises :class:`NotFound`."""
    with write_transaction():
        get_webhook(webhook_id)
        count: int = (
            WebhookDelivery.update(status=PENDING, round_attempts=0, next_attempt_at=as_stored(now))
            .where((WebhookDelivery.webhook == webhook_id) & (WebhookDelivery.status == FAILED))
            .execute()
        )
        record_event(
            "webhook.retry_failed",
            actor=actor,
            target=f"webhook:{webhook_id}",
            address=address,
            details={"deliveries": count},
        )
    return count


def deliveries_query(webhook_id: int, status: str | None = None) -> Any:
    """The deliveries of a webhook, newest first (optionally of one ``status``). Raises :class:`NotFound`."""
    get_webhook(webhook_id)
    query = WebhookDelivery.select().where(WebhookDelivery.webhook == webhook_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return query.order_by(WebhookDelivery.id.desc())


def serialize_delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    """A delivery as the API lists it: ``id, event, type, status, attempts, last_status_code, last_error,
    created_at, delivered_at``, and the timing and first bytes of the last answer."""
    return {
        "id": delivery.id,
        "event": delivery.message_id.rsplit("_", 1)[0],
        "message_id": delivery.message_id,
        "type": delivery.type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "last_response": delivery.last_response,
        "last_duration_ms": delivery.last_duration_ms,
        "last_attempt_at": iso(delivery.last_attempt_at),
        "next_attempt_at": iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "delivered_at": iso(delivery.delivered_at),
    }


def webhooks_summary() -> dict[str, Any]:
    """For the status API and the console: how many webhooks, which paused themselves, failed and pending deliveries."""
    paused = list(Webhook.select().where(Webhook.paused_reason.is_null(False)).order_by(Webhook.id))
    failed = WebhookDelivery.select().where(WebhookDelivery.status == FAILED).count()
    pending = WebhookDelivery.select().where(WebhookDelivery.status == PENDING).count()
    return {
        "total": Webhook.select().count(),
        "active": Webhook.select().where(Webhook.active).count(),
        "paused": [
            {"id": w.id, "url": w.url, "paused_at": iso(w.paused_at), "reason": w.paused_reason} for w in paused
        ],
        "failed_deliveries": failed,
        "pending_deliveries": pending,
    }
