"""Collections: definitions, their tables and indexes, and migrations of their fields."""

from __future__ import annotations

import pytest

from appliance.collections import (
    create_collection,
    delete_collection,
    get_collection,
    list_collections,
    update_collection,
)
from appliance.db import database
from appliance.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from appliance.record_query import list_records
from appliance.records import create_record
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
    fts = database.execute_sql("SELECT sql FROM sqlite_master WHERE name = 'c_orders_fts'").fetchone()[0]
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
