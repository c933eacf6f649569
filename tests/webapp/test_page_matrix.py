"""Every page against every persona: the status each one gets, as a table (issue 5's "every page and role").

Signed-out visitors are sent to the sign-in page; admins open everything; editors and
viewers open what the collection's permissions give them, and never the admin pages.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

import pytest

from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.records.write import create_record
from appliance.storage.db import database
from tests.conftest import csrf_token_in

NOTES = {
    "name": "notes",
    "label": "Notes",
    "fields": [{"name": "title", "type": "text", "required": True}],
    "permissions": {"editor": ["view", "create", "update:own", "delete:own"], "viewer": ["view"]},
}

# path, then the status for admin, editor, viewer, and a visitor who is not signed in.
# Record 1 is the admin's, record 2 the editor's.
PAGES = [
    ("/", 200, 200, 200, 302),
    ("/account", 200, 200, 200, 302),
    ("/c/notes", 200, 200, 200, 302),
    ("/c/notes/new", 200, 200, 403, 302),
    ("/c/notes/1", 200, 200, 200, 302),
    ("/c/notes/1/edit", 200, 403, 403, 302),
    ("/c/notes/2/edit", 200, 200, 403, 302),
    ("/c/notes/1/delete", 200, 403, 403, 302),
    ("/c/notes/2/delete", 200, 200, 403, 302),
    ("/c/notes/999", 404, 404, 404, 302),
    ("/c/nothing-here", 404, 404, 404, 302),
    ("/c/notes/export.csv", 200, 200, 200, 302),
    ("/c/notes/import", 200, 200, 403, 302),
    ("/admin/users", 200, 403, 403, 302),
    ("/admin/users/1", 200, 403, 403, 302),
    ("/admin/collections", 200, 403, 403, 302),
    ("/admin/collections/notes", 200, 403, 403, 302),
    ("/admin/collections/notes/fields/title", 200, 403, 403, 302),
    ("/admin/collections/notes/fields/title/remove", 200, 403, 403, 302),
    ("/admin/collections/notes/delete", 200, 403, 403, 302),
    ("/admin/audit", 200, 403, 403, 302),
    ("/admin/settings", 200, 403, 403, 302),
    ("/admin/jobs", 200, 403, 403, 302),
    ("/admin/jobs/backup/runs", 200, 403, 403, 302),
    ("/admin/backups", 200, 403, 403, 302),
    ("/admin/webhooks", 200, 403, 403, 302),
    ("/admin/agents", 200, 403, 403, 302),
]
PERSONAS = ("admin", "editor", "viewer", "anonymous")


@pytest.fixture
def clients(app, personas):
    """A test client per persona (signed in through the real form), over a collection with two records."""
    with database.connection_context():
        admin = get_user(personas.admin.id)
        create_collection(NOTES, admin)
        create_record("notes", {"title": "The admin's note"}, admin)
        create_record("notes", {"title": "The editor's note"}, get_user(personas.editor.id))
    out = {"anonymous": app.test_client()}
    for who in ("admin", "editor", "viewer"):
        person = personas[who]
        client = app.test_client()
        token = csrf_token_in(client.get("/login").get_data(as_text=True))
        answer = client.post("/login", data={"email": person.email, "password": person.password, "csrf_token": token})
        assert answer.status_code == 302, f"{who} could not sign in"
        out[who] = client
    return out


@pytest.mark.parametrize(("path", *PERSONAS), PAGES, ids=[row[0] for row in PAGES])
def test_each_persona_gets_the_status_the_table_says(clients, path, admin, editor, viewer, anonymous):
    expected = {"admin": admin, "editor": editor, "viewer": viewer, "anonymous": anonymous}
    got = {who: clients[who].get(path).status_code for who in PERSONAS}
    assert got == expected
    if anonymous == 302:
        assert clients["anonymous"].get(path).headers["Location"].startswith("/login")


def test_a_long_admin_list_pages_with_previous_and_next_links_that_keep_its_filters(clients):
    html = clients["admin"].get("/admin/users?page=2&page_size=1&role=editor").get_data(as_text=True)
    assert "Page 2 of 2" in html  # two editors: bob, and dave who is disabled
    [link] = [a.replace("&amp;", "&") for a in re.findall(r'class="page-link" href="([^"]+)"', html)]
    assert "Previous" in html and "Next" not in html
    path, _, query = link.partition("?")
    assert path == "/admin/users"
    assert parse_qs(query) == {"page": ["1"], "page_size": ["1"], "role": ["editor"]}  # empty filters drop out
