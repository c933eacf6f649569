"""``/admin/audit``: the audit log for admins, filtered by user, action, collection and dates, paged."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, render_template, request

from appliance.audit import list_events, serialize_event
from appliance.storage.models import AuditEvent
from appliance.storage.pagination import paginate, parse_paging
from webapp import audit_view
from webapp.auth import admin_pages
from webapp.layout import add_nav_link

bp = Blueprint("admin_audit", __name__, url_prefix="/admin")

FILTERS = ("user", "action", "collection", "since", "until")


admin_pages(bp, "Only admins may read the audit log.")


def _day(name: str, errors: dict[str, str]) -> dt.datetime | None:
    """The date parameter ``name`` as midnight UTC; a bad one is noted in ``errors`` (shown beside its field)."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        errors[name] = f"Enter a date as YYYY-MM-DD (a real day), not {raw[:40]!r}."
        return None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


_EMPTY = {"items": [], "page": 1, "page_size": 50, "total_items": 0, "total_pages": 0}


@bp.get("/audit")
def audit():
    page, page_size = parse_paging(request.args, default_page_size=50)
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    errors: dict[str, str] = {}
    since, until = _day("since", errors), _day("until", errors)
    if since and until and since > until:
        errors["until"] = "The 'To' day is before the 'From' day."
    if errors:
        return render_template("admin/audit.html", listing=_EMPTY, filters=filters, errors=errors), 400
    query = list_events(
        actor=filters["user"] or None,
        action=filters["action"] or None,
        since=since,
        until=until + dt.timedelta(days=1) if until else None,  # the "to" day is included
    )
    if filters["collection"]:
        name = filters["collection"]
        # Collection events name "collection:<name>", record events "<name>/<id>".
        query = query.where((AuditEvent.target == f"collection:{name}") | AuditEvent.target.startswith(f"{name}/"))
    listing = paginate(query, page, page_size, serialize_event)
    return render_template("admin/audit.html", listing=listing, filters=filters, errors={})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    audit_view.init_app(app)
    add_nav_link(app, "Audit", "/admin/audit", admin_only=True)
