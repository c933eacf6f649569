"""Records: validation of every field type, permissions, relations, history, audit and restore."""

from __future__ import annotations

import pytest

from appliance.audit import list_events
from appliance.collections import fields as fields_module
from appliance.collections.definitions import create_collection, get_collection
from appliance.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from appliance.records import history
from appliance.records import write as records
from appliance.records.delete import delete_record
from appliance.records.history import list_deleted_records, list_history
from appliance.records.query import list_records
from appliance.records.read import get_record
from appliance.records.write import create_record, restore_version, update_record
from appliance.storage.db import database
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
    from appliance.collections.definitions import update_collection

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


def _counts() -> tuple[int, int, int, int]:
    return (
        database.execute_sql("SELECT COUNT(*) FROM c_orders").fetchone()[0],
        database.execute_sql("SELECT COUNT(*) FROM record_version").fetchone()[0],
        list_events().count(),
        get_collection("orders").row_count,
    )


def test_a_failure_after_the_insert_rolls_back_the_row_its_version_and_its_audit_event(users, monkeypatch):
    create_record("orders", {"title": "kept"}, users["admin"])
    before = _counts()

    def failing_audit(*args, **kwargs):
        raise RuntimeError("the audit write failed")

    monkeypatch.setattr(history, "record_event", failing_audit)  # the audit event of a record change
    with pytest.raises(RuntimeError):
        create_record("orders", {"title": "lost"}, users["admin"])
    with pytest.raises(RuntimeError):
        update_record("orders", 1, {"title": "changed"}, users["admin"])
    assert _counts() == before
    assert database.execute_sql("SELECT title FROM c_orders").fetchall() == [("kept",)]
    assert list_records("orders", users["admin"], {"search": "lost"})["total_items"] == 0


def _collection_with(admin, fields, name="calc"):
    return create_collection({"name": name, "label": name.title(), "fields": fields}, admin)


def test_a_formula_too_large_to_store_is_a_422_naming_the_computed_field_and_writes_nothing(users):
    admin = users["admin"]
    _collection_with(
        admin,
        [
            {"name": "a", "type": "integer"},
            {"name": "s", "type": "text"},
            {"name": "power", "type": "computed", "formula": "a ** a"},
            {"name": "wide", "type": "computed", "formula": "s * 100000"},
            {"name": "half", "type": "computed", "formula": "a / 0"},
        ],
    )
    with pytest.raises(ValidationFailed) as caught:
        create_record("calc", {"a": 4_000_000, "s": "xy"}, admin)
    assert set(caught.value.fields) == {"power", "wide"}
    assert "too large" in caught.value.fields["power"]
    assert database.execute_sql("SELECT COUNT(*) FROM c_calc").fetchone()[0] == 0
    record = create_record("calc", {"a": 3}, admin)
    assert (record["power"], record["wide"], record["half"]) == (27, None, None)
    with pytest.raises(ValidationFailed) as caught:
        update_record("calc", record["id"], {"a": 2**40}, admin)
    assert "power" in caught.value.fields
    assert get_record("calc", record["id"], admin)["a"] == 3


def test_formulas_and_patterns_are_evaluated_before_the_write_transaction_opens(users, monkeypatch):
    admin = users["admin"]
    _collection_with(
        admin,
        [
            {"name": "code", "type": "text", "pattern": "[A-Z]{2}[0-9]+"},
            {"name": "n", "type": "integer"},
            {"name": "twice", "type": "computed", "formula": "n * 2"},
        ],
    )
    seen: list[tuple[str, bool]] = []
    real_compute, real_match = records.compute_formula, fields_module.match_pattern

    def spy_compute(formula, values):
        seen.append(("formula", database.in_transaction()))
        return real_compute(formula, values)

    def spy_match(pattern, value):
        seen.append(("pattern", database.in_transaction()))
        return real_match(pattern, value)

    monkeypatch.setattr(records, "compute_formula", spy_compute)
    monkeypatch.setattr(fields_module, "match_pattern", spy_match)
    record = create_record("calc", {"code": "AB12", "n": 4}, admin)
    update_record("calc", record["id"], {"code": "CD3", "n": 5}, admin)
    restore_version("calc", record["id"], 1, admin)
    assert {kind for kind, _ in seen} == {"formula", "pattern"}
    assert not any(inside for _, inside in seen), seen
    assert get_record("calc", record["id"], admin)["twice"] == 8


