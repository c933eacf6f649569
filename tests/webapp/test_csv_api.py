"""The CSV API over a real server: export with filters and permissions, all-or-nothing import, access."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.conftest import browser_sign_in
from tests.webapp.data_server import running_data_server

R = "/api/collections/items/records"
EXPORT = "/api/collections/items/export.csv"
IMPORT = "/api/collections/items/import"


@pytest.fixture
def data(home, personas, api_token_for):
    with running_data_server(home, personas, api_token_for, env={"APPLIANCE_MAX_UPLOAD_MB": "1"}) as data:
        yield data


def upload(text: str | bytes, name: str = "items.csv") -> dict:
    body = text.encode() if isinstance(text, str) else text
    return {"files": {"file": (name, body, "text/csv")}}


def test_export_answers_a_csv_download_of_the_filtered_records(data):
    for title, quantity in (("a", 1), ("b", 5), ("c", 9)):
        assert data.call("admin", "POST", R, json={"title": title, "quantity": quantity, "price": 2}).status_code == 201
    answer = data.call("viewer", "GET", EXPORT, params={"quantity__gte": "5", "ordering": "-quantity"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="items-\d{4}-\d\d-\d\d\.csv"', answer.headers["Content-Disposition"])
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8"))))
    assert [(r["title"], r["quantity"], r["total"]) for r in rows] == [("c", "9", "18"), ("b", "5", "10")]
    bad = data.call("viewer", "GET", EXPORT, params={"colour": "red"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"


def test_import_creates_every_row_or_answers_422_listing_each_bad_line(data):
    bad = data.call("editor", "POST", IMPORT, **upload("title;quantity\nDesk;2\nChair;many\n;3\n"))
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["rows"] == [
        {"line": 3, "fields": {"quantity": "Enter a whole number."}},
        {"line": 4, "fields": {"title": "This field is required."}},
    ]
    assert data.call("editor", "GET", R).json()["total_items"] == 0
    good = data.call("editor", "POST", IMPORT, **upload('\ufefftitle;quantity\nDesk;2\n"Chair\nlarge";3\n'))
    assert good.status_code == 201 and good.json() == {"created": 2}
    listing = data.call("editor", "GET", R, params={"ordering": "title"}).json()
    assert [r["title"] for r in listing["items"]] == ["Chair\nlarge", "Desk"]
    assert all(r["created_by"] == data.personas.editor.id for r in listing["items"])
    events = data.call("admin", "GET", "/api/audit", params={"action": "records.imported"}).json()["items"]
    assert events[0]["details"]["created"] == 2


def test_import_refuses_what_is_not_a_usable_file(data):
    assert data.call("editor", "POST", IMPORT, json={"title": "x"}).status_code == 400
    assert data.call("editor", "POST", IMPORT, files={"other": ("a.csv", b"title\nx\n")}).status_code == 400
    latin = data.call("editor", "POST", IMPORT, **upload("title\nCaf\u00e9\n".encode("latin-1")))
    assert latin.status_code == 400 and "UTF-8" in latin.json()["error"]["message"]
    unknown = data.call("editor", "POST", IMPORT, **upload("title,colour\nx,red\n"))
    assert unknown.status_code == 422 and "colour" in unknown.json()["error"]["fields"]["mapping"]
    too_big = data.call("editor", "POST", IMPORT, **upload("title\n" + "x\n" * 600_000))
    assert too_big.status_code == 413
    assert data.call("editor", "GET", R).json()["total_items"] == 0


ACCESS = [
    (None, "GET", EXPORT, 401),
    (None, "POST", IMPORT, 401),
    ("viewer", "GET", EXPORT, 200),
    ("viewer", "POST", IMPORT, 403),
    ("editor_read", "POST", IMPORT, 403),
    ("editor", "POST", IMPORT, 201),
    ("viewer", "GET", "/api/collections/hidden/export.csv", 404),
    ("viewer", "POST", "/api/collections/hidden/import", 404),
    ("admin", "GET", "/api/collections/hidden/export.csv", 200),
]


def test_the_access_table_of_the_csv_api(data):
    # One server for the whole table: starting one per row would cost seconds each.
    answers = []
    for number, (who, method, path, _status) in enumerate(ACCESS):
        kwargs = upload(f"title\nrow {number}\n") if method == "POST" else {}
        answers.append((who, method, path, data.call(who, method, path, **kwargs).status_code))
    assert answers == [(who, method, path, status) for who, method, path, status in ACCESS]


def test_a_signed_in_browser_imports_with_its_csrf_token_and_not_without(data):
    session, token = browser_sign_in(data.server.url, data.personas.editor.email, data.personas.editor.password)
    url = data.server.url + IMPORT.lstrip("/")
    assert session.post(url, timeout=10, **upload("title\nx\n")).status_code == 400  # CSRF refused
    answer = session.post(url, headers={"X-CSRFToken": token}, timeout=10, **upload("title\nx\n"))
    assert answer.status_code == 201
    assert session.get(data.server.url + EXPORT.lstrip("/"), timeout=10).text.count("\n") == 2
