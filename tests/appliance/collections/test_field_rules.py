"""Field rules in a collection's permissions: checking them, keeping them in step with renamed and removed
fields, and what :func:`field_rules` gives each role."""

from __future__ import annotations

import pytest

from appliance.accounts.roles import create_role, delete_role
from appliance.collections.access import NO_RULES, field_rules, serialize_collection, visible_definition
from appliance.collections.definitions import create_collection, get_collection, update_collection
from appliance.errors import Conflict, ValidationFailed
from tests.appliance.data_helpers import make_users

FIELDS = [
    {"name": "name", "type": "text"},
    {"name": "salary", "type": "integer"},
    {"name": "yearly", "type": "computed", "formula": "salary * 12"},
    {"name": "note", "type": "text"},
]


@pytest.fixture
def users(instance):
    return make_users()


def _make(admin, fields_rules):
    return create_collection(
        {
            "name": "staff",
            "fields": FIELDS,
            "permissions": {"editor": ["view", "update"], "viewer": ["view"], "fields": fields_rules},
        },
        admin,
    )


def test_rules_are_kept_in_field_order_and_empty_ones_dropped(users):
    staff = _make(
        users["admin"],
        {"viewer": {"hidden": ["note", "salary"]}, "editor": {"read_only": ["salary"], "hidden": []}},
    )
    assert staff.permissions["fields"] == {
        "viewer": {"hidden": ["salary", "note"]},
        "editor": {"read_only": ["salary"]},
    }


def test_each_role_gets_its_own_rules_and_admins_none(users):
    staff = _make(users["admin"], {"viewer": {"hidden": ["salary"]}, "editor": {"read_only": ["salary"]}})
    assert field_rules(staff, users["admin"]) is NO_RULES
    assert field_rules(staff, None) is NO_RULES
    # A computed field over a hidden field would show it: hidden too.
    assert field_rules(staff, users["viewer"]).hidden == {"salary", "yearly"}
    assert field_rules(staff, users["editor"]).read_only == {"salary"}
    assert field_rules(staff, users["editor"]).hidden == set()
    assert [f.name for f in visible_definition(staff, users["viewer"]).fields] == ["name", "note"]
    assert visible_definition(staff, users["editor"]) is staff


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ({"nobody": {"hidden": ["salary"]}}, "no role called 'nobody'"),
        ({"viewer": {"hidden": ["wage"]}}, "name no field of this collection: 'wage'"),
        ({"viewer": {"secret": ["salary"]}}, "Give field rules as"),
        ({"viewer": {"hidden": "salary"}}, "must be a list of field names"),
        ({"viewer": {"hidden": ["salary"], "read_only": ["salary"]}}, "both hidden and read-only"),
        ({"admin": {"hidden": ["salary"]}}, "Admins see and change every field"),
        (["salary"], "Give field rules as"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message_and_nothing_changes(users, rules, words):
    staff = _make(users["admin"], {})
    with pytest.raises(ValidationFailed) as caught:
        update_collection("staff", {"permissions": {"viewer": ["view"], "fields": rules}}, users["admin"])
    assert words in caught.value.fields["permissions.fields"]
    assert get_collection("staff").permissions == staff.permissions


def test_a_renamed_field_keeps_its_rules_and_a_removed_one_loses_them(users):
    _make(users["admin"], {"viewer": {"hidden": ["salary", "note"]}, "editor": {"read_only": ["note"]}})
    fields = [dict(f) for f in FIELDS if f["name"] != "note"]
    fields[1] = {"name": "pay", "type": "integer", "rename_from": "salary"}
    fields[2] = {"name": "yearly", "type": "computed", "formula": "pay * 12"}
    changed = update_collection("staff", {"fields": fields}, users["admin"])
    assert changed.permissions["fields"] == {"viewer": {"hidden": ["pay"]}}
    assert field_rules(changed, users["viewer"]).hidden == {"pay", "yearly"}


def test_rules_given_with_new_fields_name_the_new_fields(users):
    _make(users["admin"], {})
    fields = [*FIELDS, {"name": "iban", "type": "text"}]
    changed = update_collection(
        "staff",
        {"fields": fields, "permissions": {"viewer": ["view"], "fields": {"viewer": {"hidden": ["iban"]}}}},
        users["admin"],
    )
    assert changed.permissions["fields"] == {"viewer": {"hidden": ["iban"]}}


def test_a_caller_is_not_shown_the_hidden_fields_nor_other_roles_rules(users):
    staff = _make(users["admin"], {"viewer": {"hidden": ["salary"]}, "editor": {"read_only": ["salary"]}})
    seen = serialize_collection(staff, users["viewer"])
    assert [f["name"] for f in seen["fields"]] == ["name", "note"]
    assert "fields" not in seen["permissions"]
    assert serialize_collection(staff, users["editor"])["permissions"]["fields"] == {
        "editor": {"read_only": ["salary"]}
    }
    assert serialize_collection(staff, users["admin"])["permissions"] == staff.permissions


def test_a_role_named_in_field_rules_cannot_be_removed_and_fields_is_no_role_name(users):
    create_role("auditor", "Auditor", actor="test")
    _make(users["admin"], {"auditor": {"hidden": ["salary"]}})
    with pytest.raises(Conflict):
        delete_role("auditor", actor="test")
    with pytest.raises(ValidationFailed):
        create_role("fields", "Fields", actor="test")
