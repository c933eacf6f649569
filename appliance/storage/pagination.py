"""Paging for every list answer: the listing shape of API.md.

``{"items": [...], "page": 1, "page_size": 20, "total_items": 1234, "total_pages": 62}``

The API and the pages read ``page`` and ``page_size`` the same way through
:func:`parse_paging`, and answer through :func:`paginate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import peewee

from appliance.errors import BadRequest

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500
_LAST_PAGE = 2**63 - 1


def _whole_number(args: Mapping[str, Any], name: str, default: int) -> int:
    raw = args.get(name)
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    if isinstance(raw, bool):
        raise BadRequest(f"'{name}' must be a whole number", parameter=name)
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    if not text.lstrip("-").isdigit() or not text.isascii():
        raise BadRequest(f"'{name}' must be a whole number, not {str(raw)[:40]!r}", parameter=name)
    return int(text)


def parse_paging(
    args: Mapping[str, Any], *, default_page_size: int = DEFAULT_PAGE_SIZE, max_page_size: int = MAX_PAGE_SIZE
) -> tuple[int, int]:
    """Read ``page`` (from 1) and ``page_size`` (default 20, at most 500) from query arguments.

    Returns ``(page, page_size)``. Raises :class:`BadRequest` for a value that
    is not a whole number, a page below 1, or a page size below 1 or above
    ``max_page_size``; a missing or empty value takes the default.
    """
    page = _whole_number(args, "page", 1)
    page_size = _whole_number(args, "page_size", default_page_size)
    if page < 1:
        raise BadRequest("'page' must be 1 or more", parameter="page")
    if page_size < 1 or page_size > max_page_size:
        raise BadRequest(f"'page_size' must be from 1 to {max_page_size}", parameter="page_size")
    # The row offset must fit the database's 64-bit integers at any page size, so the last page is one
    # number (the OpenAPI document's maximum), not one that moves with ``page_size``.
    if page > _LAST_PAGE // max_page_size:
        raise BadRequest(f"'page' must be at most {_LAST_PAGE // max_page_size}", parameter="page")
    return page, page_size


def paginate(
    query: peewee.SelectBase,
    page: int,
    page_size: int,
    serialize: Callable[[Any], Any],
    max_page_size: int = MAX_PAGE_SIZE,
) -> dict[str, Any]:
    """One page of ``query`` in the listing shape, each row passed through ``serialize``.

    ``query`` should carry its ordering (a page of an unordered query is not
    stable). A page past the end answers with no items, not an error, so a
    client paging through a list that shrank does not fail. Two queries: one
    count and one page.
    """
    if page < 1:
        raise BadRequest("'page' must be 1 or more", parameter="page")
    if page_size < 1 or page_size > max_page_size:
        raise BadRequest(f"'page_size' must be from 1 to {max_page_size}", parameter="page_size")
    total_items = query.count()
    total_pages = (total_items + page_size - 1) // page_size
    items = [serialize(row) for row in query.paginate(page, page_size)] if total_items else []
    return {
        "items": items,
        "page": page,
        "page_size": page_size,
        "total_items": total_items,
        "total_pages": total_pages,
    }


def paginate_list(items: list[Any], page: int, page_size: int, max_page_size: int = MAX_PAGE_SIZE) -> dict[str, Any]:
    """One page of a list already in memory (backups live in a folder, jobs in a registry) in the
    listing shape; the same checks and the same answer past the end as :func:`paginate`."""
    if page < 1:
        raise BadRequest("'page' must be 1 or more", parameter="page")
    if page_size < 1 or page_size > max_page_size:
        raise BadRequest(f"'page_size' must be from 1 to {max_page_size}", parameter="page_size")
    start = (page - 1) * page_size
    return {
        "items": list(items[start : start + page_size]),
        "page": page,
        "page_size": page_size,
        "total_items": len(items),
        "total_pages": (len(items) + page_size - 1) // page_size,
    }
