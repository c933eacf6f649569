"""Webhooks in the API and on the admin pages: admins only (a persona table), the secret shown once,
the listing shape of the delivery log, replays, bad input refused in the error shape, the status section."""

from __future__ import annotations

import pytest

from appliance.accounts.users import get_user
from appliance.records.write import create_record
from appliance.storage.db import database
from appliance.storage.models import AuditEvent, Webhook, WebhookDelivery
from appliance.webhooks.dispatcher import WebhookDispatcher
from tests.appliance.data_helpers import make_orders
from tests.conftest import ADMIN, DISABLED, EDITOR, EVERYONE, OUTSIDER, VIEWER, csrf_token_in, post_form
from tests.webhook_receiver import receiver_fixture  # noqa: F401 - a fixture


@pytest.fixture
def orders(personas):
    with database.connection_context():
        make_orders(get_user(personas.admin.id))


@pytest.fixture
def made(client, headers, orders, receiver):
    """A webhook made through the API, pointing at the real receiver."""
    answer = client.post("/api/webhooks", json={"url": receiver.url, "collection": "orders"}, headers=headers[ADMIN])
    assert answer.status_code == 201, answer.get_json()
    receiver.secret = answer.get_json()["secret"]
    return answer.get_json()


# method, path (1 = the webhook made by ``made``), body; then the status for each persona.
STAFF_REFUSED = {ADMIN: None, EDITOR: 403, VIEWER: 403, DISABLED: 401, OUTSIDER: 401}
ROUTES = [
    ("GET", "/api/webhooks", None, 200),
    ("POST", "/api/webhooks", {"url": "http://127.0.0.1:9/x", "collection": "orders"}, 201),
    ("GET", "/api/webhooks/1", None, 200),
    ("PATCH", "/api/webhooks/1", {"description": "n8n"}, 200),
    ("POST", "/api/webhooks/1/rotate-secret", None, 200),
    ("GET", "/api/webhooks/1/deliveries", None, 200),
    ("POST", "/api/webhooks/1/deliveries/1/retry", None, 202),
    ("POST", "/api/webhooks/1/deliveries/retry-failed", None, 202),
    ("DELETE", "/api/webhooks/1", None, 204),
]


@pytest.mark.parametrize("who", EVERYONE)
def test_only_admins_may_use_the_webhook_api(client, headers, made, who):
    create_record("orders", {"title": "Chairs"}, get_user(1))
    dispatcher = WebhookDispatcher()
    dispatcher.step(wait=True)  # makes the delivery the retry rows replay
    dispatcher.stop()
    for method, path, body, admin_status in ROUTES:
        status = admin_status if who == ADMIN else STAFF_REFUSED[who]
        before = Webhook.select().count()
        answer = client.open(path, method=method, json=body, headers=headers[who])
        assert answer.status_code == status, (method, path, answer.get_data(as_text=True))
        if status >= 400:
            assert set(answer.get_json()["error"]) >= {"code", "message"}
            assert Webhook.select().count() == before and Webhook.get_by_id(1).description == ""


def test_the_secret_is_in_the_answer_to_the_post_only_and_rotation_gives_a_new_one(client, headers, made):
    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["record.created", "record.updated", "record.deleted"] and made["active"] is True
    shown = client.get(f"/api/webhooks/{made['id']}", headers=headers[ADMIN]).get_json()
    assert "secret" not in shown
    listed = client.get("/api/webhooks", headers=headers[ADMIN]).get_json()
    assert listed["total_items"] == 1 and "secret" not in listed["items"][0]
    rotated = client.post(f"/api/webhooks/{made['id']}/rotate-secret", headers=headers[ADMIN]).get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]
    actions = [e.action for e in AuditEvent.select().where(AuditEvent.action.startswith("webhook."))]
    assert actions == ["webhook.create", "webhook.rotate_secret"]


def test_the_delivery_log_is_a_listing_and_a_replay_sends_again_with_the_same_id(client, headers, made, receiver):
    receiver.fail_next(1)
    create_record("orders", {"title": "Chairs"}, get_user(1))
    dispatcher = WebhookDispatcher()
    try:
        dispatcher.step(wait=True)
        log = client.get(f"/api/webhooks/{made['id']}/deliveries", headers=headers[ADMIN]).get_json()
        assert set(log) == {"items", "page", "page_size", "total_items", "total_pages"}
        [item] = log["items"]
        assert {
            "id",
            "event",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
        } <= set(item)
        assert (item["status"], item["attempts"], item["last_status_code"]) == ("pending", 1, 500)
        assert item["event"].startswith("evt_") and item["delivered_at"] is None
        answer = client.post(f"/api/webhooks/{made['id']}/deliveries/{item['id']}/retry", headers=headers[ADMIN])
        assert answer.status_code == 202
        dispatcher.step(wait=True)
        again = client.get(f"/api/webhooks/{made['id']}/deliveries?status=delivered", headers=headers[ADMIN]).get_json()
        assert again["items"][0]["attempts"] == 2 and again["items"][0]["delivered_at"]
        assert len(set(receiver.ids())) == 1 and all(r.verified for r in receiver.received)
    finally:
        dispatcher.stop()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x", "collection": "orders"}, "url"),
        ({"url": "http://127.0.0.1/x", "collection": "missing"}, "collection"),
        ({"url": "http://127.0.0.1/x", "collection": "orders", "events": ["record.eaten"]}, "events"),
        ({"url": "http://127.0.0.1/x", "collection": "orders", "active": "maybe"}, "active"),
        ({"url": "http://127.0.0.1/x", "collection": "orders", "secret": "mine"}, "secret"),
    ],
)
def test_bad_webhooks_are_422_naming_the_field_and_make_nothing(client, headers, orders, body, field):
    answer = client.post("/api/webhooks", json=body, headers=headers[ADMIN])
    assert answer.status_code == 422
    assert field in answer.get_json()["error"]["fields"]
    assert Webhook.select().count() == 0


