"""In headless Chromium: a CSV import with a bad row lists it and saves nothing; the corrected file then imports."""

from __future__ import annotations

from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.storage.db import database
from tests.e2e.conftest import sign_in, url
from tests.webapp.data_server import CSV_ORDERS as ORDERS

BAD = b'title;quantity\nDesk;2\n"Chair\nwith arms";-3\nLamp;1\n'
GOOD = '\ufefftitle;quantity\nDesk;2\n"Chair\nwith arms";3\nLamp;1\n'.encode()


def choose_and_upload(page, server, body: bytes) -> None:
    page.set_input_files("input[name=file]", files=[{"name": "orders.csv", "mimeType": "text/csv", "buffer": body}])
    with page.expect_navigation():
        page.click("button[type=submit]:has-text('Upload and preview')")


def test_an_import_with_a_bad_row_then_a_good_file(browser_page, e2e_server, personas):
    with database.connection_context():
        create_collection(ORDERS, get_user(personas.admin.id))
    page = browser_page
    sign_in(page, e2e_server, personas.editor.email, personas.editor.password)

    page.goto(url(e2e_server, "/c/orders/import"))
    choose_and_upload(page, e2e_server, BAD)
    assert page.locator("#preview tbody tr").count() == 3
    assert page.locator("select[name=map-0]").input_value() == "title"
    page.click("button:has-text('Import 3 rows')")
    page.wait_for_selector("#import-error")
    bad_rows = page.locator("#bad-rows tbody tr")
    assert bad_rows.count() == 1
    assert bad_rows.first.inner_text().split("\t")[:2] == ["3", "quantity"]
    assert "Nothing was imported" in page.content()

    choose_and_upload(page, e2e_server, GOOD)
    page.click("button:has-text('Import 3 rows')")
    page.wait_for_selector("#import-state.alert-success")
    assert "Imported 3 records." in page.inner_text("#import-state")

    answer = page.request.get(url(e2e_server, "/api/collections/orders/records?ordering=title"))
    assert [r["title"] for r in answer.json()["items"]] == ["Chair\nwith arms", "Desk", "Lamp"]
