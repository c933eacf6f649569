"""The outbox: every record change writes its event in the change's own transaction, and only then."""

from __future__ import annotations

import json

import pytest

from appliance.errors import Busy, Conflict
from appliance.records.csv.importing import import_csv
from appliance.records.delete import delete_record
from appliance.records.events import events_after, newest_event_id, serialize_event
from appliance.records.write import create_record, restore_version, update_record
from appliance.storage.db import database
from appliance.storage.models import OutboxEvent
from tests.appliance.data_helpers import make_orders, make_users


@pytest.fixture
def users(instance):
    people = make_users()
    make_orders(people["admin"])
    return people


def _events(after=0):
    return [serialize_event(e) for e in events_after(after, limit=1000)]


def test_create_update_delete_and_restore_each_write_one_event_with_the_record(users):
    admin = users["admin"]
    made = create_record("orders", {"title": "Chairs", "quantity": 2, "unit_price": 5}, admin)
    update_record("orders", made["id"], {"quantity": 3}, admin)
    delete_record("orders", made["id"], admin)
    restore_version("orders", made["id"], 2, admin)
    events = _events()
    assert [e["type"] for e in events] == ["record.created", "record.updated", "record.deleted", "record.created"]
    assert all(e["data"]["collection"] == "orders" and e["data"]["record"]["id"] == made["id"] for e in events)
    created, updated, deleted, restored = events
    assert created["data"]["record"]["total"] == 10 and "previous" not in created["data"]
    assert updated["data"]["record"]["quantity"] == 3 and updated["data"]["previous"]["quantity"] == 2
    assert deleted["data"]["record"]["quantity"] == 3
    assert restored["data"]["record"]["quantity"] == 3
    assert len({e["id"] for e in events}) == 4 and all(e["id"].startswith("evt_") for e in events)
    assert events_after(newest_event_id()) == []


def test_a_refused_or_rolled_back_write_leaves_no_event(users):
    admin = users["admin"]
    create_record("orders", {"title": "Chairs"}, admin)
    before = OutboxEvent.select().count()
    with pytest.raises(Conflict):
        create_record("orders", {"title": "Chairs"}, admin)  # unique title taken
    with pytest.raises(RuntimeError), database.atomic():
        create_record("orders", {"title": "Tables"}, admin)
        raise RuntimeError("the surrounding transaction fails after the write")
    assert OutboxEvent.select().count() == before


def test_an_import_writes_one_event_per_record_and_an_undone_import_none(users):
    admin = users["admin"]
    assert import_csv("orders", b"title,quantity\nA,1\nB,2\nC,3\n", admin, batch_size=2) == 3
    events = _events()
    assert [e["data"]["record"]["title"] for e in events] == ["A", "B", "C"]
    assert {e["type"] for e in events} == {"record.created"}
    cursor = newest_event_id()
    calls = iter([False, True])  # stop between the first and the second batch
    with pytest.raises(Busy):
        import_csv("orders", b"title\nD\nE\nF\n", admin, batch_size=2, should_stop=lambda: next(calls))
    assert events_after(cursor) == []


def test_events_read_on_from_a_cursor_oldest_first(users):
    admin = users["admin"]
    for title in ("A", "B", "C"):
        create_record("orders", {"title": title}, admin)
    first = events_after(0, limit=2)
    rest = events_after(first[-1].id, limit=10)
    assert [json.loads(e.data)["record"]["title"] for e in first + rest] == ["A", "B", "C"]
