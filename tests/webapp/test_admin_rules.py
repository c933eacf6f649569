"""/admin/rules: admins make, change, try and delete rules with a form in plain words; nobody else gets in."""

from __future__ import annotations

import pytest

from appliance.collections.definitions import create_collection
from appliance.storage.db import database
from appliance.storage.models import Rule, RuleRun, User
from tests.appliance.data_helpers import ORDER_FIELDS
from tests.conftest import post_form

FORM = {
    "name": "Settle paid orders",
    "collection": "orders",
    "events": ["record.updated"],
    "changed_fields": "paid",
    "filter": "paid=true\nstatus=open",
    "set_fields": "status = paid\ndiscount := 0.1",
    "active": "yes",
}


@pytest.fixture
def orders(personas):
    with database.connection_context():
        admin = User.get(User.email == personas.admin.email)
        create_collection({"name": "orders", "label": "Orders", "fields": ORDER_FIELDS, "permissions": {}}, admin)


def test_staff_and_strangers_cannot_open_the_rules_pages(app, signed_in, orders):
    for who in ("editor", "viewer"):
        client = signed_in(who)
        assert client.get("/admin/rules").status_code == 403
        assert client.get("/admin/rules/new").status_code == 403
    assert app.test_client().get("/admin/rules").status_code == 302  # to the sign-in page
    assert "/admin/rules" not in signed_in("editor").get("/").get_data(as_text=True)


def test_an_admin_makes_a_rule_with_the_form_and_sees_it_in_words(signed_in, orders):
    client = signed_in("admin")
    assert 'href="/admin/rules"' in client.get("/").get_data(as_text=True)
    answer = post_form(client, "/admin/rules/new", FORM, token_from="/admin/rules/new")
    assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
    with database.connection_context():
        rule = Rule.get(Rule.name == "Settle paid orders")
    page = client.get(f"/admin/rules/{rule.id}").get_data(as_text=True)
    assert "When a record of Orders is changed (for a change: only when paid changes) where paid is true" in page
    listing = client.get("/admin/rules").get_data(as_text=True)
    assert "Settle paid orders" in listing and "3 rule changes in a row" in listing


def test_a_bad_form_shows_the_reason_beside_the_field_and_saves_nothing(signed_in, orders):
    client = signed_in("admin")
    answer = post_form(client, "/admin/rules/new", {**FORM, "filter": "nope=1"}, token_from="/admin/rules/new")
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "Unknown filter" in page and "Settle paid orders" in page  # what was typed stays
    answer = post_form(client, "/admin/rules/new", {**FORM, "filter": "no equals sign"}, token_from="/admin/rules/new")
    assert answer.status_code == 422 and "Line 1" in answer.get_data(as_text=True)
    with database.connection_context():
        assert Rule.select().count() == 0


def test_a_test_run_from_the_page_shows_the_fields_and_changes_nothing(signed_in, orders, client, personas):
    admin = signed_in("admin")
    post_form(admin, "/admin/rules/new", FORM, token_from="/admin/rules/new")
    with database.connection_context():
        rule = Rule.get()
    token_page = f"/admin/rules/{rule.id}"
    from tests.conftest import csrf_token_in

    made = admin.post(
        "/api/collections/orders/records",
        json={"title": "Desk", "paid": True},
        headers={"X-CSRFToken": csrf_token_in(admin.get(token_page).get_data(as_text=True))},
    ).get_json()
    answer = post_form(admin, f"/admin/rules/{rule.id}/test", {"record_id": str(made["id"])}, token_from=token_page)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<strong>matches</strong>" in page
    assert "<code>status</code> to <code>paid</code>" in page and "<code>discount</code> to <code>0.1</code>" in page
    record = admin.get(f"/api/collections/orders/records/{made['id']}").get_json()
    assert record["status"] == "open"
    with database.connection_context():
        assert RuleRun.select().count() == 0
    missing = post_form(admin, f"/admin/rules/{rule.id}/test", {"record_id": "999"}, token_from=token_page)
    assert missing.status_code == 404 and "No record 999" in missing.get_data(as_text=True)


def test_an_admin_changes_and_deletes_a_rule(signed_in, orders):
    client = signed_in("admin")
    post_form(client, "/admin/rules/new", FORM, token_from="/admin/rules/new")
    with database.connection_context():
        rule = Rule.get()
    path = f"/admin/rules/{rule.id}"
    answer = post_form(client, path, {**FORM, "active": "", "name": "Renamed"}, token_from=path)
    assert answer.status_code == 302
    with database.connection_context():
        changed = Rule.get()
        assert changed.name == "Renamed" and changed.active is False
    assert post_form(client, f"{path}/delete", {}, token_from=path).status_code == 302
    with database.connection_context():
        assert Rule.select().count() == 0
