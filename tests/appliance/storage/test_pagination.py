"""The listing shape shared by every list endpoint."""

from __future__ import annotations

import pytest

from appliance.errors import BadRequest
from appliance.storage.models import Role
from appliance.storage.pagination import paginate, parse_paging


@pytest.mark.parametrize(
    "args, expected",
    [({}, (1, 20)), ({"page": "3", "page_size": "500"}, (3, 500)), ({"page": "", "page_size": " 7 "}, (1, 7))],
)
def test_paging_arguments_are_read_with_defaults(args, expected):
    assert parse_paging(args) == expected


@pytest.mark.parametrize(
    "args", [{"page": "0"}, {"page": "-1"}, {"page": "two"}, {"page_size": "501"}, {"page_size": "0"}, {"page": "1.5"}]
)
def test_bad_paging_arguments_are_a_bad_request(args):
    with pytest.raises(BadRequest):
        parse_paging(args)


def test_a_page_has_the_listing_shape(instance):
    query = Role.select().order_by(Role.name)
    assert paginate(query, 1, 2, lambda r: r.name) == {
        "items": ["admin", "editor"],
        "page": 1,
        "page_size": 2,
        "total_items": 3,
        "total_pages": 2,
    }
    assert paginate(query, 5, 2, lambda r: r.name)["items"] == []
