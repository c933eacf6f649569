"""Listing: paging, ordering, search and every filter operator; unknown fields and operators are refused."""

from __future__ import annotations

import pytest

from appliance.errors import BadRequest
from appliance.records.delete import delete_record
from appliance.records.query import list_records
from appliance.records.write import create_record, update_record
from tests.appliance.data_helpers import make_orders, make_users


@pytest.fixture
def admin(instance):
    people = make_users()
    make_orders(people["admin"])
    rows = [
        ("Oak table", 3, 100.0, "open", "2026-01-10", "Solid oak, seats six"),
        ("Pine chair", 10, 20.0, "paid", "2026-02-01", "Pine, flat-packed"),
        ("Oak chair", 0, 35.5, "open", None, None),
        ("Desk lamp", 7, 12.0, "paid", "2026-03-15", "LED lamp 100% recycled"),
    ]
    for title, qty, price, status, due, notes in rows:
        create_record(
            "orders",
            {"title": title, "quantity": qty, "unit_price": price, "status": status, "due": due, "notes": notes},
            people["admin"],
        )
    return people["admin"]


def titles(page: dict) -> list[str]:
    return [r["title"] for r in page["items"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "paid"}, ["Pine chair", "Desk lamp"]),
        ({"status__ne": "paid"}, ["Oak table", "Oak chair"]),
        ({"quantity__lt": "3"}, ["Oak chair"]),
        ({"quantity__lte": "3"}, ["Oak table", "Oak chair"]),
        ({"quantity__gt": "7"}, ["Pine chair"]),
        ({"quantity__gte": "7"}, ["Pine chair", "Desk lamp"]),
        ({"title__contains": "chair"}, ["Pine chair", "Oak chair"]),
        ({"title__contains": "Chair"}, []),
        ({"title__icontains": "CHAIR"}, ["Pine chair", "Oak chair"]),
        ({"title__startswith": "Oak"}, ["Oak table", "Oak chair"]),
        ({"title__in": "Oak table,Desk lamp"}, ["Oak table", "Desk lamp"]),
        ({"quantity__in": "0,10"}, ["Pine chair", "Oak chair"]),
        ({"due__isnull": "true"}, ["Oak chair"]),
        ({"due__isnull": "false", "due__gte": "2026-02-01"}, ["Pine chair", "Desk lamp"]),
        ({"notes__icontains": "100%"}, ["Desk lamp"]),
        ({"notes__icontains": "_"}, []),
        ({"title__startswith": "*"}, []),
        ({"id__gt": "2"}, ["Oak chair", "Desk lamp"]),
    ],
)
def test_every_filter_operator(admin, params, expected):
    assert titles(list_records("orders", admin, params)) == expected


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"colour": "red"}, "colour"),
        ({"title__like": "x"}, "like"),
        ({"quantity__contains": "1"}, "contains"),
        ({"quantity": "many"}, "quantity"),
        ({"due__isnull": "perhaps"}, "due__isnull"),
        ({"ordering": "-colour"}, "colour"),
        ({"ordering": "extra"}, "extra"),
        ({"page": "0"}, "page"),
        ({"page_size": "501"}, "page_size"),
    ],
)
def test_an_unknown_field_operator_or_value_is_a_bad_request_naming_it(admin, params, named):
    with pytest.raises(BadRequest) as caught:
        list_records("orders", admin, params)
    assert named in caught.value.message


def test_ordering_and_paging(admin):
    page = list_records("orders", admin, {"ordering": "-quantity", "page_size": "2", "page": "2"})
    assert titles(page) == ["Oak table", "Oak chair"]
    assert (page["total_items"], page["total_pages"], page["page"]) == (4, 2, 2)
    assert titles(list_records("orders", admin, {"ordering": "status,-title"})) == [
        "Oak table",
        "Oak chair",
        "Pine chair",
        "Desk lamp",
    ]
    assert list_records("orders", admin, {"page": "9"})["items"] == []


