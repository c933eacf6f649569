"""Long text keeps one kind of line break: saving a form unchanged records no change (issue 16, item 9)."""

from __future__ import annotations

import pytest

from appliance.collections.definitions import get_collection
from appliance.records.history import list_history
from appliance.records.write import create_record, update_record
from tests.appliance.data_helpers import make_orders, make_users


@pytest.fixture
def admin(instance):
    people = make_users()
    make_orders(people["admin"])
    return people["admin"]


def test_a_form_sent_back_unchanged_with_crlf_line_breaks_is_no_change(admin):
    made = create_record("orders", {"title": "Chairs", "notes": "first line\nsecond line"}, admin)
    # A browser sends a textarea's line breaks as CRLF, whatever was stored.
    update_record("orders", made["id"], {"title": "Chairs", "notes": "first line\r\nsecond line"}, admin, form=True)
    history = list_history(get_collection("orders"), made["id"], admin, {})
    assert history["total_items"] == 1, history["items"]


def test_crlf_and_cr_are_stored_as_lf(admin):
    made = create_record("orders", {"title": "Desk", "notes": "a\r\nb\rc"}, admin)
    assert made["notes"] == "a\nb\nc"
