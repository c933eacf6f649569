"""``/admin/audit``: the audit log for admins, filtered by user, action, collection and dates, paged."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, render_template, request
from flask_login import current_user, login_required

from appliance.audit import AuditEvent, list_events, serialize_event
from appliance.errors import BadRequest, PermissionDenied
from appliance.pagination import paginate, parse_paging
from webapp.layout import add_nav_link

bp = Blueprint("admin_audit", __name__, url_prefix="/admin")

FILTERS = ("user", "action", "collection", "since", "until")


@bp.before_request
@login_required
def _admins_only():
    if not current_user.is_admin:
        raise PermissionDenied("Only admins may read the audit log.")


def _day(name: str) -> dt.datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be a date as YYYY-MM-DD, not {raw[:40]!r}.", parameter=name) from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


@bp.get("/audit")
def audit():
    page, page_size = parse_paging(request.args, default_page_size=50)
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    until = _day("until")
    query = list_events(
        actor=filters["user"] or None,
        action=filters["action"] or None,
        since=_day("since"),
        until=until + dt.timedelta(days=1) if until else None,  # the "to" day is included
    )
    if filters["collection"]:
        name = filters["collection"]
        # Collection events name "collection:<name>", record events "<name>/<id>".
        query = query.where((AuditEvent.target == f"collection:{name}") | AuditEvent.target.startswith(f"{name}/"))
    listing = paginate(query, page, page_size, serialize_event)
    return render_template("admin/audit.html", listing=listing, filters=filters)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_link(app, "Audit", "/admin/audit", admin_only=True)
