"""A real server killed with SIGKILL right after acknowledging 200 creates loses no event: after the
restart, the receiver gets every one of them (at least once, duplicates told apart by webhook-id)."""

from __future__ import annotations

import requests

from appliance.accounts.tokens import create_token
from appliance.config.home import open_instance
from appliance.storage.db import database, open_database
from appliance.webhooks.definitions import create_webhook
from tests.appliance.data_helpers import make_orders, make_users
from tests.conftest import start_server
from tests.waiting import eventually
from tests.webhook_receiver import receiver_fixture  # noqa: F401 - a fixture

CREATES = 200


def test_a_server_killed_right_after_200_acknowledged_creates_delivers_every_event_after_restart(home, receiver):
    db = open_database(open_instance(home))
    with db.connection_context():
        admin = make_users()["admin"]
        make_orders(admin)
        _webhook, receiver.secret = create_webhook({"url": receiver.url, "collection": "orders"}, admin)
        _token, secret = create_token(admin.id, "crash test", scope="write", actor="test")
    database.initialize(None)
    receiver.delay = 0.2  # slow enough that deliveries are still going when the server dies
    server = start_server(home, workers=2)
    created = []
    try:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {secret}"
            for number in range(CREATES):
                answer = session.post(
                    server.url + "api/collections/orders/records", json={"title": f"Order {number}"}, timeout=10
                )
                assert answer.status_code == 201, answer.text
                created.append(answer.json()["id"])
    finally:
        server.process.kill()  # SIGKILL: no clean stop, no flush
        server.stop()
    delivered_before = {r.json["data"]["record"]["id"] for r in receiver.received}
    assert len(delivered_before) < CREATES  # the kill came while deliveries were still going
    receiver.delay = 0.0
    restarted = start_server(home, workers=1)
    try:

        def all_delivered():
            got = {r.json["data"]["record"]["id"] for r in receiver.received if r.json["type"] == "record.created"}
            return got if got >= set(created) else None

        eventually(
            all_delivered,
            timeout=60,
            interval=0.2,
            message=lambda: f"{len({r.json['id'] for r in receiver.received})} of {CREATES} events arrived",
        )
    finally:
        assert restarted.stop() == 0
    assert all(r.verified for r in receiver.received)
    # One webhook-id per event, however many times it was sent.
    by_id = {}
    for r in receiver.received:
        by_id.setdefault(r.headers["webhook-id"], set()).add(r.json["id"])
    assert len(by_id) == CREATES and all(len(events) == 1 for events in by_id.values())
    print(f"delivered before the kill: {len(delivered_before)} of {CREATES}")
