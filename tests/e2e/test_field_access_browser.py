"""The collection editor's field access table in a real browser, at desk and phone widths, without
JavaScript of its own: choose hidden and read-only per role, save, and see the choices kept.
Screenshots go to /tmp/shots/ (field-access-1280.png, field-access-390.png)."""

from __future__ import annotations

from pathlib import Path

from appliance.accounts.users import get_user_by_email
from appliance.collections.definitions import create_collection, get_collection
from appliance.storage.db import database
from tests.e2e.conftest import sign_in, url

SHOTS = Path("/tmp/shots")


def test_the_field_access_table_sets_hidden_and_read_only_fields(e2e_server, personas, browser_page):
    with database.connection_context():
        create_collection(
            {
                "name": "staff",
                "label": "Staff",
                "fields": [
                    {"name": "name", "type": "text", "label": "Name"},
                    {"name": "salary", "type": "integer", "label": "Salary"},
                    {"name": "iban", "type": "text", "label": "IBAN"},
                    {"name": "health_notes", "type": "long_text", "label": "Health notes"},
                    {"name": "yearly", "type": "computed", "formula": "salary * 12", "label": "Yearly"},
                ],
                "permissions": {"editor": ["view", "update"], "viewer": ["view"]},
            },
            get_user_by_email(personas.admin.email),
        )
    page = browser_page
    sign_in(page, e2e_server, personas.admin.email, personas.admin.password)
    page.goto(url(e2e_server, "/admin/collections/staff"))
    page.select_option("#field-viewer-salary", "hidden")
    page.select_option("#field-viewer-iban", "hidden")
    page.select_option("#field-viewer-health_notes", "hidden")
    page.select_option("#field-editor-salary", "read_only")
    page.select_option("#field-editor-health_notes", "hidden")
    with page.expect_navigation():
        page.click("button:has-text('Save permissions')")
    assert "Saved the permissions." in page.content()
    with database.connection_context():
        assert get_collection("staff").permissions["fields"] == {
            "viewer": {"hidden": ["salary", "iban", "health_notes"]},
            "editor": {"read_only": ["salary"], "hidden": ["health_notes"]},
        }
    assert page.input_value("#field-editor-salary") == "read_only"
    SHOTS.mkdir(exist_ok=True)
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(url(e2e_server, "/admin/collections/staff"))
        page.locator("#permissions").screenshot(path=str(SHOTS / f"field-access-{width}.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"wider than {width} px"
