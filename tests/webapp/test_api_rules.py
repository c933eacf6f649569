"""The rules API: admins only, the rule's shape, clear 4xx answers that change nothing, runs and test runs."""

from __future__ import annotations

import pytest

from appliance.collections.definitions import create_collection
from appliance.storage.db import database
from appliance.storage.models import Rule, User
from tests.appliance.data_helpers import ORDER_FIELDS
from tests.conftest import by_role

RULE = {
    "name": "Tell the warehouse",
    "collection": "orders",
    "events": ["record.created"],
    "filter": {"status": "open", "due__lte": "tomorrow"},
    "actions": [{"type": "email", "to": ["w@example.com"], "subject": "New {title}", "body": "{quantity}"}],
}


@pytest.fixture
def orders(personas):
    with database.connection_context():
        admin = User.get(User.email == personas.admin.email)
        create_collection({"name": "orders", "label": "Orders", "fields": ORDER_FIELDS, "permissions": {}}, admin)


@pytest.fixture
def rule_id(client, headers, orders):
    answer = client.post("/api/rules", json=RULE, headers=headers["admin"])
    assert answer.status_code == 201, answer.text
    return answer.get_json()["id"]


def test_only_admins_reach_the_rules_api(client, headers, rule_id):
    table = [
        ("GET", "/api/rules", None, by_role(200, 403, 401)),
        ("GET", f"/api/rules/{rule_id}", None, by_role(200, 403, 401)),
        ("GET", f"/api/rules/{rule_id}/runs", None, by_role(200, 403, 401)),
        ("POST", "/api/rules", {**RULE, "name": "other"}, by_role(201, 403, 401)),
        ("PATCH", f"/api/rules/{rule_id}", {"active": False}, by_role(200, 403, 401)),
        ("POST", f"/api/rules/{rule_id}/test", {"record_id": 999}, by_role(404, 403, 401)),
        ("GET", "/api/rules/999", None, by_role(404, 403, 401)),
        ("DELETE", f"/api/rules/{rule_id}", None, by_role(204, 403, 401)),
    ]
    wrong = []
    for method, path, body, statuses in table:
        for who, status in statuses.items():
            if who == "admin":
                continue
            answer = client.open(path, method=method, json=body, headers=headers[who])
            if answer.status_code != status:
                wrong.append(f"{who} {method} {path}: {answer.status_code}, expected {status}")
        answer = client.open(path, method=method, json=body, headers=headers["admin"])
        if answer.status_code != statuses["admin"]:
            wrong.append(f"admin {method} {path}: {answer.status_code}: {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_a_rule_answers_in_its_shape_with_plain_words(client, headers, rule_id):
    item = client.get(f"/api/rules/{rule_id}", headers=headers["admin"]).get_json()
    assert {k: item[k] for k in RULE if k != "actions"} == {k: v for k, v in RULE.items() if k != "actions"}
    assert item["actions"] == [{**RULE["actions"][0], "to_field": None, "to_role": None}]
    assert item["active"] is True and item["daily_at"] is None and item["last_run"] is None
    assert item["description"].startswith(
        "When a record of Orders is created where due is at most tomorrow and status is open: email"
    )
    listing = client.get("/api/rules", headers=headers["admin"]).get_json()
    assert listing["total_items"] == 1 and listing["items"][0]["id"] == rule_id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"filter": {"nope": "1"}}, "filter"),
        ({"filter": {"quantity__contains": "1"}}, "filter"),
        ({"filter": {"due": "someday"}}, "filter"),
        ({"actions": [{"type": "email", "to": ["x@example.com"], "subject": "{nope}"}]}, "actions"),
        ({"actions": [{"type": "email", "to": ["x@example.com"], "subject": "{title.__class__}"}]}, "actions"),
        ({"actions": [{"type": "webhook", "url": "ftp://example.com/x"}]}, "actions"),
        ({"actions": [{"type": "set_fields", "values": {"total": 3}}]}, "actions"),
        ({"actions": [{"type": "set_fields", "formulas": {"quantity": "().__class__"}}]}, "actions"),
        ({"actions": []}, "actions"),
        ({"events": ["record.created"], "daily_at": "07:00"}, "events"),
        ({"events": [], "daily_at": "25:00"}, "daily_at"),
        ({"changed_fields": ["quantity"]}, "changed_fields"),
        ({"collection": "nope"}, "collection"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_part_and_changes_nothing(client, headers, rule_id, change, field):
    before = client.get(f"/api/rules/{rule_id}", headers=headers["admin"]).get_json()
    answer = client.patch(f"/api/rules/{rule_id}", json=change, headers=headers["admin"])
    assert answer.status_code == 422, answer.text
    assert answer.get_json()["error"]["code"] == "validation_failed" and field in answer.get_json()["error"]["fields"]
    assert client.get(f"/api/rules/{rule_id}", headers=headers["admin"]).get_json() == before
    created = client.post("/api/rules", json={**RULE, "name": "new", **change}, headers=headers["admin"])
    assert created.status_code == 422
    with database.connection_context():
        assert Rule.select().count() == 1


def test_a_taken_name_and_a_malformed_body_are_clear_errors(client, headers, rule_id):
    taken = client.post("/api/rules", json=RULE, headers=headers["admin"])
    assert taken.status_code == 409 and taken.get_json()["error"]["fields"] == {"name": "Another rule has this name."}
    bad = client.post("/api/rules", data="nope", headers=headers["admin"])
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_request"


def test_a_webhook_action_gets_a_secret_that_a_change_keeps(client, headers, rule_id):
    hook = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}
    item = client.patch(f"/api/rules/{rule_id}", json={"actions": [hook]}, headers=headers["admin"]).get_json()
    secret = item["actions"][0]["secret"]
    assert secret.startswith("whsec_")
    again = client.patch(f"/api/rules/{rule_id}", json={"actions": [hook]}, headers=headers["admin"]).get_json()
    assert again["actions"][0]["secret"] == secret


def test_a_test_run_through_the_api_answers_the_rendered_mail(client, headers, rule_id):
    made = client.post(
        "/api/collections/orders/records", json={"title": "Chairs", "quantity": 3}, headers=headers["admin"]
    ).get_json()
    answer = client.post(f"/api/rules/{rule_id}/test", json={"record_id": made["id"]}, headers=headers["admin"])
    assert answer.status_code == 200
    result = answer.get_json()
    assert result["matches"] is False  # no due date: "due__lte=tomorrow" is not met, as in the listing
    assert result["actions"][0]["subject"] == "New Chairs" and result["actions"][0]["body"] == "3"
    assert client.get(f"/api/rules/{rule_id}/runs", headers=headers["admin"]).get_json()["total_items"] == 0
