"""Collections: definitions, their tables and indexes, and migrations of their fields."""

from __future__ import annotations

import pytest

from appliance.collections.access import list_collections
from appliance.collections.definitions import create_collection, delete_collection, get_collection, update_collection
from appliance.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from appliance.records.query import list_records
from appliance.records.write import create_record
from appliance.storage.db import database
from tests.appliance.data_helpers import ORDER_FIELDS, make_orders, make_users


@pytest.fixture
def users(instance):
    return make_users()


def _columns(table: str) -> list[str]:
    return [r[1] for r in database.execute_sql(f'PRAGMA table_info("{table}")').fetchall()]


def _indexes(table: str) -> dict[str, bool]:
    return {r[1]: bool(r[2]) for r in database.execute_sql(f'PRAGMA index_list("{table}")').fetchall()}


def test_creating_a_collection_makes_a_typed_table_with_indexes_and_a_search_index(users):
    make_orders(users["admin"])
    assert _columns("c_orders")[:5] == ["id", "created_at", "updated_at", "created_by", "updated_by"]
    assert "total" in _columns("c_orders")
    indexes = _indexes("c_orders")
    assert indexes["ix_c_orders__title__u"] is True
    assert indexes["ix_c_orders__quantity__i"] is False
    fts = database.execute_sql("SELECT sql FROM sqlite_master WHERE name = 'c_orders__fts'").fetchone()[0]
    assert "fts5" in fts and "title" in fts and "notes" in fts and "quantity" not in fts


def test_only_admins_define_collections(users):
    with pytest.raises(PermissionDenied):
        make_orders(users["editor"])


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ([{"name": "Bad Name", "type": "text"}], "fields.Bad Name"),
        ([{"name": "x", "type": "colour"}], "fields.x"),
        ([{"name": "t", "type": "computed", "formula": "a +"}], "fields.t"),
        ([{"name": "t", "type": "computed", "formula": "missing * 2"}], "fields.t"),
        ([{"name": "t", "type": "computed", "formula": "__import__('os')"}], "fields.t"),
        ([{"name": "s", "type": "select"}], "fields.s"),
        ([{"name": "r", "type": "relation", "collection": "nowhere"}], "fields.r"),
        ([{"name": "q", "type": "integer", "default": "many"}], "fields.q"),
        ([{"name": "id", "type": "integer"}], "fields.id"),
    ],
)
def test_a_bad_field_definition_is_refused_and_nothing_is_created(users, fields, bad):
    with pytest.raises(ValidationFailed) as caught:
        make_orders(users["admin"], fields=fields)
    assert bad in caught.value.fields
    with pytest.raises(NotFound):
        get_collection("orders")
    assert database.execute_sql("SELECT name FROM sqlite_master WHERE name = 'c_orders'").fetchone() is None


def test_a_taken_name_is_a_conflict(users):
    make_orders(users["admin"])
    with pytest.raises(Conflict):
        make_orders(users["admin"])


def test_a_role_without_permissions_never_sees_the_collection(users):
    make_orders(users["admin"], permissions={"editor": ["view"]})
    assert [c.name for c in list_collections(users["viewer"])] == []
    assert [c.name for c in list_collections(users["editor"])] == ["orders"]
    with pytest.raises(NotFound):
        list_records("orders", users["viewer"], {})


def test_adding_renaming_and_removing_fields_migrates_the_table_and_keeps_data(users):
    admin = users["admin"]
    make_orders(admin)
    create_record("orders", {"title": "Chairs", "quantity": 2, "unit_price": 5, "notes": "blue"}, admin)
    fields = [dict(f) for f in ORDER_FIELDS if f["name"] != "notes"]
    fields[0] = {**fields[0], "name": "name", "rename_from": "title"}
    fields.append({"name": "colour", "type": "text", "default": "grey", "required": True})
    update_collection("orders", {"fields": fields}, admin)
    columns = _columns("c_orders")
    assert "name" in columns and "title" not in columns and "notes" not in columns and "colour" in columns
    page = list_records("orders", admin, {"search": "chairs"})
    assert [(r["name"], r["colour"], r["total"]) for r in page["items"]] == [("Chairs", "grey", 10)]
    assert "ix_c_orders__name__u" in _indexes("c_orders")


def test_a_change_that_existing_rows_violate_is_refused_naming_the_rows_and_changes_nothing(users):
    admin = users["admin"]
    make_orders(admin)
    for title in ("a", "b"):
        create_record("orders", {"title": title, "quantity": 1}, admin)
    with_required = [*ORDER_FIELDS, {"name": "owner", "type": "text", "required": True}]
    with pytest.raises(ValidationFailed) as caught:
        update_collection("orders", {"fields": with_required}, admin)
    assert "records 1, 2" in caught.value.fields["fields.owner"]
    unique_quantity = [dict(f, unique=True) if f["name"] == "quantity" else f for f in ORDER_FIELDS]
    with pytest.raises(ValidationFailed) as caught:
        update_collection("orders", {"fields": unique_quantity}, admin)
    assert "records 1, 2" in caught.value.fields["fields.quantity"]
    assert "owner" not in _columns("c_orders")
    assert "ix_c_orders__quantity__i" in _indexes("c_orders")


def test_changing_a_formula_recomputes_every_record(users):
    admin = users["admin"]
    make_orders(admin)
    create_record("orders", {"title": "a", "quantity": 3, "unit_price": 2}, admin)
    fields = [dict(f, formula="quantity + 1") if f["name"] == "total" else f for f in ORDER_FIELDS]
    update_collection("orders", {"fields": fields}, admin)
    assert list_records("orders", admin, {})["items"][0]["total"] == 4


