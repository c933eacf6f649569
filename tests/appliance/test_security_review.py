"""Fixes from the security review, in the services: cascades, import bounds, tokens on password resets,
CSV export guards and what own-records users learn of others' records and hidden collections."""

from __future__ import annotations

import csv
import io

import pytest

from appliance.accounts import user_changes as user_changes_service
from appliance.accounts.tokens import authenticate_token, create_token, list_tokens
from appliance.audit import list_events
from appliance.collections.access import serialize_collection
from appliance.collections.definitions import create_collection, get_collection
from appliance.errors import BadRequest, Conflict, ValidationFailed
from appliance.records.csv.checks import MAX_BAD_ROWS
from appliance.records.csv.export import export_csv
from appliance.records.csv.importing import import_csv
from appliance.records.csv.jobs import save_import_upload
from appliance.records.csv.reading import read_csv
from appliance.records.delete import delete_record
from appliance.records.files import Upload
from appliance.records.write import create_record
from appliance.storage.db import database
from tests.appliance.data_helpers import make_orders, make_users
from webapp.openapi import build_document


@pytest.fixture
def people(instance):
    return make_users()


def _projects_with_invoices(admin, *, invoice_permissions=None):
    """``projects`` (editors: view, create, delete:own) and ``invoices`` pointing at them with cascade."""
    create_collection(
        {
            "name": "projects",
            "label": "Projects",
            "fields": [{"name": "title", "type": "text"}],
            "permissions": {"editor": ["view", "create", "delete:own"]},
        },
        admin,
    )
    create_collection(
        {
            "name": "invoices",
            "label": "Invoices",
            "fields": [
                {"name": "project", "type": "relation", "collection": "projects", "cascade": True},
                {"name": "amount", "type": "number"},
            ],
            "permissions": invoice_permissions or {},
        },
        admin,
    )


def _count(table: str) -> int:
    return database.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# --- 1. a cascade deletes only what the actor may delete -----------------------------------------


def test_a_cascade_into_a_hidden_collection_is_refused_without_naming_it_and_deletes_nothing(people):
    admin, editor = people["admin"], people["editor"]
    _projects_with_invoices(admin)
    project = create_record("projects", {"title": "mine"}, editor)
    for amount in (1, 2, 3):
        create_record("invoices", {"project": project["id"], "amount": amount}, admin)
    with pytest.raises(Conflict) as caught:
        delete_record("projects", project["id"], editor)
    assert "records you cannot see" in caught.value.message
    assert "invoices" not in caught.value.message
    assert (_count("c_projects"), _count("c_invoices")) == (1, 3)
    assert get_collection("invoices").row_count == 3
    assert list(list_events(action="record.deleted")) == []
    delete_record("projects", project["id"], admin)  # an admin's cascade still goes through
    assert (_count("c_projects"), _count("c_invoices")) == (0, 0)


def test_a_cascade_into_records_of_others_is_refused_but_into_ones_own_goes_through(people):
    admin, editor, other = people["admin"], people["editor"], people["editor2"]
    _projects_with_invoices(admin, invoice_permissions={"editor": ["view", "create", "delete:own"]})
    theirs = create_record("projects", {"title": "a"}, editor)
    create_record("invoices", {"project": theirs["id"], "amount": 1}, editor)
    create_record("invoices", {"project": theirs["id"], "amount": 2}, other)
    with pytest.raises(Conflict) as caught:
        delete_record("projects", theirs["id"], editor)
    assert "invoices.project (records you may not delete)" in caught.value.message
    assert (_count("c_projects"), _count("c_invoices")) == (1, 2)

    own = create_record("projects", {"title": "b"}, editor)
    create_record("invoices", {"project": own["id"], "amount": 3}, editor)
    delete_record("projects", own["id"], editor)
    assert (_count("c_projects"), _count("c_invoices")) == (1, 2)
    deleted = [e.target for e in list_events(action="record.deleted")]
    assert sorted(deleted) == sorted([f"projects/{own['id']}", "invoices/3"])


