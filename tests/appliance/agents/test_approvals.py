"""Writes held for approval: nothing changes until an admin approves, then the write is applied once."""

from __future__ import annotations

import json
import threading

import pytest

from appliance.accounts.tokens import create_token
from appliance.actors import Actor
from appliance.agents.approvals import decide_pending, get_pending, hold_write, list_pending
from appliance.audit import list_events
from appliance.errors import BadRequest, Conflict, NotFound, PermissionDenied, TooLarge
from appliance.records.write import create_record
from appliance.storage.db import database
from appliance.storage.models import RecordVersion, User
from tests.appliance.data_helpers import make_orders, make_users


@pytest.fixture
def people(instance):
    users = make_users()
    make_orders(users["admin"])
    return users


@pytest.fixture
def token(people):
    made, _secret = create_token(people["editor"].id, "agent", scope="write", actor="test")
    return made


def count_orders() -> int:
    return int(database.execute_sql("SELECT COUNT(*) FROM c_orders").fetchone()[0])


def hold_create(token, title: str = "Chairs") -> int:
    held = hold_write(
        token.id, token.user.id, "create_record", {"collection": "orders", "values": {"title": title}}, "OpenClaw"
    )
    return int(held["pending_id"])


def test_a_held_write_changes_nothing_until_an_admin_approves_it(people, token):
    held = hold_write(
        token.id,
        people["editor"].id,
        "create_record",
        {"collection": "orders", "values": {"title": "Chairs"}},
        "OpenClaw",
    )
    assert held["status"] == "pending" and "get_pending" in held["message"]
    assert count_orders() == 0
    assert get_pending(held["pending_id"], token.id) == {
        "id": held["pending_id"],
        "tool": "create_record",
        "arguments": {"collection": "orders", "values": {"title": "Chairs"}},
        "status": "pending",
    }

    decided = decide_pending(held["pending_id"], True, people["admin"], "10.0.0.9")

    assert decided["status"] == "applied" and decided["decided_by"] == "admin@example.com"
    assert count_orders() == 1
    outcome = get_pending(held["pending_id"], token.id)
    assert outcome["status"] == "applied" and outcome["result"]["record"]["title"] == "Chairs"
    # Written as the token's user, with the record's history and audit as any write.
    record = outcome["result"]["record"]
    assert record["created_by"] == people["editor"].id
    [version] = RecordVersion.select().where(RecordVersion.record_id == record["id"])
    assert version.actor == "editor@example.com"
    through = {"via": "mcp", "token": token.id, "pending": held["pending_id"], "client": "OpenClaw"}
    assert json.loads(version.details) == {**through, "approved_by": "admin@example.com"}
    [created] = list_events(action="record.created")
    assert created.actor == "editor@example.com" and created.address == "10.0.0.9"
    assert json.loads(created.details)["via"] == "mcp" and json.loads(created.details)["token"] == token.id


def test_two_concurrent_approvals_apply_the_write_once(people, token):
    pending_id = hold_create(token)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve() -> None:
        barrier.wait(timeout=30)
        with database.connection_context():
            try:
                outcomes.append(decide_pending(pending_id, True, people["admin"])["status"])
            except Conflict:
                outcomes.append("conflict")

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["applied", "conflict"]
    assert count_orders() == 1
    assert len(list(list_events(action="mcp.write_approved"))) == 1


def test_a_decided_write_cannot_be_decided_again(people, token):
    pending_id = hold_create(token)
    decide_pending(pending_id, False, people["admin"])
    with pytest.raises(Conflict):
        decide_pending(pending_id, True, people["admin"])
    assert count_orders() == 0


def test_a_rejected_write_is_never_applied_and_the_agent_learns_it(people, token):
    pending_id = hold_create(token)
    decided = decide_pending(pending_id, False, Actor(None, "admin", "control"))
    assert decided["status"] == "rejected"
    assert get_pending(pending_id, token.id)["status"] == "rejected"
    assert count_orders() == 0
    [event] = list_events(action="mcp.write_rejected")
    assert json.loads(event.details)["token"] == token.id and event.actor == "control"