def test_a_pattern_with_catastrophic_backtracking_is_a_422_not_a_stalled_write(users):
    admin = users["admin"]
    _collection_with(admin, [{"name": "code", "type": "text", "pattern": "(a|aa)+b"}])
    assert create_record("calc", {"code": "aab"}, admin)["code"] == "aab"
    with pytest.raises(ValidationFailed) as caught:
        create_record("calc", {"code": "a" * 60}, admin)
    assert "too long" in caught.value.fields["code"]
    with pytest.raises(ValidationFailed) as caught:
        _collection_with(admin, [{"name": "code", "type": "text", "pattern": "([a-z]"}], name="broken")
    assert "fields.code" in caught.value.fields


def test_a_cascade_deletes_every_referring_record_however_many(users):
    admin = users["admin"]
    create_collection({"name": "parents", "label": "Parents", "fields": [{"name": "x", "type": "text"}]}, admin)
    create_collection(
        {
            "name": "children",
            "label": "Children",
            "fields": [{"name": "parent", "type": "relation", "collection": "parents", "cascade": True}],
        },
        admin,
    )
    parent = create_record("parents", {"x": "p"}, admin)
    other = create_record("parents", {"x": "q"}, admin)
    count = 1005
    with database.atomic():
        database.execute_sql(
            "INSERT INTO c_children (created_at, updated_at, parent) VALUES (?, ?, ?)",
            ("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z", parent["id"]),
        )
        for _ in range(count - 1):
            database.execute_sql(
                "INSERT INTO c_children (created_at, updated_at, parent) SELECT created_at, updated_at, parent "
                "FROM c_children LIMIT 1"
            )
        database.execute_sql("UPDATE collection SET row_count = ? WHERE name = 'children'", (count,))
    create_record("children", {"parent": other["id"]}, admin)
    delete_record("parents", parent["id"], admin)
    remaining = database.execute_sql("SELECT parent, COUNT(*) FROM c_children GROUP BY parent").fetchall()
    assert remaining == [(other["id"], 1)]
    assert get_collection("children").row_count == 1


def test_errors_never_name_a_collection_the_actor_cannot_see(users):
    admin, editor = users["admin"], users["editor"]
    create_collection(
        {
            "name": "payroll",
            "label": "Payroll Secrets",
            "fields": [{"name": "order", "type": "relation", "collection": "orders"}],
        },
        admin,
    )
    create_collection(
        {
            "name": "notes",
            "label": "Notes",
            "fields": [{"name": "pay", "type": "relation", "collection": "payroll"}],
            "permissions": {"editor": ["view", "create"]},
        },
        admin,
    )
    order = create_record("orders", {"title": "mine"}, editor)
    hidden = create_record("payroll", {"order": order["id"]}, admin)
    with pytest.raises(ValidationFailed) as caught:
        create_record("notes", {"pay": hidden["id"]}, editor)
    assert "payroll" not in caught.value.fields["pay"].lower()
    with pytest.raises(Conflict) as caught:
        delete_record("orders", order["id"], editor)
    assert "payroll" not in caught.value.message.lower()
    assert "cannot see" in caught.value.message
    with pytest.raises(Conflict) as caught:
        delete_record("orders", order["id"], admin)
    assert "payroll.order" in caught.value.message


def test_record_audit_events_carry_the_client_address(users):
    admin = users["admin"]
    record = create_record("orders", {"title": "a"}, admin, address="192.0.2.7")
    update_record("orders", record["id"], {"title": "b"}, admin, address="192.0.2.8")
    restore_version("orders", record["id"], 1, admin, address="192.0.2.9")
    delete_record("orders", record["id"], admin, address="192.0.2.10")
    events = [(e.action, e.address) for e in list_events(target=f"orders/{record['id']}")]
    assert events == [
        ("record.deleted", "192.0.2.10"),
        ("record.restored", "192.0.2.9"),
        ("record.updated", "192.0.2.8"),
        ("record.created", "192.0.2.7"),
    ]