def test_a_body_that_is_not_a_json_object_and_unknown_ids_are_refused(client, headers, made):
    assert client.post("/api/webhooks", data="x", headers=headers[ADMIN]).status_code == 400
    assert client.post("/api/webhooks", json=[1], headers=headers[ADMIN]).status_code == 400
    assert client.get("/api/webhooks/99", headers=headers[ADMIN]).status_code == 404
    assert client.post(f"/api/webhooks/{made['id']}/deliveries/99/retry", headers=headers[ADMIN]).status_code == 404
    bad = client.get(f"/api/webhooks/{made['id']}/deliveries?status=lost", headers=headers[ADMIN])
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_request"


def test_a_private_address_outside_the_allowed_networks_is_refused(home, client, headers, orders):
    from appliance.config.settings import write_settings

    write_settings(home / "appliance.toml", {"webhook_allowed_private_networks": "192.168.10.0/24"})
    answer = client.post(
        "/api/webhooks", json={"url": "http://127.0.0.1:8/x", "collection": "orders"}, headers=headers[ADMIN]
    )
    assert answer.status_code == 422 and "outside the networks" in answer.get_json()["error"]["fields"]["url"]
    ok = client.post(
        "/api/webhooks", json={"url": "http://192.168.10.7/x", "collection": "orders"}, headers=headers[ADMIN]
    )
    assert ok.status_code == 201


def test_the_status_api_shows_paused_webhooks_and_failed_deliveries(client, headers, made):
    Webhook.update(active=False, paused_reason="Paused by itself after 10 failed deliveries in a row.").execute()
    create_record("orders", {"title": "Chairs"}, get_user(1))
    WebhookDelivery.create(
        webhook=made["id"],
        event=1,
        message_id="evt_x_1",
        type="record.created",
        body="{}",
        status="failed",
        created_at=Webhook.get_by_id(made["id"]).created_at,
    )
    status = client.get("/api/system/status", headers=headers[ADMIN]).get_json()["webhooks"]
    assert status["failed_deliveries"] == 1 and status["total"] == 1 and status["active"] == 0
    assert status["paused"][0]["id"] == made["id"] and "10 failed" in status["paused"][0]["reason"]


PAGES = [
    ("/admin/webhooks", 200, 403, 403, 302),
    ("/admin/webhooks/1", 200, 403, 403, 302),
    ("/admin/webhooks/99", 404, 403, 403, 302),
]


@pytest.mark.parametrize(("path", "admin", "editor", "viewer", "anonymous"), PAGES, ids=[p[0] for p in PAGES])
def test_the_admin_pages_are_for_admins(app, made, signed_in, path, admin, editor, viewer, anonymous):
    for who, expected in (("admin", admin), ("editor", editor), ("viewer", viewer)):
        assert signed_in(who).get(path).status_code == expected, who
    assert app.test_client().get(path).status_code == anonymous


def test_an_admin_connects_a_webhook_from_the_page_and_sees_its_secret_once(signed_in, orders, receiver):
    admin = signed_in("admin")
    page = admin.get("/admin/webhooks").get_data(as_text=True)
    assert "Webhooks may call any address" in page and "Webhooks</a>" in page
    refused = post_form(
        admin, "/admin/webhooks", {"url": "gopher://x", "collection": "orders", "event_record.created": "yes"}
    )
    assert refused.status_code == 422 and "Only http:// and https://" in refused.get_data(as_text=True)
    answer = post_form(
        admin,
        "/admin/webhooks",
        {"url": receiver.url, "collection": "orders", "event_record.created": "yes", "active": "yes"},
    )
    assert answer.status_code == 302
    webhook = Webhook.get()
    assert webhook.events == '["record.created"]'
    first = admin.get(answer.headers["Location"]).get_data(as_text=True)
    assert webhook.secret in first
    assert webhook.secret not in admin.get(answer.headers["Location"]).get_data(as_text=True)
    token = csrf_token_in(first)
    assert (
        admin.post(f"/admin/webhooks/{webhook.id}/deliveries/retry-failed", data={"csrf_token": token}).status_code
        == 302
    )
    assert admin.post(f"/admin/webhooks/{webhook.id}/delete", data={"csrf_token": token}).status_code == 302
    assert Webhook.select().count() == 0
