"""Records: validation of every field type, permissions, relations, history, audit and restore."""

from __future__ import annotations

import pytest

from appliance.audit import list_events
from appliance.collections import create_collection, get_collection
from appliance.db import database
from appliance.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from appliance.history import list_deleted_records, list_history
from appliance.record_query import list_records
from appliance.records import create_record, delete_record, get_record, restore_version, update_record
from tests.appliance.data_helpers import make_orders, make_users


@pytest.fixture
def users(instance):
    people = make_users()
    make_orders(people["admin"])
    return people


VALID = [
    ("title", "Chairs", "Chairs"),
    ("notes", "line\nbreak", "line\nbreak"),
    ("quantity", "12", 12),
    ("unit_price", 2.5, 2.5),
    ("paid", "on", True),
    ("due", "2026-02-28", "2026-02-28"),
    ("sent_at", "2026-01-05T10:00:00+01:00", "2026-01-05T09:00:00.000Z"),
    ("contact", "Someone@Example.com", "Someone@example.com"),
    ("site", "https://example.com/a?b=1", "https://example.com/a?b=1"),
    ("status", "paid", "paid"),
    ("extra", {"a": [1, 2]}, {"a": [1, 2]}),
]
INVALID = [
    ("title", 12),
    ("title", "x" * 81),
    ("quantity", "twelve"),
    ("quantity", -1),
    ("quantity", 1.5),
    ("unit_price", "NaN"),
    ("paid", "maybe"),
    ("due", "2026-02-30"),
    ("due", "28/02/2026"),
    ("sent_at", "yesterday"),
    ("contact", "not-an-email"),
    ("site", "javascript:alert(1)"),
    ("status", "lost"),
    ("total", 5),
    ("id", 7),
    ("nonsense", 1),
]


@pytest.mark.parametrize(("field", "given", "stored"), VALID)
def test_every_field_type_takes_a_valid_value(users, field, given, stored):
    values = {"title": "T", field: given}
    record = create_record("orders", values, users["admin"], form=isinstance(given, str))
    assert record[field] == stored


@pytest.mark.parametrize(("field", "given"), INVALID)
def test_every_field_type_refuses_an_invalid_value_naming_the_field_and_writes_nothing(users, field, given):
    values = {"title": "T", field: given} if field != "title" else {field: given}
    with pytest.raises(ValidationFailed) as caught:
        create_record("orders", values, users["admin"])
    assert list(caught.value.fields) == [field]
    assert database.execute_sql("SELECT COUNT(*) FROM c_orders").fetchone()[0] == 0


def test_required_defaults_and_computed_values_are_applied(users):
    with pytest.raises(ValidationFailed) as caught:
        create_record("orders", {"quantity": 1}, users["admin"])
    assert caught.value.fields == {"title": "This field is required."}
    record = create_record("orders", {"title": "a", "quantity": 4, "unit_price": 2.5}, users["admin"])
    assert (record["status"], record["discount"], record["total"]) == ("open", 0, 10.0)
    changed = update_record("orders", record["id"], {"discount": 0.5}, users["admin"])
    assert changed["total"] == 5.0


def test_a_unique_value_taken_is_a_conflict_naming_the_field(users):
    create_record("orders", {"title": "same"}, users["admin"])
    with pytest.raises(Conflict) as caught:
        create_record("orders", {"title": "same"}, users["editor"])
    assert caught.value.fields == {"title": "Another record already has this value."}


def test_own_records_rule_limits_update_and_delete(users):
    mine = create_record("orders", {"title": "mine"}, users["editor"])
    theirs = create_record("orders", {"title": "theirs"}, users["editor2"])
    update_record("orders", mine["id"], {"quantity": 2}, users["editor"])
    with pytest.raises(PermissionDenied):
        update_record("orders", theirs["id"], {"quantity": 2}, users["editor"])
    with pytest.raises(PermissionDenied):
        delete_record("orders", theirs["id"], users["editor"])
    with pytest.raises(PermissionDenied):
        create_record("orders", {"title": "v"}, users["viewer"])
    assert get_record("orders", theirs["id"], users["viewer"])["title"] == "theirs"


