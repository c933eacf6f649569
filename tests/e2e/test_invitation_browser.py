"""An invitation in a real browser: the admin invites by email, the mail arrives at a real SMTP server, the
invitee opens the link, is told what is wrong beside the field, chooses a password and is signed in; the link
then says it was used. And the link pages and the invite form fit a phone (screenshots in /tmp/shots/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.accounts.invitations import invite_user
from appliance.accounts.password_resets import create_reset_link
from appliance.config.settings import write_settings
from appliance.storage.db import database
from tests.conftest import TEST_PASSWORD_HASHING
from tests.e2e.conftest import sign_in, url
from tests.mailbox import mailbox  # noqa: F401 - fixture

SHOTS = Path("/tmp/shots")
PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}


@pytest.fixture
def home(home, mailbox):  # noqa: F811 - the shared home, with mail through the test's SMTP server
    write_settings(home / "appliance.toml", {**TEST_PASSWORD_HASHING, **mailbox.settings()})
    return home


def test_an_invitee_sets_their_password_in_the_browser_and_is_signed_in(e2e_server, personas, browser_page, mailbox):  # noqa: F811
    page = browser_page
    sign_in(page, e2e_server, personas.admin.email, personas.admin.password)
    page.goto(url(e2e_server, "/admin/users/invite"))
    page.fill("#invite-email", "erin@example.com")
    page.fill("#invite-name", "Erin Example")
    page.select_option("#invite-role", "viewer")
    with page.expect_navigation():
        page.click("button:has-text('Send invitation')")
    assert "Invitation mailed to erin@example.com" in page.content()
    [message] = mailbox.wait_for(1)
    link = re.search(r"(http://\S+/invite/\S+)", message.get_payload(decode=True).decode()).group(1)

    page.goto(url(e2e_server, "/logout"))
    with page.expect_navigation():
        page.click("main button:has-text('Sign out')")
    page.goto(link)
    assert page.locator("h1").inner_text() == "Welcome, Erin Example"
    page.fill("#f-password", "erin")
    page.fill("#f-password_confirm", "erin")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator("#f-password-note.invalid-feedback").inner_text() == "Use at least 10 characters."

    page.fill("#f-password", "erin-chose-this-one")
    page.fill("#f-password_confirm", "erin-chose-this-one")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "Welcome, Erin Example! Your password is set and you are signed in." in page.content()
    assert page.evaluate("fetch('/api/me').then(r => r.json())")["email"] == "erin@example.com"

    page.goto(link)
    assert "has been used already" in page.locator("#link-problem").inner_text()


def test_the_link_pages_and_the_invite_form_fit_a_phone_and_a_desktop(e2e_server, personas, browser_page):
    page = browser_page
    with database.connection_context():
        invited = invite_user("erin@example.com", "Erin Example", "viewer", actor="test")
        reset = create_reset_link(personas.editor.id, actor="test")
    SHOTS.mkdir(exist_ok=True)
    too_wide = {}
    for label, size in (("1280", WIDE), ("390", PHONE)):
        page.set_viewport_size(size)
        public = {"forgot": "/forgot", "reset": f"/reset/{reset.secret}", "invite": f"/invite/{invited.secret}"}
        for name, path in public.items():
            page.goto(url(e2e_server, path))
            page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > size["width"]:
                too_wide[f"{path} at {label}"] = width
    sign_in(page, e2e_server, personas.admin.email, personas.admin.password)
    for label, size in (("1280", WIDE), ("390", PHONE)):
        page.set_viewport_size(size)
        for name, path in (("admin-invite", "/admin/users/invite"), ("admin-users", "/admin/users")):
            page.goto(url(e2e_server, path))
            page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > size["width"]:
                too_wide[f"{path} at {label}"] = width
    assert too_wide == {}, f"wider than the screen: {too_wide}"
