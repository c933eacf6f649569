"""Deliveries against a real receiver on a loopback port: signed, retried with growing delays under a moved
clock, replayed, never made from a rolled-back write, and refused for URLs a webhook may not call."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.clock import as_stored
from appliance.errors import ValidationFailed
from appliance.records.write import create_record, update_record
from appliance.storage.db import database
from appliance.storage.models import Webhook, WebhookDelivery
from appliance.webhooks.definitions import create_webhook, get_webhook, rotate_secret, update_webhook
from appliance.webhooks.deliveries import deliveries_query, retry_delivery, retry_failed
from appliance.webhooks.dispatcher import WebhookDispatcher
from tests.appliance.data_helpers import make_orders, make_users
from tests.fakes import FakeClock
from tests.webhook_receiver import receiver_fixture, verify_standard_webhook  # noqa: F401 (a fixture)


@pytest.fixture
def admin(instance):
    people = make_users()
    make_orders(people["admin"])
    return people["admin"]


@pytest.fixture
def clock():
    return FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
def dispatcher(clock):
    made = WebhookDispatcher(now=clock.now, workers=2)
    yield made
    made.stop()


def _hook(admin, receiver, **extra):
    webhook, secret = create_webhook({"url": receiver.url, "collection": "orders", **extra}, admin)
    receiver.secret = secret
    return webhook


def test_a_delivery_is_signed_as_standard_webhooks_specify_with_the_event_as_body(admin, receiver, dispatcher, clock):
    webhook = _hook(admin, receiver)
    assert receiver.secret.startswith("whsec_")
    made = create_record("orders", {"title": "Chairs", "quantity": 2, "unit_price": 5}, admin)
    update_record("orders", made["id"], {"quantity": 3}, admin)
    result = dispatcher.step(wait=True)
    assert result.made == 2 and len(result.started) == 2
    assert [r.verified for r in receiver.received] == [True, True]
    bodies = sorted((r.json for r in receiver.received), key=lambda b: b["type"])
    created, updated = bodies
    assert created["type"] == "record.created" and created["id"].startswith("evt_")
    assert created["data"]["collection"] == "orders" and created["data"]["record"]["total"] == 10
    assert "previous" not in created["data"]
    assert updated["data"]["previous"]["quantity"] == 2 and updated["data"]["record"]["quantity"] == 3
    first = receiver.received[0]
    assert first.headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    assert first.headers["content-type"] == "application/json"
    # A wrong secret does not verify: the check of the receiver can fail.
    receiver.secret = "whsec_" + "QUJD" * 8
    assert not verify_standard_webhook(receiver.secret, first.headers, first.body)
    rows = list(deliveries_query(webhook.id))
    assert {d.status for d in rows} == {"delivered"} and all(d.last_status_code == 200 for d in rows)
    assert all(d.last_response == '{"ok": true}' and d.last_duration_ms is not None for d in rows)
    assert dispatcher.step(wait=True).started == []  # nothing sent twice


def test_a_receiver_failing_twice_gets_the_delivery_on_the_third_try_with_the_same_id(
    admin, receiver, dispatcher, clock
):
    _hook(admin, receiver)
    receiver.fail_next(2, status=503)
    create_record("orders", {"title": "Chairs"}, admin)
    dispatcher.step(wait=True)
    delivery = WebhookDelivery.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 503)
    assert delivery.last_response == "receiver failed on purpose"
    assert delivery.next_attempt_at == as_stored(clock.now()) + dt.timedelta(minutes=1)
    clock.advance(seconds=59)
    assert dispatcher.step(wait=True).started == []  # not due yet
    clock.advance(seconds=1)
    dispatcher.step(wait=True)
    delivery = WebhookDelivery.get()
    assert delivery.attempts == 2 and delivery.next_attempt_at == as_stored(clock.now()) + dt.timedelta(minutes=5)
    clock.advance(minutes=5)
    dispatcher.step(wait=True)
    delivery = WebhookDelivery.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert [r.answered for r in receiver.received] == [503, 503, 200]
    assert len(set(receiver.ids())) == 1 and all(r.verified for r in receiver.received)
    assert len({r.body for r in receiver.received}) == 1
    assert receiver.ids()[0] == delivery.message_id


def test_after_the_last_try_a_delivery_fails_and_replay_sends_one_or_all_failed_again(
    admin, receiver, dispatcher, clock
):
    webhook = _hook(admin, receiver)
    receiver.always = 500
    for title in ("A", "B"):
        create_record("orders", {"title": title}, admin)
    dispatcher.step(wait=True)
    for minutes in (1, 5, 30, 120, 360):
        clock.advance(minutes=minutes)
        dispatcher.step(wait=True)
    assert [d.status for d in deliveries_query(webhook.id)] == ["failed", "failed"]
    assert len(receiver.received) == 12  # 2 deliveries x 6 tries
    clock.advance(days=1)
    assert dispatcher.step(wait=True).started == []  # failed for good: no more tries on its own
    receiver.always = 200
    first, second = sorted(deliveries_query(webhook.id), key=lambda d: d.id)
    retry_delivery(webhook.id, first.id, admin, now=clock.now())
    dispatcher.step(wait=True)
    assert WebhookDelivery.get_by_id(first.id).status == "delivered"
    assert WebhookDelivery.get_by_id(second.id).status == "failed"
    assert receiver.ids()[-1] == first.message_id
    assert retry_failed(webhook.id, admin, now=clock.now()) == 1
    dispatcher.step(wait=True)
    assert WebhookDelivery.get_by_id(second.id).status == "delivered"
    assert WebhookDelivery.get_by_id(second.id).attempts == 7
    assert receiver.ids()[-1] == second.message_id and all(r.verified for r in receiver.received)


def test_a_rolled_back_write_sends_nothing(admin, receiver, dispatcher):
    _hook(admin, receiver)
    with pytest.raises(RuntimeError), database.atomic():
        create_record("orders", {"title": "Never"}, admin)
        raise RuntimeError("the transaction fails after the write")
    create_record("orders", {"title": "Kept"}, admin)
    dispatcher.step(wait=True)
    assert [r.json["data"]["record"]["title"] for r in receiver.received] == ["Kept"]


def test_only_the_chosen_collection_and_events_are_sent_and_a_new_webhook_starts_now(admin, receiver, dispatcher):
    create_record("orders", {"title": "Before the webhook"}, admin)
    _hook(admin, receiver, events=["record.updated"])
    made = create_record("orders", {"title": "Chairs"}, admin)
    update_record("orders", made["id"], {"quantity": 4}, admin)
    dispatcher.step(wait=True)
    assert [r.json["type"] for r in receiver.received] == ["record.updated"]


def test_a_rotated_secret_signs_the_next_tries(admin, receiver, dispatcher):
    webhook = _hook(admin, receiver)
    old = receiver.secret
    _, new = rotate_secret(webhook.id, admin)
    assert new != old and new.startswith("whsec_")
    receiver.secret = new
    create_record("orders", {"title": "Chairs"}, admin)
    dispatcher.step(wait=True)
    assert receiver.received[0].verified


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://127.0.0.1/hook", "Only http:// and https://"),
        ("javascript:alert(1)", "Only http:// and https://"),
        ("http:///no-host", "needs a host name"),
        ("http://user:pw@127.0.0.1/hook", "no user name or password"),
        ("http://127.0.0.1:99999/hook", "not a valid URL"),
        ("http://0.0.0.0/hook", "cannot receive webhooks"),
        ("http://no-such-host.invalid/hook", "cannot be found"),
        ("", "Enter the URL"),
    ],
)
def test_bad_urls_are_refused_and_nothing_is_made(admin, url, words):
    with pytest.raises(ValidationFailed) as caught:
        create_webhook({"url": url, "collection": "orders"}, admin)
    assert words in caught.value.fields["url"]
    assert Webhook.select().count() == 0


def test_private_addresses_are_refused_outside_the_allowed_networks_at_save_and_before_each_delivery(
    admin, receiver, clock
):
    with pytest.raises(ValidationFailed) as caught:
        create_webhook({"url": receiver.url, "collection": "orders"}, admin, allowed_private="10.0.0.0/8")
    assert "outside the networks" in caught.value.fields["url"]
    public, _ = create_webhook(
        {"url": "http://93.184.215.14/hook", "collection": "orders"}, admin, allowed_private="10.0.0.0/8"
    )
    assert public.url == "http://93.184.215.14/hook"
    update_webhook(public.id, {"active": False}, admin)
    allowed = _hook(admin, receiver)  # empty setting: any address, this machine included
    narrowed = WebhookDispatcher(now=clock.now, allowed_private=lambda: "192.168.0.0/16")
    try:
        create_record("orders", {"title": "Chairs"}, admin)
        narrowed.step(wait=True)
    finally:
        narrowed.stop()
    delivery = WebhookDelivery.get(WebhookDelivery.webhook == allowed.id)
    assert receiver.received == []
    assert delivery.status == "pending" and delivery.last_error.startswith("not sent:")
    assert "outside the networks" in delivery.last_error


def test_bad_fields_are_named_and_change_nothing(admin, receiver):
    with pytest.raises(ValidationFailed) as caught:
        create_webhook(
            {"url": receiver.url, "collection": "nope", "events": ["record.moved"], "active": "yes", "colour": 1}, admin
        )
    assert set(caught.value.fields) == {"collection", "events", "active", "colour"}
    webhook = _hook(admin, receiver)
    with pytest.raises(ValidationFailed):
        update_webhook(webhook.id, {"events": []}, admin)
    assert get_webhook(webhook.id).events == '["record.created", "record.updated", "record.deleted"]'
