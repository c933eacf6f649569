"""Staff CSV pages: export with the list's filters, and the import in three plain forms with progress."""

from __future__ import annotations

import io
import re

import pytest

from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.records.query import list_records
from tests.conftest import csrf_token_in, post_form
from tests.waiting import eventually
from tests.webapp.data_server import CSV_ORDERS as ORDERS


@pytest.fixture
def sign_in(signed_in, personas):
    """The orders collection, then ``signed_in`` of tests/conftest.py."""
    create_collection(ORDERS, get_user(personas.admin.id))
    return signed_in


def upload(client, body: bytes):
    return post_form(
        client, "/c/orders/import", {"file": (io.BytesIO(body), "orders.csv")}, content_type="multipart/form-data"
    )


def run_and_wait(client, job_path: str, mapping: dict[str, str]) -> str:
    page = client.get(job_path).get_data(as_text=True)
    answer = client.post(job_path + "/run", data={"csrf_token": csrf_token_in(page), **mapping})
    assert answer.status_code == 302

    def finished_page() -> str | None:
        page = client.get(job_path).get_data(as_text=True)
        return page if 'http-equiv="refresh"' not in page else None  # the progress page refreshes itself

    return eventually(finished_page, timeout=20, message="the import did not finish")


def test_an_import_with_a_bad_row_lists_it_and_saves_nothing_then_a_good_file_imports(sign_in, personas):
    editor = sign_in("editor")
    answer = upload(editor, b"Title;Qty\nDesk;2\nChair;lots\n")
    assert answer.status_code == 302
    job_path = answer.headers["Location"]
    preview = editor.get(job_path).get_data(as_text=True)
    assert "2 rows to import" in preview and "<td>Chair</td>" in preview
    assert re.search(r'name="map-0".*?value="title" selected', preview, re.S)  # "Title" matched the field
    failed = run_and_wait(editor, job_path, {"map-0": "title", "map-1": "quantity"})
    assert "Nothing was imported" in failed
    assert re.search(r"<td>3</td><td>quantity</td><td>Enter a whole number.</td>", failed)
    assert list_records("orders", get_user(personas.admin.id), {})["total_items"] == 0

    good = upload(editor, b"Title;Qty\nDesk;2\nChair;4\n")
    done = run_and_wait(editor, good.headers["Location"], {"map-0": "title", "map-1": "quantity"})
    assert "Imported 2 records." in done
    assert list_records("orders", get_user(personas.admin.id), {})["total_items"] == 2
    assert editor.post(good.headers["Location"] + "/run", data={"csrf_token": csrf_token_in(done)}).status_code == 409


def test_an_unreadable_file_is_a_form_error_and_a_bad_mapping_shows_again(sign_in):
    editor = sign_in("editor")
    bad = upload(editor, "title\nCaf\u00e9\n".encode("latin-1"))
    assert (
        bad.status_code == 400 and "UTF-8" in bad.get_data(as_text=True) and "is-invalid" in bad.get_data(as_text=True)
    )
    job_path = upload(editor, b"a,b\n1,2\n").headers["Location"]
    page = editor.get(job_path).get_data(as_text=True)
    refused = editor.post(job_path + "/run", data={"csrf_token": csrf_token_in(page), "map-0": "", "map-1": ""})
    assert refused.status_code == 422 and "No column fills a field" in refused.get_data(as_text=True)


def test_who_may_use_the_csv_pages(sign_in):
    viewer = sign_in("viewer")
    assert viewer.get("/c/orders/import").status_code == 403
    assert viewer.get("/c/orders/export.csv").status_code == 200
    editor = sign_in("editor")
    job_path = upload(editor, b"title\nx\n").headers["Location"]
    other = sign_in("admin")
    assert other.get(job_path).status_code == 404  # an import is its uploader's own
    assert sign_in("editor").get("/c/hidden/import").status_code == 404


def test_the_export_link_carries_the_list_filters(sign_in, personas):
    from appliance.records.write import create_record

    for title, quantity in (("a", 1), ("b", 5)):
        create_record("orders", {"title": title, "quantity": quantity}, get_user(personas.admin.id))
    answer = sign_in("viewer").get("/c/orders/export.csv?quantity__gte=2")
    assert re.fullmatch(r'attachment; filename="orders-\d{4}-\d\d-\d\d\.csv"', answer.headers["Content-Disposition"])
    lines = answer.get_data(as_text=True).splitlines()
    assert len(lines) == 2 and lines[1].split(",")[5] == "b"
