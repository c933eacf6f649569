"""In a real browser: an editor connects an AI agent from /account and copies its set-up; an admin approves
the agent's held write on /admin/agents. Both pages fit a 390 px phone. Screenshots go to ``$SHOTS_DIR``
(a temporary folder by default)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.accounts.tokens import authenticate_token
from appliance.agents.approvals import hold_write
from appliance.storage.db import database
from tests.e2e.conftest import sign_in, url
from tests.webapp.agent_helpers import CANARY, count_notes, hold_two

WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _fits(page, size: dict) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["width"], f"{page.url} is {width} px wide on a {size['width']} px screen"


def test_an_editor_connects_an_agent_and_an_admin_approves_its_write(e2e_server, personas, browser_page, shots):
    held = hold_two(personas)
    page = browser_page
    sign_in(page, e2e_server, personas.editor.email, personas.editor.password)
    page.goto(url(e2e_server, "/account#agents"))
    page.fill("#agent-name", "OpenClaw on the office PC")
    page.select_option("#agent-scope", "write")
    page.check("#agent-collection-notes")
    page.check("#agent-approval")
    with page.expect_navigation():
        page.click("#agents button[type=submit]")
    assert page.url.endswith("/account/agents#setup")
    header = page.inner_text("#setup-header")
    secret = header.removeprefix("Authorization: Bearer ").strip()
    assert f'--header "{header.strip()}"' in page.inner_text("#setup-openclaw")
    for size, name in ((WIDE, "1280"), (PHONE, "390")):
        page.set_viewport_size(size)
        page.screenshot(path=str(shots / f"account_agents_setup_{name}.png"), full_page=True)
        _fits(page, size)
    with database.connection_context():
        token = authenticate_token(secret)
        assert token is not None and token.mcp_approval and token.scope == "write"
        hold_write(
            token.id,
            personas.editor.id,
            "update_record",
            {"collection": "notes", "id": 1, "values": {"title": "x"}},
            "OpenClaw",
        )
    page.set_viewport_size(WIDE)
    page.goto(url(e2e_server, "/account"))
    page.screenshot(path=str(shots / "account_1280.png"), full_page=True)

    page.context.clear_cookies()
    sign_in(page, e2e_server, personas.admin.email, personas.admin.password)
    page.goto(url(e2e_server, "/admin/agents"))
    assert page.locator(".pending-write").count() == 3
    assert CANARY in page.inner_text(f"#pending-{held['ids'][0]} pre")  # shown as text, not run
    for size, name in ((WIDE, "1280"), (PHONE, "390")):
        page.set_viewport_size(size)
        page.screenshot(path=str(shots / f"admin_agents_{name}.png"), full_page=True)
        _fits(page, size)
    page.set_viewport_size(WIDE)
    with page.expect_navigation():
        page.click(f"#pending-{held['ids'][1]} button.btn-success")
    assert "The write was applied." in page.inner_text("main")
    assert count_notes() == 1
    page.goto(url(e2e_server, "/admin/agents?view=decided"))
    page.screenshot(path=str(shots / "admin_agents_decided_1280.png"), full_page=True)
