"""``/admin/audit``: admins read the audit log filtered by user, action, collection and dates, in pages."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from appliance.audit import record_event
from appliance.storage.db import database


@pytest.fixture
def events(personas):
    day = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    with database.atomic():
        record_event("record.created", actor="bob@example.com", target="orders/1", now=day)
        record_event("record.updated", actor="bob@example.com", target="orders/1", now=day + dt.timedelta(days=1))
        record_event("collection.updated", actor="alice@example.com", target="collection:orders", now=day)
        record_event("record.created", actor="alice@example.com", target="items/4", now=day + dt.timedelta(days=2))
        for number in range(60):
            record_event("test.filler", actor="cli", target=f"x{number}", now=day - dt.timedelta(days=30))


def rows(html: str) -> list[tuple[str, str]]:
    """(action, target) of each row of the events table."""
    body = html.split('id="events"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td title="([^"]+)">[^<]*</td><td>([^<]*)</td>', body)


@pytest.mark.parametrize("who", ["editor", "viewer"])
def test_only_admins_may_read_the_audit_page(signed_in, who):
    assert signed_in(who).get("/admin/audit").status_code == 403


def test_filters_by_user_action_collection_and_dates(signed_in, events):
    admin = signed_in("admin")
    by_user = rows(admin.get("/admin/audit?user=BOB@example.com").get_data(as_text=True))
    assert by_user == [("record.updated", "orders/1"), ("record.created", "orders/1")]
    by_action = rows(admin.get("/admin/audit?action=record.&collection=orders").get_data(as_text=True))
    assert by_action == [("record.updated", "orders/1"), ("record.created", "orders/1")]
    by_collection = rows(admin.get("/admin/audit?collection=orders").get_data(as_text=True))
    assert ("collection.updated", "collection:orders") in by_collection and len(by_collection) == 3
    by_dates = rows(admin.get("/admin/audit?since=2026-03-11&until=2026-03-11").get_data(as_text=True))
    assert by_dates == [("record.updated", "orders/1")]


def test_the_log_is_paged_and_a_bad_date_is_a_clear_error(signed_in, events):
    admin = signed_in("admin")
    first = admin.get("/admin/audit?action=test.filler").get_data(as_text=True)
    assert len(rows(first)) == 50 and "Page 1 of 2" in first and "60 events" in first
    second = admin.get("/admin/audit?action=test.filler&page=2").get_data(as_text=True)
    assert len(rows(second)) == 10
    bad = admin.get("/admin/audit?since=yesterday")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("since=yesterday", "since", "YYYY-MM-DD"),
        ("until=2026-02-30", "until", "real day"),
        ("since=2026-03-02&until=2026-03-01", "until", "before the &#39;From&#39; day"),
    ],
)
def test_a_bad_date_shows_the_page_with_the_error_beside_its_field(signed_in, events, query, field, says):
    answer = signed_in("admin").get(f"/admin/audit?user=alice&{query}")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert '<form method="get"' in page and 'value="alice"' in page  # the form, with what was typed
    box = page.split(f'id="a-{field}"', 1)[1].split("</div>", 1)[0]
    assert "is-invalid" in page.split(f'id="a-{field}" class="', 1)[1].split('"', 1)[0]
    assert f'id="a-{field}-error" class="invalid-feedback">' in box and says in box