def test_a_write_the_user_may_no_longer_do_fails_with_the_reason(people, token):
    pending_id = hold_create(token)
    User.update(role="viewer").where(User.id == people["editor"].id).execute()
    decided = decide_pending(pending_id, True, people["admin"])
    assert decided["status"] == "failed"
    assert decided["error"]["code"] == "permission_denied"
    assert count_orders() == 0
    assert json.loads(next(iter(list_events(action="mcp.write_approved"))).details)["outcome"] == "failed"


def test_a_write_that_does_not_validate_fails_naming_the_fields(people, token):
    held = hold_write(
        token.id, people["editor"].id, "create_record", {"collection": "orders", "values": {"quantity": -1}}, None
    )
    decided = decide_pending(held["pending_id"], True, people["admin"])
    assert decided["status"] == "failed" and decided["error"]["code"] == "validation_failed"
    assert set(decided["error"]["fields"]) == {"title", "quantity"}
    assert count_orders() == 0


def test_updates_and_deletes_are_applied_as_the_user_with_own_records_rules(people, token):
    mine = create_record("orders", {"title": "Mine"}, people["editor"])
    theirs = create_record("orders", {"title": "Theirs"}, people["editor2"])
    update = hold_write(
        token.id,
        people["editor"].id,
        "update_record",
        {"collection": "orders", "id": mine["id"], "values": {"quantity": 3}},
        None,
    )
    foreign = hold_write(
        token.id,
        people["editor"].id,
        "delete_record",
        {"collection": "orders", "id": theirs["id"], "confirm": "x"},
        None,
    )
    delete = hold_write(
        token.id, people["editor"].id, "delete_record", {"collection": "orders", "id": mine["id"]}, None
    )
    assert decide_pending(update["pending_id"], True, people["admin"])["result"]["record"]["quantity"] == 3
    assert decide_pending(foreign["pending_id"], True, people["admin"])["status"] == "failed"
    assert decide_pending(delete["pending_id"], True, people["admin"])["result"] == {
        "deleted": True,
        "collection": "orders",
        "id": mine["id"],
    }
    assert count_orders() == 1


def test_a_write_of_a_revoked_token_fails(people, token):
    pending_id = hold_create(token)
    token.delete_instance()
    decided = decide_pending(pending_id, True, people["admin"])
    assert decided["status"] == "failed" and "revoked" in decided["error"]["message"]
    assert count_orders() == 0


def test_only_an_admin_decides(people, token):
    pending_id = hold_create(token)
    for who in (people["editor"], people["viewer"]):
        with pytest.raises(PermissionDenied):
            decide_pending(pending_id, True, who)
    assert get_pending(pending_id, token.id)["status"] == "pending"


def test_another_tokens_pending_write_is_unknown(people, token):
    other, _ = create_token(people["editor"].id, "other agent", actor="test")
    pending_id = hold_create(token)
    with pytest.raises(NotFound):
        get_pending(pending_id, other.id)
    for bad in (pending_id + 100, "abc", None, True):
        with pytest.raises(NotFound):
            get_pending(bad, token.id)


def test_hold_refuses_what_is_not_a_write_and_stores_nothing(people, token):
    for tool, arguments in (("search_records", {}), ("create_record", ["x"]), ("create_record", {"x": float("nan")})):
        with pytest.raises(BadRequest):
            hold_write(token.id, people["editor"].id, tool, arguments, None)
    with pytest.raises(TooLarge):
        hold_write(token.id, people["editor"].id, "create_record", {"values": {"notes": "x" * 300_000}}, None)
    with pytest.raises(NotFound):
        hold_write(token.id, people["viewer"].id, "create_record", {}, None)  # not this user's token
    assert list_pending() == []


def test_holding_and_deciding_are_audited_and_listed(people, token):
    first = hold_create(token, "One")
    second = hold_create(token, "Two")
    [held, _] = list_events(action="mcp.write_held")
    assert held.actor == "editor@example.com"
    assert json.loads(held.details) == {
        "via": "mcp",
        "token": token.id,
        "tool": "create_record",
        "collection": "orders",
        "client": "OpenClaw",
    }
    decide_pending(first, True, people["admin"])
    assert [p["id"] for p in list_pending()] == [second, first]
    [waiting] = list_pending("pending")
    assert waiting["id"] == second and waiting["user"] == "editor@example.com" and waiting["token_name"] == "agent"
    assert waiting["client"] == "OpenClaw"
    with pytest.raises(BadRequest):
        list_pending("nonsense")