def test_a_referenced_collection_cannot_be_removed(users):
    admin = users["admin"]
    make_orders(admin)
    create_collection(
        {"name": "lines", "label": "Lines", "fields": [{"name": "order", "type": "relation", "collection": "orders"}]},
        admin,
    )
    with pytest.raises(Conflict):
        delete_collection("orders", admin)
    delete_collection("lines", admin)
    delete_collection("orders", admin)
    assert database.execute_sql("SELECT name FROM sqlite_master WHERE name LIKE 'c_orders%'").fetchall() == []


def _fields(name: str) -> list[dict]:
    return [f.to_dict() for f in get_collection(name).fields]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"name": "zz", "fields": [{"name": "t", "type": "text"}]}, {"name": "zz_fts_data"}),
        ({"name": "yy_fts_idx"}, {"name": "yy", "fields": [{"name": "t", "type": "text"}]}),
        ({"name": "ab_fts", "fields": [{"name": "t", "type": "text"}]}, {"name": "ab"}),
        ({"name": "cd", "fields": [{"name": "t", "type": "text"}]}, {"name": "cd_fts_config"}),
    ],
)
def test_no_collection_name_collides_with_another_collections_search_index(users, first, second):
    admin = users["admin"]
    for data in (first, second):
        fields = data.get("fields", [{"name": "t", "type": "text"}])
        create_collection({**data, "label": data["name"], "fields": fields}, admin)
    for data in (first, second):
        create_record(data["name"], {"t": f"word {data['name']}"}, admin)
        assert list_records(data["name"], admin, {"search": "word"})["total_items"] == 1
    delete_collection(first["name"], admin)
    assert list_records(second["name"], admin, {"search": "word"})["total_items"] == 1


def test_a_field_named_like_the_search_index_is_harmless(users):
    admin = users["admin"]
    create_collection({"name": "ab", "label": "AB", "fields": [{"name": "c_ab_fts", "type": "text"}]}, admin)
    create_record("ab", {"c_ab_fts": "findable"}, admin)
    assert list_records("ab", admin, {"search": "findable"})["total_items"] == 1
    update_collection(
        "ab", {"fields": [{"name": "c_ab_fts", "type": "text"}, {"name": "ab_fts", "type": "text"}]}, admin
    )
    assert list_records("ab", admin, {"search": "findable"})["total_items"] == 1


def test_a_name_with_a_double_underscore_is_refused(users):
    with pytest.raises(ValidationFailed):
        create_collection({"name": "zz__fts", "label": "x"}, users["admin"])


def test_pointing_a_relation_at_another_collection_is_checked_against_existing_rows(users):
    admin = users["admin"]
    make_orders(admin)
    create_collection({"name": "other", "label": "Other", "fields": [{"name": "x", "type": "text"}]}, admin)
    create_collection(
        {"name": "lines", "label": "Lines", "fields": [{"name": "ref", "type": "relation", "collection": "orders"}]},
        admin,
    )
    for title in ("a", "b", "c"):
        create_record("orders", {"title": title}, admin)
    create_record("other", {"x": "only one"}, admin)
    for ref in (1, 3, None):
        create_record("lines", {"ref": ref}, admin)
    moved = [{"name": "ref", "type": "relation", "collection": "other"}]
    with pytest.raises(ValidationFailed) as caught:
        update_collection("lines", {"fields": moved}, admin)
    assert caught.value.fields["fields.ref"].endswith("record 2 refer to ids it does not have.")
    assert get_collection("lines").field("ref").collection == "orders"
    database.execute_sql("DELETE FROM c_lines WHERE id = 2")
    update_collection("lines", {"fields": moved}, admin)
    assert get_collection("lines").field("ref").collection == "other"


def test_a_new_or_tightened_pattern_is_checked_against_existing_rows(users):
    admin = users["admin"]
    make_orders(admin)
    for title in ("AB-1", "AB-2", "cd-3"):
        create_record("orders", {"title": title}, admin)
    fields = _fields("orders")
    fields[0]["pattern"] = "[A-Z]{2}-[0-9]+"
    with pytest.raises(ValidationFailed) as caught:
        update_collection("orders", {"fields": fields}, admin)
    assert caught.value.fields == {"fields.title": "Cannot set this pattern: record 3 do not match it."}
    assert get_collection("orders").field("title").pattern is None
    fields[0]["pattern"] = "[A-Za-z]{2}-[0-9]+"
    update_collection("orders", {"fields": fields}, admin)
    with pytest.raises(ValidationFailed):
        create_record("orders", {"title": "nope"}, admin)


@pytest.mark.parametrize(
    ("field", "change", "expected"),
    [
        (0, {"unique": True}, "Cannot make this field unique: records 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 5 more share"),
        (1, {"max": 2}, "Cannot set 'max' to 2: records 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 5 more fall outside it."),
        (
            2,
            {"choices": ["b"]},
            "Cannot remove choices still in use: records 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 5 more.",
        ),
        (3, {"required": True}, "Cannot make this field required: records 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 5 more"),
    ],
)
def test_the_rows_named_in_a_refusal_are_counted_beyond_the_first_eleven(users, field, change, expected):
    admin = users["admin"]
    fields = [
        {"name": "tag", "type": "text"},
        {"name": "qty", "type": "integer"},
        {"name": "kind", "type": "select", "choices": ["a", "b"]},
        {"name": "empty", "type": "text"},
    ]
    create_collection({"name": "things", "label": "Things", "fields": fields}, admin)
    for _ in range(15):
        create_record("things", {"tag": "same", "qty": 5, "kind": "a"}, admin)
    fields[field] = {**fields[field], **change}
    with pytest.raises(ValidationFailed) as caught:
        update_collection("things", {"fields": fields}, admin)
    assert caught.value.fields[f"fields.{fields[field]['name']}"].startswith(expected)
