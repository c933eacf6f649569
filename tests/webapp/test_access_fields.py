"""The access table of field permissions: each face x hidden / read-only x role, against a real server.

``staff`` hides ``salary`` and ``note`` from viewers (and so ``yearly``, computed from ``salary``),
hides ``note`` from editors and makes ``salary`` read-only for them; admins see and change everything.
Each row reads (persona, face, what that persona observes); a face is one way of reaching the data:
the API's record, listing, filters, ordering and search, the definition, CSV export and import,
history and its restore, the OpenAPI document, the record pages and writes.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.conftest import browser_sign_in
from tests.webapp.data_server import make_data_server

STAFF = {
    "name": "staff",
    "label": "Staff",
    "fields": [
        {"name": "name", "type": "text", "required": True},
        {"name": "salary", "type": "integer"},
        {"name": "note", "type": "text"},
        {"name": "yearly", "type": "computed", "formula": "salary * 12"},
        {"name": "level", "type": "select", "choices": ["junior", "senior"]},
    ],
    "permissions": {
        "editor": ["view", "create", "update", "delete"],
        "viewer": ["view"],
        "fields": {"viewer": {"hidden": ["salary", "note"]}, "editor": {"hidden": ["note"], "read_only": ["salary"]}},
    },
}
C = "/api/collections/staff"
R = C + "/records"
# The fields whose showing the table watches.
WATCH = {"salary", "note", "yearly"}
ALL, EDITOR_SEES, NONE = ["note", "salary", "yearly"], ["salary", "yearly"], []


def _watched(names) -> list[str]:
    return sorted(set(names) & WATCH)


class Faces:
    """Each face as a method ``face(who) -> what who observes``; ``self.rec`` is a record the admin made
    (salary changed once by the admin, level once by the editor) whose note holds the word "quokka"."""

    def __init__(self, data, pages):
        self.data, self.pages = data, pages
        made = data.call("admin", "POST", R, json={"name": "Ann", "salary": 100, "note": "quokka", "level": "junior"})
        assert made.status_code == 201, made.text
        self.rec = made.json()["id"]
        assert data.call("admin", "PATCH", f"{R}/{self.rec}", json={"salary": 200}).status_code == 200
        assert data.call("editor", "PATCH", f"{R}/{self.rec}", json={"level": "senior"}).status_code == 200

    def call(self, who, method, path, **kwargs):
        return self.data.call(who, method, path, **kwargs)

    def record(self, who):
        return _watched(self.call(who, "GET", f"{R}/{self.rec}").json())

    def listing(self, who):
        return _watched(self.call(who, "GET", R).json()["items"][0])

    def definition(self, who):
        return _watched(f["name"] for f in self.call(who, "GET", C).json()["fields"])

    def filter_salary(self, who):
        return self.call(who, "GET", R, params={"salary": "200"}).status_code

    def filter_note(self, who):
        return self.call(who, "GET", R, params={"note__icontains": "quo"}).status_code

    def order_salary(self, who):
        return self.call(who, "GET", R, params={"ordering": "-salary"}).status_code

    def order_yearly(self, who):
        return self.call(who, "GET", R, params={"ordering": "yearly"}).status_code

    def search_hidden_text(self, who):
        return self.call(who, "GET", R, params={"search": "quokka"}).json()["total_items"]

    def search_visible_text(self, who):
        return self.call(who, "GET", R, params={"search": "Ann"}).json()["total_items"]

    def csv_columns(self, who):
        text = self.call(who, "GET", C + "/export.csv").text
        return _watched(next(csv.reader(io.StringIO(text))))

    def csv_search_hidden_text(self, who):
        text = self.call(who, "GET", C + "/export.csv", params={"search": "quokka"}).text
        return len(list(csv.reader(io.StringIO(text)))) - 1

    def csv_import_salary_column(self, who):
        answer = self.call(who, "POST", C + "/import", files={"file": ("s.csv", f"name,salary\nImp {who},5\n")})
        return answer.status_code

    def csv_import_other_columns(self, who):
        answer = self.call(who, "POST", C + "/import", files={"file": ("s.csv", f"name,level\nOther {who},junior\n")})
        return answer.status_code

    def history(self, who):
        items = self.call(who, "GET", f"{R}/{self.rec}/history").json()["items"]
        return _watched({name for item in items for name in item["changes"]})

    def openapi_record(self, who):
        schemas = self.call(who, "GET", "/api/openapi.json").json()["components"]["schemas"]
        return _watched(schemas["staff.Record"]["properties"])

    def openapi_input(self, who):
        schemas = self.call(who, "GET", "/api/openapi.json").json()["components"]["schemas"]
        return _watched(schemas["staff.Input"]["properties"]) + _watched(schemas["staff.Patch"]["properties"])

    def write_salary(self, who):
        answer = self.call(who, "PATCH", f"{R}/{self.rec}", json={"salary": 200})
        return answer.status_code, sorted(answer.json().get("error", {}).get("fields", {}))

    def write_note(self, who):
        answer = self.call(who, "PATCH", f"{R}/{self.rec}", json={"note": "quokka"})
        return answer.status_code, answer.json().get("error", {}).get("fields", {})

    def create_with_salary(self, who):
        return self.call(who, "POST", R, json={"name": f"New {who}", "salary": 1}).status_code

    def restore(self, who):
        """Restore version 1 of a fresh record (salary 1, junior) changed since to salary 2, senior:
        (status, salary and level afterwards as the admin sees them)."""
        rec = self.call("admin", "POST", R, json={"name": f"Restored {who}", "salary": 1, "level": "junior"}).json()
        self.call("admin", "PATCH", f"{R}/{rec['id']}", json={"salary": 2, "level": "senior"})
        status = self.call(who, "POST", f"{R}/{rec['id']}/history/1/restore").status_code
        after = self.call("admin", "GET", f"{R}/{rec['id']}").json()
        return status, after["salary"], after["level"]

    def detail_page(self, who):
        html = self.pages[who].get(self.data.server.url + f"c/staff/{self.rec}", timeout=10).text
        return ("value-salary" in html, "value-yearly" in html, "quokka" in html)

    def list_page(self, who):
        html = self.pages[who].get(self.data.server.url + "c/staff", timeout=10).text
        return ("salary" in html, "quokka" in html)

    def search_page(self, who):
        html = self.pages[who].get(self.data.server.url + "c/staff?search=quokka", timeout=10).text
        return f"/c/staff/{self.rec}" in html

    def edit_form(self, who):
        answer = self.pages[who].get(self.data.server.url + f"c/staff/{self.rec}/edit", timeout=10)
        if answer.status_code != 200:
            return answer.status_code
        match = re.search(r'<input id="f-salary"[^>]*>', answer.text)
        if match is None:
            return "absent"
        return "disabled" if " disabled" in match.group(0) else "editable"

    def edit_form_sent(self, who):
        """The edit form sent as a browser sends it (disabled inputs are not sent): its status."""
        page = self.pages[who].get(self.data.server.url + f"c/staff/{self.rec}/edit", timeout=10)
        if page.status_code != 200:
            return page.status_code
        fields = dict(re.findall(r'<input id="f-[^"]*" name="([^"]+)"[^>]*value="([^"]*)"', page.text))
        fields.update(re.findall(r'name="(csrf_token)" value="([^"]+)"', page.text))
        fields["level"] = "senior"
        answer = self.pages[who].post(
            self.data.server.url + f"c/staff/{self.rec}/edit", data=fields, timeout=10, allow_redirects=False
        )
        return answer.status_code


TABLE = [
    # the record, the listing, the definition
    ("admin", "record", ALL),
    ("editor", "record", EDITOR_SEES),
    ("viewer", "record", NONE),
    ("admin", "listing", ALL),
    ("editor", "listing", EDITOR_SEES),
    ("viewer", "listing", NONE),
    ("admin", "definition", ALL),
    ("editor", "definition", EDITOR_SEES),
    ("viewer", "definition", NONE),
    # filters and ordering: a hidden field is an unknown one (400)
    ("admin", "filter_salary", 200),
    ("editor", "filter_salary", 200),
    ("viewer", "filter_salary", 400),
    ("admin", "filter_note", 200),
    ("editor", "filter_note", 400),
    ("viewer", "filter_note", 400),
    ("admin", "order_salary", 200),
    ("editor", "order_salary", 200),
    ("viewer", "order_salary", 400),
    ("viewer", "order_yearly", 400),
    # search: a hidden field's text finds nothing
    ("admin", "search_hidden_text", 1),
    ("editor", "search_hidden_text", 0),
    ("viewer", "search_hidden_text", 0),
    ("viewer", "search_visible_text", 1),
    # CSV
    ("admin", "csv_columns", ALL),
    ("editor", "csv_columns", EDITOR_SEES),
    ("viewer", "csv_columns", NONE),
    ("admin", "csv_search_hidden_text", 1),
    ("editor", "csv_search_hidden_text", 0),
    ("viewer", "csv_search_hidden_text", 0),
    ("admin", "csv_import_salary_column", 201),
    ("editor", "csv_import_salary_column", 403),
    ("viewer", "csv_import_salary_column", 403),
    ("editor", "csv_import_other_columns", 201),
    # history and its restore (a restore keeps what the restorer may not set)
    ("admin", "history", ALL),
    ("editor", "history", EDITOR_SEES),
    ("viewer", "history", NONE),
    ("admin", "restore", (200, 1, "junior")),
    ("editor", "restore", (200, 2, "junior")),
    ("viewer", "restore", (403, 2, "senior")),
    # OpenAPI of that role
    ("admin", "openapi_record", ALL),
    ("editor", "openapi_record", EDITOR_SEES),
    ("viewer", "openapi_record", NONE),
    ("admin", "openapi_input", ["note", "salary", "note", "salary"]),
    ("editor", "openapi_input", []),
    ("viewer", "openapi_input", []),
    # writes: a read-only field is 403 naming it; a hidden one is unknown
    ("admin", "write_salary", (200, [])),
    ("editor", "write_salary", (403, ["salary"])),
    ("viewer", "write_salary", (403, [])),
    ("admin", "write_note", (200, {})),
    ("editor", "write_note", (422, {"note": "Unknown field."})),
    ("admin", "create_with_salary", 201),
    ("editor", "create_with_salary", 403),
    # the record pages
    ("admin", "detail_page", (True, True, True)),
    ("editor", "detail_page", (True, True, False)),
    ("viewer", "detail_page", (False, False, False)),
    ("admin", "list_page", (True, True)),
    ("editor", "list_page", (True, False)),
    ("viewer", "list_page", (False, False)),
    ("admin", "search_page", True),
    ("editor", "search_page", False),
    ("viewer", "search_page", False),
    ("admin", "edit_form", "editable"),
    ("editor", "edit_form", "disabled"),
    ("viewer", "edit_form", 403),
    ("admin", "edit_form_sent", 302),
    ("editor", "edit_form_sent", 302),
]


@pytest.fixture
def faces(live_server, personas, api_token_for):
    data = make_data_server(live_server, personas, api_token_for)
    answer = data.call("admin", "POST", "/api/collections", json=STAFF)
    assert answer.status_code == 201, answer.text
    pages = {
        p.name: browser_sign_in(live_server.url, p.email, p.password)[0]
        for p in (personas.admin, personas.editor, personas.viewer)
    }
    return Faces(data, pages)


def test_the_access_table_of_field_permissions(faces):
    seen = [(who, face, getattr(faces, face)(who)) for who, face, _expected in TABLE]
    assert seen == TABLE


def test_an_editor_saving_the_form_keeps_the_read_only_value(faces):
    before = faces.call("admin", "GET", f"{R}/{faces.rec}").json()
    assert faces.edit_form_sent("editor") == 302
    after = faces.call("admin", "GET", f"{R}/{faces.rec}").json()
    assert (after["salary"], after["note"], after["level"]) == (before["salary"], before["note"], "senior")
