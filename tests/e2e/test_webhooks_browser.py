"""An admin connects a webhook from the pages in a real browser, copies the secret once, and sees the
deliveries the real server sends to a real receiver; the pages fit a 1280 px screen and a 390 px phone."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.accounts.users import get_user
from appliance.records.write import create_record
from appliance.storage.db import database
from tests.appliance.data_helpers import make_orders
from tests.e2e.conftest import sign_in, url
from tests.waiting import eventually
from tests.webhook_receiver import receiver_fixture  # noqa: F401 - a fixture

SHOTS = Path("/tmp/shots")


@pytest.fixture
def orders(instance, personas):
    with database.connection_context():
        make_orders(get_user(personas.admin.id))


def _fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page is wider than the screen"


def test_an_admin_connects_a_webhook_and_sees_its_deliveries(browser_page, e2e_server, personas, orders, receiver):
    SHOTS.mkdir(exist_ok=True)
    page = browser_page
    sign_in(page, e2e_server, personas.admin.email, personas.admin.password)
    page.goto(url(e2e_server, "/admin/webhooks"))
    assert page.locator("#private-networks").inner_text().startswith("Webhooks may call any address")
    page.fill("#new-url", receiver.url)
    page.select_option("#new-collection", "orders")
    page.fill("#new-description", "The accounting program")
    with page.expect_navigation():
        page.click("button:has-text('Create webhook')")
    secret = page.locator("#secret code").inner_text().strip()
    assert secret.startswith("whsec_")
    receiver.secret = secret
    receiver.fail_next(1)
    with database.connection_context():
        admin = get_user(personas.admin.id)
        for title in ("Chairs", "Tables", "Lamps"):
            create_record("orders", {"title": title, "quantity": 2, "unit_price": 40}, admin)
    eventually(lambda: len(receiver.received) >= 3, timeout=20)
    page.reload()
    assert page.locator("#secret").count() == 0  # shown once
    eventually(lambda: page.reload() or page.locator("table.deliveries tbody tr").count() == 3, timeout=10)
    assert all(r.verified for r in receiver.received)
    text = page.locator("table.deliveries").inner_text()
    assert "delivered" in text and "pending" in text and "500" in text
    page.screenshot(path=str(SHOTS / "webhook-detail-1280.png"), full_page=True)
    page.goto(url(e2e_server, "/admin/webhooks"))
    page.screenshot(path=str(SHOTS / "webhooks-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    _fits(page, 390)
    page.screenshot(path=str(SHOTS / "webhooks-390.png"), full_page=True)
    page.click("text=" + receiver.url)
    _fits(page, 390)
    page.screenshot(path=str(SHOTS / "webhook-detail-390.png"), full_page=True)
