"""An admin makes an email rule on /admin/rules in the browser; the running server's rules loop mails on
the next create (real SMTP), the run log shows it, a test run shows the mail; the pages fit 1280 and 390 px."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.config.settings import write_settings
from appliance.records.write import create_record
from appliance.storage.db import database
from tests.appliance.data_helpers import ORDER_FIELDS
from tests.e2e.conftest import sign_in, url
from tests.mailbox import mailbox  # noqa: F401  (the fixture)
from tests.waiting import eventually

SHOTS = Path("/tmp/shots")


@pytest.fixture
def orders(home, instance, personas, mailbox):  # noqa: F811
    write_settings(home / "appliance.toml", {**mailbox.settings(), "rules_poll_seconds": 0.2})
    with database.connection_context():
        create_collection(
            {"name": "orders", "label": "Orders", "fields": ORDER_FIELDS, "permissions": {}},
            get_user(personas.admin.id),
        )
    return mailbox


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, f"{page.url} is {width} px wide"


def test_an_admin_makes_an_email_rule_in_the_browser_and_it_mails_on_create(orders, e2e_server, browser_page, personas):
    page = browser_page
    sign_in(page, e2e_server, personas.admin.email, personas.admin.password)
    page.click(".nav-row >> text=Rules")
    page.click("text=New rule")
    page.fill("#r-name", "Tell the warehouse")
    page.fill("#r-filter", "quantity__gte=2")
    page.fill("#r-to", "warehouse@example.com")
    page.fill("#r-subject", "New order {title}")
    page.fill("#r-body", "{quantity} x {title}")
    with page.expect_navigation():
        page.click("text=Save rule")
    assert "reacts to changes from now on" in page.content()
    rule_path = page.url
    with database.connection_context():
        admin = get_user(personas.admin.id)
        made = create_record("orders", {"title": "Chairs", "quantity": 4}, admin)
    [message] = orders.wait_for(1)
    assert message["Subject"] == "New order Chairs" and message["To"] == "warehouse@example.com"

    def logged():
        page.goto(rule_path)
        return "sent “New order Chairs” to warehouse@example.com" in page.content() or None

    eventually(logged, timeout=10, message="the run log shows the mail")
    page.fill("#t-record", str(made["id"]))
    with page.expect_navigation():
        page.click("text=Test run")
    assert "4 x Chairs" in page.inner_text("#test-result")
    assert len(orders.messages) == 1  # the test run sent nothing
    SHOTS.mkdir(exist_ok=True)
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(rule_path)
        page.fill("#t-record", str(made["id"]))
        with page.expect_navigation():
            page.click("text=Test run")
        _fits(page)
        page.screenshot(path=str(SHOTS / f"rule-{width}.png"), full_page=True)
        page.goto(url(e2e_server, "/admin/rules"))
        _fits(page)
        page.screenshot(path=str(SHOTS / f"rules-{width}.png"), full_page=True)
