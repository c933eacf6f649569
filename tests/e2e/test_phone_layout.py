"""On a 390 px phone no page is wider than the screen, and the navigation is a menu that opens without script."""

from __future__ import annotations

import pytest

from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.records.write import create_record, update_record
from appliance.storage.db import database
from tests.e2e.conftest import sign_in, url

PHONE = {"width": 390, "height": 844}
WIDE_ORDERS = {
    "name": "orders_with_a_rather_long_collection_name",
    "label": "Orders with a rather long label for a phone",
    "fields": [
        {"name": "title", "type": "text", "required": True},
        {"name": "customer_reference_number", "type": "text", "filterable": True},
        {"name": "quantity", "type": "integer", "filterable": True},
        {"name": "unit_price", "type": "number"},
        {"name": "total", "type": "computed", "formula": "quantity * unit_price"},
        {"name": "status", "type": "select", "choices": ["open", "paid", "cancelled"], "filterable": True},
        {"name": "extra", "type": "json"},
        {"name": "parent", "type": "relation", "collection": "orders_with_a_rather_long_collection_name"},
    ],
    "permissions": {"editor": ["view", "create"], "viewer": ["view"]},
}
NAME = WIDE_ORDERS["name"]


@pytest.fixture
def orders(instance, personas):
    with database.connection_context():
        admin = get_user(personas.admin.id)
        create_collection(WIDE_ORDERS, admin)
        record = create_record(
            NAME,
            {
                "title": "A order with a long title that goes on and on",
                "customer_reference_number": "CUST-000000000000000001",
                "quantity": 3,
                "unit_price": 17.8,
                "extra": {"a_long_key_name": "a long value " * 5},
            },
            admin,
        )
        update_record(NAME, record["id"], {"status": "paid"}, admin)
    return record["id"]


@pytest.fixture
def operations(instance):
    """A backup in the list and a finished run in the backup job's history (the admin pages with rows)."""
    import datetime as dt

    from appliance.jobs import definitions as jobs
    from appliance.jobs.builtin import take_backup

    with database.connection_context():
        jobs.ensure_jobs(instance.settings)
        started = dt.datetime(2026, 11, 25, 13, 51)
        jobs.JobRun.create(
            job="backup",
            trigger="schedule",
            started_at=started,
            finished_at=started + dt.timedelta(seconds=3),
            outcome="ok",
            message="wrote backup-20261125T135100Z.zip (1.2 MB) and verified it; copied it to the offsite folder",
            duration_seconds=3.2,
        )
    take_backup(instance, kind="manual")


PAGES = [
    "/",
    f"/c/{NAME}",
    f"/c/{NAME}/1",
    f"/c/{NAME}/new",
    f"/c/{NAME}/import",
    "/admin/collections",
    f"/admin/collections/{NAME}",
    "/admin/audit",
    "/admin/audit?since=yesterday",
    "/admin/settings",
    "/account",
    "/admin/jobs",
    "/admin/jobs/backup/runs",
    "/admin/backups",
    "/admin/users",
    "/admin/users/{admin_id}",
]


def test_no_main_page_is_wider_than_a_phone_and_the_menu_opens_without_script(
    e2e_server, personas, orders, operations, browser_page, tmp_path
):
    page = browser_page
    page.set_viewport_size(PHONE)
    sign_in(page, e2e_server, personas.admin.email, personas.admin.password)
    too_wide = {}
    for path in PAGES:
        path = path.format(admin_id=personas.admin.id)
        page.goto(url(e2e_server, path))
        width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(tmp_path / (path.strip("/").replace("/", "_").replace("?", "_") or "home")) + ".png")
        if width > PHONE["width"]:
            too_wide[path] = width
        nav_height = page.evaluate("document.querySelector('nav.navbar').getBoundingClientRect().height")
        assert nav_height < 80, f"{path}: the navigation takes {nav_height} px"
    assert too_wide == {}, f"pages wider than {PHONE['width']} px: {too_wide} (screenshots in {tmp_path})"

    # The menu: closed, its links are hidden; a tap on "Menu" shows them, and they work.
    page.goto(url(e2e_server, "/"))
    audit_link = page.locator("details.nav-menu a[href='/admin/audit']")
    assert not audit_link.is_visible()
    page.click("details.nav-menu > summary")
    assert audit_link.is_visible()
    with page.expect_navigation():
        audit_link.click()
    assert page.url.endswith("/admin/audit")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_on_a_wide_screen_the_links_are_in_a_row_and_the_menu_is_hidden(e2e_server, personas, orders, browser_page):
    page = browser_page
    sign_in(page, e2e_server, personas.admin.email, personas.admin.password)
    page.goto(url(e2e_server, "/"))
    assert page.locator(".nav-row a[href='/admin/audit']").is_visible()
    assert not page.locator("details.nav-menu").is_visible()