def test_relations_check_the_target_and_refuse_deleting_a_referenced_record_unless_cascade(users):
    admin = users["admin"]
    create_collection(
        {
            "name": "lines",
            "label": "Lines",
            "fields": [
                {"name": "order", "type": "relation", "collection": "orders", "required": True},
                {"name": "label", "type": "text"},
            ],
            "permissions": {"editor": ["view", "create"]},
        },
        admin,
    )
    order = create_record("orders", {"title": "o"}, admin)
    with pytest.raises(ValidationFailed) as caught:
        create_record("lines", {"order": 999}, admin)
    assert "order" in caught.value.fields
    create_record("lines", {"order": order["id"]}, admin)
    with pytest.raises(Conflict):
        delete_record("orders", order["id"], admin)
    lines = get_collection("lines")
    fields = [f.to_dict() for f in lines.fields]
    fields[0]["cascade"] = True
    from appliance.collections import update_collection

    update_collection("lines", {"fields": fields}, admin)
    delete_record("orders", order["id"], admin)
    assert list_records("lines", admin, {})["total_items"] == 0


def test_relation_target_must_be_visible_to_the_caller(users):
    admin = users["admin"]
    create_collection({"name": "secrets", "label": "Secrets", "fields": [{"name": "x", "type": "text"}]}, admin)
    create_collection(
        {
            "name": "notes",
            "label": "Notes",
            "fields": [{"name": "secret", "type": "relation", "collection": "secrets"}],
            "permissions": {"editor": ["view", "create"]},
        },
        admin,
    )
    secret = create_record("secrets", {"x": "hidden"}, admin)
    with pytest.raises(ValidationFailed):
        create_record("notes", {"secret": secret["id"]}, users["editor"])


def test_every_write_leaves_a_version_and_an_audit_event_and_a_version_can_be_restored(users):
    editor = users["editor"]
    record = create_record("orders", {"title": "v1", "quantity": 1}, editor)
    update_record("orders", record["id"], {"title": "v2", "quantity": 2}, editor)
    history = list_history(get_collection("orders"), record["id"], editor, {})
    assert [i["action"] for i in history["items"]] == ["update", "create"]
    assert history["items"][0]["changes"]["title"] == ["v1", "v2"]
    assert history["items"][0]["actor"] == "editor@example.com"
    restored = restore_version("orders", record["id"], 1, editor)
    assert (restored["title"], restored["quantity"]) == ("v1", 1)
    history = list_history(get_collection("orders"), record["id"], editor, {})
    assert history["items"][0]["action"] == "restore" and history["total_items"] == 3
    actions = [e.action for e in list_events(target=f"orders/{record['id']}")]
    assert actions == ["record.restored", "record.updated", "record.created"]
    details = list_events(action="record.updated").first().details
    assert '"title": ["v1", "v2"]' in details


def test_deleted_records_are_listed_for_admins_and_restored_with_their_id(users):
    admin = users["admin"]
    record = create_record("orders", {"title": "gone"}, users["editor"])
    delete_record("orders", record["id"], users["editor"])
    with pytest.raises(NotFound):
        get_record("orders", record["id"], admin)
    with pytest.raises(PermissionDenied):
        list_deleted_records(get_collection("orders"), users["editor"], {})
    deleted = list_deleted_records(get_collection("orders"), admin, {})
    assert [(i["id"], i["title"], i["version"]) for i in deleted["items"]] == [(record["id"], "gone", 2)]
    with pytest.raises(NotFound):
        restore_version("orders", record["id"], 1, users["editor"])
    back = restore_version("orders", record["id"], 2, admin)
    assert back["id"] == record["id"] and back["created_by"] == users["editor"].id
    assert list_deleted_records(get_collection("orders"), admin, {})["total_items"] == 0
    assert list_records("orders", admin, {})["total_items"] == 1


def test_a_failed_write_leaves_no_version_no_audit_event_and_no_count(users):
    create_record("orders", {"title": "a"}, users["admin"])
    before = (list_events().count(), database.execute_sql("SELECT COUNT(*) FROM record_version").fetchone()[0])
    with pytest.raises(Conflict):
        create_record("orders", {"title": "a"}, users["admin"])
    after = (list_events().count(), database.execute_sql("SELECT COUNT(*) FROM record_version").fetchone()[0])
    assert before == after
    assert get_collection("orders").row_count == 1
