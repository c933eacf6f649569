"""Fixes from the security review, through the Flask app: cascades, import bounds, tokens after a password
reset, CSV export guards, and what the collections API and the OpenAPI document tell a limited user."""

from __future__ import annotations

import csv
import io
import json

import pytest

from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.config.settings import write_settings
from appliance.records.csv.checks import MAX_BAD_ROWS
from appliance.records.write import create_record
from appliance.storage.db import database
from tests.conftest import post_form

LIMIT = 2000


@pytest.fixture
def home(home):
    """The home of tests/conftest.py with a known import row limit."""
    write_settings(home / "appliance.toml", {"max_import_rows": LIMIT})
    return home


@pytest.fixture
def world(personas, api_token_for, client):
    """``projects`` (editors: view, create, delete:own), ``invoices`` (admins only, cascading from
    projects), ``notes`` (editors: view:own, create; a relation to invoices); ``call(who, method, path)``
    through the Flask test client with an API token of that persona."""
    admin = get_user(personas.admin.id)
    create_collection(
        {
            "name": "projects",
            "label": "Projects",
            "fields": [{"name": "title", "type": "text"}, {"name": "budget", "type": "number"}],
            "permissions": {"editor": ["view", "create", "delete:own"], "viewer": ["view"]},
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
        },
        admin,
    )
    create_collection(
        {
            "name": "notes",
            "label": "Notes",
            "fields": [
                {"name": "text", "type": "text"},
                {"name": "invoice", "type": "relation", "collection": "invoices"},
            ],
            "permissions": {"editor": ["view:own", "create"]},
        },
        admin,
    )
    tokens = {who: api_token_for(personas[who].email) for who in ("admin", "editor", "viewer")}

    def call(who: str, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {tokens[who]}", **kwargs.pop("headers", {})}
        return client.open(path, method=method, headers=headers, **kwargs)

    return call


def _count(table: str) -> int:
    with database.connection_context():
        return database.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_an_editor_cannot_cascade_delete_an_admins_invoices_it_cannot_see(world):
    project = world("editor", "POST", "/api/collections/projects/records", json={"title": "p"}).get_json()
    for amount in (1, 2, 3):
        made = world(
            "admin", "POST", "/api/collections/invoices/records", json={"project": project["id"], "amount": amount}
        )
        assert made.status_code == 201
    refused = world("editor", "DELETE", f"/api/collections/projects/records/{project['id']}")
    assert refused.status_code == 409
    message = refused.get_json()["error"]["message"]
    assert "records you cannot see" in message and "invoices" not in message
    assert (_count("c_projects"), _count("c_invoices")) == (1, 3)
    deleted = world("admin", "GET", "/api/audit", query_string={"action": "record.deleted"}).get_json()
    assert deleted["total_items"] == 0


def test_an_admin_password_reset_stops_the_users_old_token(world, personas):
    path = "/api/collections/projects/records"
    assert world("editor", "POST", path, json={"title": "before"}).status_code == 201
    reset = world(
        "admin",
        "PATCH",
        f"/api/users/{personas.editor.id}",
        json={"password": "a-brand-new-password-9", "must_change_password": True},
    )
    assert reset.status_code == 200, reset.get_data(as_text=True)
    after = world("editor", "POST", path, json={"title": "after"})
    assert after.status_code == 401
    assert _count("c_projects") == 1
    events = world("admin", "GET", "/api/audit", query_string={"action": "token.revoked_all"}).get_json()
    assert [e["target"] for e in events["items"]] == [personas.editor.email]


def test_a_token_of_a_user_who_must_change_the_password_is_refused_like_a_session(world, personas, client):
    from appliance.accounts.tokens import create_token
    from appliance.accounts.user_changes import set_password

    with database.connection_context():
        set_password(personas.viewer.id, "a-brand-new-password-8", actor="test", must_change=True)
        # A token that outlived the reset some other way (made directly, as the CLI could).
        _token, secret = create_token(personas.viewer.id, "script", actor="test")
    answer = client.get("/api/collections/projects/records", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 403
    assert "password" in answer.get_json()["error"]["message"]


def test_the_import_api_refuses_a_file_over_the_row_limit_saying_so(world):
    body = "title\n" + "".join(f"t{i}\n" for i in range(LIMIT + 1))
    answer = world(
        "editor",
        "POST",
        "/api/collections/projects/import",
        data={"file": (io.BytesIO(body.encode()), "big.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert (
        f"The file has {LIMIT + 1} rows; at most {LIMIT} can be imported at once"
        in answer.get_json()["error"]["message"]
    )
    assert _count("c_projects") == 0


def test_the_import_api_names_at_most_a_thousand_bad_rows_and_counts_the_rest(world):
    bad = MAX_BAD_ROWS + 150
    body = "title,budget\n" + "".join(f"t{i},lots\n" for i in range(bad))
    answer = world(
        "editor",
        "POST",
        "/api/collections/projects/import",
        data={"file": (io.BytesIO(body.encode()), "bad.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert len(error["rows"]) == MAX_BAD_ROWS and error["more_bad_rows"] == 150
    assert "and 150 more bad rows" in error["message"]
    assert len(answer.get_data()) < 200_000


def test_the_import_page_refuses_a_file_over_the_row_limit(world, signed_in):
    editor = signed_in("editor")
    body = "title\n" + "".join(f"t{i}\n" for i in range(LIMIT + 1))
    answer = post_form(
        editor,
        "/c/projects/import",
        {"file": (io.BytesIO(body.encode()), "big.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert f"at most {LIMIT} can be imported at once" in answer.get_data(as_text=True)


def test_the_import_page_counts_the_bad_rows_it_does_not_list(world, signed_in, app):
    """The page lists some bad rows and says how many more there are, the uncounted ones included."""
    with app.app_context():
        page = app.jinja_env.get_template("admin/_import_errors.html").module.import_errors(
            {"message": "m", "rows": [{"line": n, "fields": {"title": "x"}} for n in range(2, 12)], "more_bad_rows": 7},
            5,
        )
    assert "and 12 more bad rows" in str(page)  # 5 listed rows not shown + 7 never listed


def test_the_export_api_guards_a_file_name_that_starts_like_a_formula(world, personas):
    scans = {
        "name": "scans",
        "label": "Scans",
        "fields": [{"name": "scan", "type": "file"}, {"name": "n", "type": "integer"}],
    }
    with database.connection_context():
        create_collection(scans, get_user(personas.admin.id))
    made = world(
        "admin",
        "POST",
        "/api/collections/scans/records",
        data={"n": "-7", "scan": (io.BytesIO(b"hello"), "+cmd.txt")},
        content_type="multipart/form-data",
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    rows = list(
        csv.DictReader(io.StringIO(world("admin", "GET", "/api/collections/scans/export.csv").get_data(as_text=True)))
    )
    assert [(r["scan"], r["n"]) for r in rows] == [("'+cmd.txt", "-7")]


def test_a_limited_user_sees_its_own_count_and_no_hidden_relation_target(world, personas):
    with database.connection_context():
        for who in (personas.admin, personas.admin, personas.editor):
            create_record("notes", {"text": "n"}, get_user(who.id))
    notes = world("editor", "GET", "/api/collections/notes").get_json()
    assert notes["record_count"] == 1
    assert next(f for f in notes["fields"] if f["name"] == "invoice")["collection"] is None
    listed = world("editor", "GET", "/api/collections").get_json()["items"]
    assert "invoices" not in json.dumps(listed)
    assert {c["name"]: c["record_count"] for c in listed} == {"notes": 1, "projects": 0}
    document = world("editor", "GET", "/api/openapi.json")
    assert document.status_code == 200 and "invoices" not in document.get_data(as_text=True)
    assert world("admin", "GET", "/api/collections/notes").get_json()["record_count"] == 3
    assert "invoices" in world("admin", "GET", "/api/openapi.json").get_data(as_text=True)


def test_the_home_page_counts_only_the_records_of_an_own_records_user(world, personas, signed_in):
    with database.connection_context():
        for who in (personas.admin, personas.admin, personas.editor):
            create_record("notes", {"text": "n"}, get_user(who.id))
    page = signed_in("editor").get("/").get_data(as_text=True)
    main = page[page.index("<main") :]  # the menu names the collection too, without a count
    section = main[main.index(">Notes</a>") :][:300]
    assert 'title="records">1 record</span>' in section
