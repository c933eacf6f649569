"""The webhook dispatcher as the server's parent runs it: a webhook failing again and again pauses itself,
and the admins get the alert by mail; the server's services include the dispatcher."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.config.settings import write_settings
from appliance.jobs.scheduler import JobScheduler, server_services
from appliance.jobs.webhook_service import webhook_dispatcher
from appliance.records.write import create_record
from appliance.storage.models import Alert, Webhook, WebhookDelivery
from appliance.webhooks.definitions import create_webhook, get_webhook, update_webhook
from appliance.webhooks.deliveries import PAUSE_AFTER_FAILURES
from appliance.webhooks.dispatcher import WebhookDispatcher
from tests.appliance.data_helpers import make_orders, make_users
from tests.fakes import FakeClock
from tests.mailbox import mailbox  # noqa: F401 - a fixture
from tests.webhook_receiver import receiver_fixture  # noqa: F401 - a fixture


@pytest.fixture
def admin(instance):
    people = make_users()
    make_orders(people["admin"])
    return people["admin"]


def test_the_server_runs_the_webhook_dispatcher_beside_the_scheduler(instance):
    services = server_services(instance)
    assert isinstance(services[0], JobScheduler)
    [dispatcher] = [s for s in services if isinstance(s, WebhookDispatcher)]
    dispatcher.stop()


def test_repeated_failed_deliveries_pause_the_webhook_and_mail_the_admins(home, instance, admin, receiver, mailbox):  # noqa: F811
    write_settings(home / "appliance.toml", mailbox.settings())
    clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    dispatcher = webhook_dispatcher(instance, now=clock.now, workers=4)
    webhook, receiver.secret = create_webhook({"url": receiver.url, "collection": "orders"}, admin)
    receiver.always = 500
    try:
        for number in range(PAUSE_AFTER_FAILURES + 1):
            create_record("orders", {"title": f"Order {number}"}, admin)
        dispatcher.step(wait=True)
        for minutes in (1, 5, 30, 120, 360):
            clock.advance(minutes=minutes)
            dispatcher.step(wait=True)
        paused = get_webhook(webhook.id)
        assert not paused.active and "10 failed deliveries in a row" in paused.paused_reason
        # One delivery was still going when the tenth failed: it is not tried while the webhook is paused.
        statuses = [d.status for d in WebhookDelivery.select()]
        assert statuses.count("failed") >= PAUSE_AFTER_FAILURES
        tries = len(receiver.received)
        clock.advance(hours=12)
        assert dispatcher.step(wait=True).started == []
        assert len(receiver.received) == tries
        kinds = sorted(a.kind for a in Alert.select())
        assert kinds == ["webhook_failed", "webhook_paused"]  # the failures once a day, the pause once
        messages = mailbox.wait_for(2)
        subjects = sorted(m["Subject"] for m in messages)
        assert subjects == [
            f"[Office Appliance] Webhook {webhook.id} paused itself",
            f"[Office Appliance] Webhook {webhook.id}: a delivery failed",
        ]
        assert all(m["To"] == "admin@example.com" for m in messages)
        paused_mail = next(m for m in messages if "paused" in m["Subject"])
        assert receiver.url in paused_mail.get_payload(decode=True).decode()
        # Turning it back on sends what waited, and a working receiver resets the count.
        receiver.always = 200
        update_webhook(webhook.id, {"active": True}, admin)
        dispatcher.step(wait=True)
        webhook = Webhook.get_by_id(webhook.id)
        assert webhook.active and webhook.paused_reason is None and webhook.consecutive_failures == 0
        assert WebhookDelivery.select().where(WebhookDelivery.status == "pending").count() == 0
    finally:
        dispatcher.stop()
