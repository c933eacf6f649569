"""The collection editor's field access table: hidden and read-only per role per field, with a plain form
(no JavaScript), through the Flask test client (the browser's view is tests/e2e/test_field_access_browser.py)."""

from __future__ import annotations

import re

import pytest

from appliance.collections.definitions import get_collection
from tests.conftest import post_form

PERMISSIONS = "/admin/collections/staff/permissions"


def post(client, path: str, data: dict, status: int = 302):
    answer = post_form(client, path, data, token_from="/admin/collections")
    assert answer.status_code == status, answer.get_data(as_text=True)[:2000]
    return answer


@pytest.fixture
def admin(signed_in):
    client = signed_in("admin")
    post(client, "/admin/collections", {"name": "staff", "label": "Staff"})
    post(client, "/admin/collections/staff/fields", {"name": "name", "type": "text"})
    post(client, "/admin/collections/staff/fields", {"name": "salary", "type": "integer"})
    post(client, "/admin/collections/staff/fields", {"name": "yearly", "type": "computed", "formula": "salary * 12"})
    return client


def _selected(html: str, select_id: str) -> str:
    select = re.search(rf'<select id="{select_id}".*?</select>', html, re.S)
    assert select, f"no select {select_id}"
    chosen = re.search(r'<option value="([^"]*)" selected>', select.group(0))
    return chosen.group(1) if chosen else ""


def test_the_editor_sets_hidden_and_read_only_fields_per_role(admin):
    post(
        admin,
        PERMISSIONS,
        {
            "perm-editor-view": "all",
            "perm-editor-update": "all",
            "perm-viewer-view": "all",
            "field-viewer-salary": "hidden",
            "field-editor-salary": "read_only",
            "field-editor-name": "",
        },
    )
    permissions = get_collection("staff").permissions
    assert permissions["editor"] == ["view", "update"]
    assert permissions["fields"] == {"viewer": {"hidden": ["salary"]}, "editor": {"read_only": ["salary"]}}
    html = admin.get("/admin/collections/staff").get_data(as_text=True)
    assert _selected(html, "field-viewer-salary") == "hidden"
    assert _selected(html, "field-editor-salary") == "read_only"
    assert _selected(html, "field-editor-name") == ""
    # A computed field is read-only for everyone: it offers only shown or hidden.
    yearly = re.search(r'<select id="field-editor-yearly".*?</select>', html, re.S).group(0)
    assert 'value="read_only"' not in yearly
    # Saving without field choices clears them.
    post(admin, PERMISSIONS, {"perm-viewer-view": "all"})
    assert "fields" not in get_collection("staff").permissions


def test_a_choice_the_service_does_not_know_comes_back_as_an_error_and_changes_nothing(admin):
    post(admin, PERMISSIONS, {"perm-viewer-view": "all", "field-viewer-salary": "hidden"})
    answer = post(admin, PERMISSIONS, {"perm-viewer-view": "all", "field-viewer-salary": "secret"}, status=422)
    assert "Give field rules as" in answer.get_data(as_text=True)
    assert get_collection("staff").permissions["fields"] == {"viewer": {"hidden": ["salary"]}}
