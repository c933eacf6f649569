"""The audit log for admins: ``GET /api/audit`` with ``actor``, ``action``, ``target``, ``since``, ``until``."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, request

from appliance.audit import list_events, serialize_event
from appliance.clock import parse_iso
from appliance.errors import BadRequest
from appliance.storage.pagination import paginate, parse_paging
from webapp.auth import require_admin

bp = Blueprint("api_audit", __name__)

FILTERS = {"actor", "action", "target", "since", "until", "page", "page_size"}


def _moment(name: str) -> dt.datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be an ISO 8601 date or time, not {raw[:40]!r}", parameter=name) from None


@bp.get("/api/audit")
def audit():
    require_admin()
    unknown = sorted(set(request.args) - FILTERS)
    if unknown:
        raise BadRequest(f"Unknown parameter '{unknown[0]}'", parameter=unknown[0])
    page, page_size = parse_paging(request.args)
    query = list_events(
        actor=request.args.get("actor") or None,
        action=request.args.get("action") or None,
        target=request.args.get("target") or None,
        since=_moment("since"),
        until=_moment("until"),
    )
    return jsonify(paginate(query, page, page_size, serialize_event))