def test_search_is_ranked_full_text_and_kept_in_step_with_writes(admin):
    assert titles(list_records("orders", admin, {"search": "oak"})) == ["Oak table", "Oak chair"]
    assert titles(list_records("orders", admin, {"search": "pine flat"})) == ["Pine chair"]
    update_record("orders", 2, {"notes": "now walnut"}, admin)
    assert titles(list_records("orders", admin, {"search": "flat"})) == []
    assert titles(list_records("orders", admin, {"search": "walnut", "status": "paid"})) == ["Pine chair"]
    delete_record("orders", 1, admin)
    assert titles(list_records("orders", admin, {"search": "oak", "ordering": "title"})) == ["Oak chair"]
    assert list_records("orders", admin, {"search": '"); DROP TABLE c_orders; --'})["total_items"] == 0


def test_the_unfiltered_total_is_the_maintained_count(admin):
    assert list_records("orders", admin, {})["total_items"] == 4
    delete_record("orders", 4, admin)
    assert list_records("orders", admin, {})["total_items"] == 3
    assert list_records("orders", admin, {"status": "open"})["total_items"] == 2


def test_search_orders_by_rank_not_by_id(admin):
    # Inserted last, so its id is the highest; it says "walnut" most and most briefly, so it ranks first.
    create_record("orders", {"title": "Walnut", "notes": "walnut walnut walnut"}, admin)
    create_record("orders", {"title": "Shelf", "notes": "a long shelf of stained pine, walnut edges, oak feet"}, admin)
    update_record("orders", 1, {"notes": "walnut top"}, admin)
    found = titles(list_records("orders", admin, {"search": "walnut"}))
    assert found == ["Walnut", "Oak table", "Shelf"]
    assert found != ["Oak table", "Walnut", "Shelf"]  # the id order


@pytest.mark.parametrize(
    "params", [{"due": "2020-13-45"}, {"due__gte": "2026-02-30"}, {"due__in": "2026-01-10,2026-99-01"}]
)
def test_an_impossible_date_in_a_filter_is_a_bad_request(admin, params):
    with pytest.raises(BadRequest) as caught:
        list_records("orders", admin, params)
    assert caught.value.extra["parameter"] == next(iter(params))
    # The same words as any value a type cannot read (the table's filter value for a date refuses it).
    assert "is not a valid date value." in caught.value.message


def test_a_date_on_a_datetime_field_stands_for_the_whole_utc_day(admin):
    for title, moment in (
        ("early", "2026-03-01T00:00:00Z"),
        ("late", "2026-03-01T23:59:59.999Z"),
        ("next", "2026-03-02T00:00:00Z"),
    ):
        create_record("orders", {"title": title, "sent_at": moment}, admin)
    assert titles(list_records("orders", admin, {"sent_at": "2026-03-01"})) == ["early", "late"]
    assert titles(list_records("orders", admin, {"sent_at__gt": "2026-03-01"})) == ["next"]
    assert titles(list_records("orders", admin, {"sent_at__lte": "2026-03-01"})) == ["early", "late"]
    assert titles(list_records("orders", admin, {"sent_at__lt": "2026-03-01"})) == []
    assert titles(list_records("orders", admin, {"sent_at__gte": "2026-03-02"})) == ["next"]
    assert titles(list_records("orders", admin, {"sent_at__in": "2026-03-02,2026-01-01"})) == ["next"]
    assert len(titles(list_records("orders", admin, {"sent_at__ne": "2026-03-01"}))) == 5
    assert titles(list_records("orders", admin, {"sent_at": "2026-03-01T23:59:59.999Z"})) == ["late"]


def test_a_filter_given_twice_is_a_bad_request_pointing_at_in(admin):
    with pytest.raises(BadRequest) as caught:
        list_records("orders", admin, {"title": ["Oak table", "Desk lamp"]})
    assert "title__in" in caught.value.message and caught.value.extra["parameter"] == "title"
    assert titles(list_records("orders", admin, {"title": ["Desk lamp"]})) == ["Desk lamp"]


def test_an_empty_in_filter_names_its_parameter(admin):
    with pytest.raises(BadRequest) as caught:
        list_records("orders", admin, {"quantity__in": ""})
    assert caught.value.extra["parameter"] == "quantity__in"


@pytest.mark.parametrize("search", ["☃", '"', "  -- ; ", "☃ ☃"])
def test_a_search_without_words_finds_nothing_rather_than_everything(admin, search):
    page = list_records("orders", admin, {"search": search})
    assert (page["items"], page["total_items"]) == ([], 0)
    assert list_records("orders", admin, {"search": ""})["total_items"] == 4