def test_a_refusal_deeper_in_a_cascade_rolls_back_every_level(people):
    admin, editor = people["admin"], people["editor"]
    _projects_with_invoices(admin, invoice_permissions={"editor": ["view", "create", "delete"]})
    create_collection(
        {
            "name": "payments",
            "label": "Payments",
            "fields": [{"name": "invoice", "type": "relation", "collection": "invoices", "cascade": True}],
        },
        admin,
    )
    project = create_record("projects", {"title": "p"}, editor)
    invoice = create_record("invoices", {"project": project["id"], "amount": 5}, editor)
    create_record("payments", {"invoice": invoice["id"]}, admin)
    with pytest.raises(Conflict) as caught:
        delete_record("projects", project["id"], editor)
    assert "records you cannot see" in caught.value.message and "payments" not in caught.value.message
    assert (_count("c_projects"), _count("c_invoices"), _count("c_payments")) == (1, 1, 1)
    assert get_collection("invoices").row_count == 1
    assert list(list_events(action="record.deleted")) == []


# --- 2. imports are bounded ------------------------------------------------------------------------


def test_reading_refuses_a_file_over_the_row_limit_naming_both_numbers():
    data = "title\n" + "".join(f"t{i}\n" for i in range(12))
    assert len(read_csv(data, max_rows=12).rows) == 12
    with pytest.raises(BadRequest) as caught:
        read_csv(data, max_rows=11)
    assert caught.value.message.startswith("The file has 12 rows; at most 11 can be imported at once.")
    assert caught.value.status == 400


def test_an_import_over_the_row_limit_is_refused_before_any_row_is_checked(people, tmp_path):
    make_orders(people["admin"])
    data = "title,quantity\n" + "".join(f"t{i},{i}\n" for i in range(6))
    with pytest.raises(BadRequest, match="has 6 rows; at most 5"):
        import_csv("orders", data, people["admin"], max_rows=5)
    with pytest.raises(BadRequest, match="has 6 rows; at most 5"):
        save_import_upload(tmp_path / "jobs", "orders", "f.csv", data.encode(), people["admin"], max_rows=5)
    assert _count("c_orders") == 0
    assert import_csv("orders", data, people["admin"], max_rows=6) == 6


def test_a_file_of_many_bad_rows_names_the_first_thousand_and_counts_the_rest(people):
    make_orders(people["admin"])
    bad = 1500
    data = "title,quantity\n" + "".join(f"t{i},lots\n" for i in range(bad))
    with pytest.raises(ValidationFailed) as caught:
        import_csv("orders", data, people["admin"])
    body = caught.value.to_dict()["error"]
    assert len(body["rows"]) == MAX_BAD_ROWS
    assert [r["line"] for r in body["rows"][:2]] == [2, 3] and body["rows"][-1]["line"] == MAX_BAD_ROWS + 1
    assert body["more_bad_rows"] == bad - MAX_BAD_ROWS
    assert f"{bad} rows of the file are invalid" in body["message"]
    assert f"and {bad - MAX_BAD_ROWS} more bad rows" in body["message"]
    assert _count("c_orders") == 0


def test_a_few_bad_rows_are_all_named_with_no_more_to_count(people):
    make_orders(people["admin"])
    with pytest.raises(ValidationFailed) as caught:
        import_csv("orders", "title,quantity\na,1\nb,x\na,2\n", people["admin"])
    body = caught.value.to_dict()["error"]
    assert [r["line"] for r in body["rows"]] == [3, 4] and body["more_bad_rows"] == 0


# --- 3. an admin's reset ends the user's API tokens (unless told not to); their own change keeps them


def _token(user_id: int) -> str:
    return create_token(user_id, "script", actor="test")[1]


def test_an_admin_reset_that_forces_a_change_deletes_the_users_tokens_audited(people):
    admin, editor = people["admin"], people["editor"]
    secret = _token(editor.id)
    other = _token(people["viewer"].id)
    user_changes_service.set_password(editor.id, "a-new-long-password-1", actor=admin, must_change=True)
    assert authenticate_token(secret) is None
    assert list(list_tokens(editor.id)) == []
    assert authenticate_token(other) is not None  # only that user's
    (event,) = list_events(action="token.revoked_all")
    assert event.target == editor.email and event.actor == admin.email
    assert '"reason": "password_reset"' in event.details and '"tokens": 1' in event.details


