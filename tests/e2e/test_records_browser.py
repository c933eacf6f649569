"""The staff record pages in headless Chromium: sign in, create with a file, a refused edit, search and
filter, restore a version. Every page is checked by the guard of conftest.py (no inline script, no
other host)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError

from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.records.write import create_record, update_record
from appliance.storage.db import database
from tests.e2e.conftest import inline_scripts, sign_in, url

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
ORDERS = {
    "name": "orders",
    "label": "Orders",
    "fields": [
        {"name": "title", "type": "text", "required": True, "unique": True},
        {"name": "quantity", "type": "integer", "min": 0, "filterable": True},
        {"name": "due", "type": "date"},
        {"name": "status", "type": "select", "choices": ["open", "paid"], "default": "open", "filterable": True},
        {"name": "contract", "type": "file", "max_size": 4096, "accept": ["application/pdf"]},
        {"name": "notes", "type": "long_text"},
    ],
    "permissions": {"editor": ["view", "create", "update:own", "delete:own"], "viewer": ["view"]},
}


@pytest.fixture
def orders(instance, personas):
    """The ``orders`` collection, made before the server starts; returns the personas."""
    with database.connection_context():
        create_collection(ORDERS, get_user(personas.admin.id))
    return personas


def test_the_guard_names_inline_scripts_and_handlers():
    assert inline_scripts('<script src="/static/x.js"></script><a href="/">ok</a>') == []
    found = inline_scripts('<script>alert(1)</script><button onclick="x()">b</button><a href="javascript:x()">a</a>')
    assert len(found) == 3


def test_the_guard_catches_a_request_to_another_host(e2e_server, browser_page, request):
    browser_page.goto(url(e2e_server, "/login"))
    with pytest.raises(PlaywrightError, match=r"net::ERR_"):
        browser_page.goto("http://example.invalid/")
    guard = request.node._page_guard
    assert guard.violations == ["requested another host: GET http://example.invalid/"]
    guard.violations.clear()  # this test meant to break the rule


def test_signing_in_leads_to_the_collections_with_their_counts(e2e_server, orders, browser_page):
    page = browser_page
    page.goto(url(e2e_server, "/c/orders"))
    assert "/login" in page.url  # signed out: sent to sign in first, then back
    page.fill("input[name=email]", orders.viewer.email)
    page.fill("input[name=password]", orders.viewer.password)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert urlsplit(page.url).path == "/c/orders"
    assert "There are no records in Orders yet." in page.inner_text("main")
    page.click("text=Office Appliance")
    assert page.inner_text("#collections .list-group").split() == ["Orders", "0", "records"]
    assert "Viewer viewer" in page.inner_text("nav")  # the signed-in user (name and role) is shown


def test_creating_a_record_with_a_file(e2e_server, orders, browser_page):
    page = browser_page
    sign_in(page, e2e_server, orders.editor.email, orders.editor.password)
    page.goto(url(e2e_server, "/c/orders"))
    page.click("text=Create the first one")
    page.fill("#f-title", "Desk for Bob")
    page.fill("#f-quantity", "3")
    page.fill("#f-due", "2026-04-01")
    page.select_option("#f-status", "paid")
    page.set_input_files("#f-contract", {"name": "contract.pdf", "mimeType": "application/pdf", "buffer": PDF})
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert re.search(r"/c/orders/\d+$", page.url)
    assert "Orders: Desk for Bob was created." in page.inner_text("main")
    assert page.inner_text("#value-due") == "2026-04-01" and page.inner_text("#value-status") == "paid"
    link = page.locator("#files a")
    assert link.inner_text() == "contract.pdf"
    with page.expect_download() as download:
        link.click()
    assert download.value.path().read_bytes() == PDF
    assert "Version 1: created by bob@example.com" in page.inner_text("#history")


def test_an_edit_with_a_validation_error_keeps_what_was_typed_then_saves(e2e_server, orders, browser_page):
    with database.connection_context():
        record = create_record("orders", {"title": "Chair", "quantity": 2}, get_user(orders.editor.id))
    page = browser_page
    sign_in(page, e2e_server, orders.editor.email, orders.editor.password)
    page.goto(url(e2e_server, f"/c/orders/{record['id']}"))
    page.click("main >> text=Edit")
    page.fill("#f-quantity", "-5")
    page.fill("#f-notes", "Typed notes stay")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.inner_text("#f-quantity-note") == "Enter 0 or more."
    assert "is-invalid" in page.get_attribute("#f-quantity", "class")
    assert page.input_value("#f-quantity") == "-5" and page.input_value("#f-notes") == "Typed notes stay"
    page.fill("#f-quantity", "5")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.inner_text("#value-quantity") == "5" and page.inner_text("#value-notes") == "Typed notes stay"


def test_search_and_filter_make_a_shareable_link(e2e_server, orders, browser_page):
    with database.connection_context():
        admin = get_user(orders.admin.id)
        for n in range(25):
            status = "paid" if n % 5 == 0 else "open"
            create_record("orders", {"title": f"Lamp {n:02}" if n < 23 else f"Table {n}", "status": status}, admin)
    page = browser_page
    sign_in(page, e2e_server, orders.viewer.email, orders.viewer.password)
    page.goto(url(e2e_server, "/c/orders"))
    assert "25 records" in page.inner_text("main") and page.locator("tbody tr").count() == 20
    page.fill("#q", "lamp")
    with page.expect_navigation():
        page.click("text=Apply")
    assert "23 records" in page.inner_text("main")
    with page.expect_navigation():
        page.click("a[rel=next]")
    assert page.locator("tbody tr").count() == 3
    assert parse_qs(urlsplit(page.url).query) == {"search": ["lamp"], "page": ["2"]}
    page.select_option("#flt-status", "paid")
    with page.expect_navigation():
        page.click("text=Apply")
    titles = page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert titles == ["Lamp 00", "Lamp 05", "Lamp 10", "Lamp 15", "Lamp 20"]
    shared = page.url
    with page.expect_navigation():
        page.click("thead >> text=title")
    with page.expect_navigation():
        page.click("thead >> text=title")  # again: the other way round
    assert page.locator("tbody tr td:nth-child(2)").first.inner_text() == "Lamp 20"
    page.goto(shared)  # the link shows the same view
    assert page.locator("tbody tr").count() == 5
    page.fill("#q", "nosuchword")
    with page.expect_navigation():
        page.click("text=Apply")
    assert "No records match this search." in page.inner_text("main")


def test_restoring_a_version(e2e_server, orders, browser_page):
    with database.connection_context():
        editor = get_user(orders.editor.id)
        record = create_record("orders", {"title": "Shelf", "quantity": 1}, editor)
        update_record("orders", record["id"], {"title": "Shelf (broken)", "quantity": 0}, editor)
    page = browser_page
    sign_in(page, e2e_server, orders.editor.email, orders.editor.password)
    page.goto(url(e2e_server, f"/c/orders/{record['id']}"))
    assert "title: Shelf → Shelf (broken)" in page.inner_text("#version-2")
    with page.expect_navigation():
        page.click("text=Restore version 1")
    assert "Version 1 was restored." in page.inner_text("main")
    assert page.inner_text("h1") == "Shelf" and page.inner_text("#value-quantity") == "1"
    assert "Version 3: restored by bob@example.com" in page.inner_text("#history")
