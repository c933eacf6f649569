"""The access table of the data API: each built-in role x each permission x each endpoint, against a real server.

``items`` grants editors view, create, update:own and delete:own, viewers view;
``hidden`` grants nothing to anyone but admins. Rows read (persona, method,
path, expected status); ``{admin_rec}`` is a record the admin created,
``{editor_rec}`` one the editor created, each made fresh for the row.
"""

from __future__ import annotations

import pytest

from tests.webapp.data_server import make_data_server

R = "/api/collections/items/records"
TABLE = [
    # admin: everything
    ("admin", "GET", R, 200),
    ("admin", "POST", R, 201),
    ("admin", "GET", R + "/{editor_rec}", 200),
    ("admin", "PATCH", R + "/{editor_rec}", 200),
    ("admin", "DELETE", R + "/{editor_rec}", 204),
    ("admin", "GET", R + "/{editor_rec}/history", 200),
    ("admin", "POST", R + "/{editor_rec}/history/1/restore", 200),
    ("admin", "GET", "/api/collections/hidden/records", 200),
    ("admin", "GET", "/api/collections/items/deleted", 200),
    ("admin", "PATCH", "/api/collections/items", 200),
    ("admin", "GET", "/api/audit", 200),
    # editor: view, create, update:own, delete:own
    ("editor", "GET", R, 200),
    ("editor", "POST", R, 201),
    ("editor", "GET", R + "/{admin_rec}", 200),
    ("editor", "PATCH", R + "/{editor_rec}", 200),
    ("editor", "PATCH", R + "/{admin_rec}", 403),
    ("editor", "DELETE", R + "/{editor_rec}", 204),
    ("editor", "DELETE", R + "/{admin_rec}", 403),
    ("editor", "GET", R + "/{admin_rec}/history", 200),
    ("editor", "POST", R + "/{editor_rec}/history/1/restore", 200),
    ("editor", "POST", R + "/{admin_rec}/history/1/restore", 403),
    ("editor", "GET", "/api/collections/items", 200),
    ("editor", "PATCH", "/api/collections/items", 403),
    ("editor", "DELETE", "/api/collections/items", 403),
    ("editor", "POST", "/api/collections", 403),
    ("editor", "GET", "/api/collections/items/deleted", 403),
    ("editor", "GET", "/api/collections/hidden", 404),
    ("editor", "GET", "/api/collections/hidden/records", 404),
    ("editor", "POST", "/api/collections/hidden/records", 404),
    ("editor", "GET", "/api/collections/hidden/records/1", 404),
    ("editor", "GET", "/api/audit", 403),
    # a read-only token of the editor
    ("editor_read", "GET", R, 200),
    ("editor_read", "POST", R, 403),
    ("editor_read", "PATCH", R + "/{editor_rec}", 403),
    ("editor_read", "DELETE", R + "/{editor_rec}", 403),
    # viewer: view only
    ("viewer", "GET", R, 200),
    ("viewer", "GET", R + "/{editor_rec}", 200),
    ("viewer", "GET", R + "/{editor_rec}/history", 200),
    ("viewer", "POST", R, 403),
    ("viewer", "PATCH", R + "/{editor_rec}", 403),
    ("viewer", "DELETE", R + "/{editor_rec}", 403),
    ("viewer", "POST", R + "/{editor_rec}/history/1/restore", 403),
    ("viewer", "GET", "/api/collections/hidden/records", 404),
    ("viewer", "PATCH", "/api/collections/items", 403),
    # nobody signed in: the outsider (no account) and the disabled user
    ("outsider", "GET", R, 401),
    ("outsider", "POST", R, 401),
    ("outsider", "GET", R + "/{editor_rec}", 401),
    ("outsider", "GET", "/api/collections", 401),
    ("outsider", "GET", "/api/openapi.json", 401),
    ("disabled", "GET", R, 401),
    ("disabled", "DELETE", R + "/{editor_rec}", 401),
]


@pytest.fixture
def data(live_server, personas, api_token_for):
    return make_data_server(live_server, personas, api_token_for)


def test_the_access_table_of_the_data_api(data):
    seen = []
    for number, (who, method, path, _expected) in enumerate(TABLE):
        admin_rec = data.call("admin", "POST", R, json={"title": f"admin {number}"}).json()["id"]
        editor_rec = data.call("editor", "POST", R, json={"title": f"editor {number}"}).json()["id"]
        url = path.format(admin_rec=admin_rec, editor_rec=editor_rec)
        body = None
        if method in ("POST", "PATCH") and "/restore" not in url:
            body = {"title": f"row {number}"} if "/records" in url else {"label": f"Items {number}"}
            if url == "/api/collections":
                body = {"name": f"made_{number}", "label": "Made"}
        answer = data.call(who, method, url, json=body)
        seen.append((who, method, path, answer.status_code))
    assert seen == [(who, method, path, expected) for who, method, path, expected in TABLE]


def test_a_viewer_never_learns_of_a_collection_it_cannot_view(data):
    listed = data.call("viewer", "GET", "/api/collections").json()["items"]
    assert [c["name"] for c in listed] == ["items"]
    document = data.call("viewer", "GET", "/api/openapi.json").json()
    assert not any("hidden" in path for path in document["paths"])
    unknown = data.call("viewer", "GET", "/api/collections/nothing_here/records")
    hidden = data.call("viewer", "GET", "/api/collections/hidden/records")
    assert unknown.status_code == hidden.status_code == 404
    assert unknown.json()["error"]["code"] == hidden.json()["error"]["code"] == "not_found"


def test_an_editor_limited_to_own_records_may_still_view_all_but_change_only_its_own(data):
    theirs = data.call("admin", "POST", R, json={"title": "theirs", "quantity": 1}).json()
    data.call("editor", "POST", R, json={"title": "mine", "quantity": 2})
    listed = data.call("editor", "GET", R, params={"ordering": "title"}).json()
    assert [r["title"] for r in listed["items"]] == ["mine", "theirs"]
    refused = data.call("editor", "PATCH", f"{R}/{theirs['id']}", json={"quantity": 5})
    assert refused.status_code == 403
    assert data.call("admin", "GET", f"{R}/{theirs['id']}").json()["quantity"] == 1