def test_a_refused_reset_keeps_the_tokens(people):
    editor = people["editor"]
    secret = _token(editor.id)
    with pytest.raises(ValidationFailed):
        user_changes_service.set_password(editor.id, "short", actor=people["admin"], must_change=True)
    assert authenticate_token(secret) is not None


def test_the_users_own_password_change_keeps_their_tokens(people):
    # Tokens are separate credentials: the office's scripts keep working (issue 13); the user revokes them.
    editor = people["editor"]
    user_changes_service.set_password(editor.id, "the-old-password-22", actor="test")
    secret = _token(editor.id)
    user_changes_service.change_password(editor.id, "the-old-password-22", "the-new-password-33")
    assert authenticate_token(secret) is not None
    assert list(list_events(action="token.revoked_all")) == []
    (event,) = list_events(action="user.password_changed")
    assert '"tokens_kept": true' in event.details


def test_an_admin_reset_may_keep_the_users_tokens(people):
    admin, editor = people["admin"], people["editor"]
    secret = _token(editor.id)
    user_changes_service.set_password(
        editor.id, "a-new-long-password-2", actor=admin, must_change=True, revoke_tokens=False
    )
    assert authenticate_token(secret) is not None
    assert list(list_events(action="token.revoked_all")) == []


# --- 4. every exported text cell is guarded against spreadsheet formulas -------------------------


def test_export_guards_file_names_computed_and_choice_text_but_not_numbers(people, instance):
    admin = people["admin"]
    create_collection(
        {
            "name": "docs",
            "label": "Docs",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "kind", "type": "select", "choices": ["=1+1", "plain"]},
                {"name": "copy", "type": "computed", "formula": "title"},
                {"name": "delta", "type": "number"},
                {"name": "scan", "type": "file"},
            ],
        },
        admin,
    )
    create_record(
        "docs",
        {"title": "@SUM(A1)", "kind": "=1+1", "delta": -5},
        admin,
        uploads={"scan": Upload("=HYPERLINK(1).txt", io.BytesIO(b"hello"))},
        files_dir=instance.paths.files_dir,
    )
    rows = list(csv.DictReader(io.StringIO("".join(export_csv("docs", admin, {})))))
    (row,) = rows
    assert row["title"] == "'@SUM(A1)"
    assert row["kind"] == "'=1+1"
    assert row["copy"] == "'@SUM(A1)"
    assert row["scan"].startswith("'=HYPERLINK")
    assert row["delta"] == "-5.0" or row["delta"] == "-5"


# --- 5 and 6. what an own-records user or a user kept out of a collection learns ------------------


def test_a_collection_shows_an_own_records_user_only_its_own_count_and_no_hidden_relation_target(people):
    admin, editor = people["admin"], people["editor"]
    create_collection(
        {"name": "secret_things", "label": "Secret", "fields": [{"name": "x", "type": "text"}]},
        admin,
    )
    create_collection(
        {
            "name": "notes",
            "label": "Notes",
            "fields": [
                {"name": "text", "type": "text"},
                {"name": "about", "type": "relation", "collection": "secret_things"},
            ],
            "permissions": {"editor": ["view:own", "create"], "viewer": ["create"]},
        },
        admin,
    )
    for who in (admin, admin, admin, editor):
        create_record("notes", {"text": "n"}, who)
    notes = get_collection("notes")
    shown = serialize_collection(notes, editor)
    assert shown["record_count"] == 1
    about = next(f for f in shown["fields"] if f["name"] == "about")
    assert about["collection"] is None and about["type"] == "relation"
    assert serialize_collection(notes, people["viewer"])["record_count"] is None  # may view none
    full = serialize_collection(notes, admin)
    assert full["record_count"] == 4
    assert next(f for f in full["fields"] if f["name"] == "about")["collection"] == "secret_things"
    assert "secret_things" not in str(build_document([notes], actor=editor))
    assert "secret_things" in str(build_document([notes], actor=admin))
