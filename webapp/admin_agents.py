"""``/admin/agents``: AI agents' writes held for approval, shown with their arguments as data, decided by admins.

The agent's arguments are rendered as escaped JSON text, never as markup nor
as instructions. Approving applies the write once, as the token's user
(:mod:`appliance.agents.approvals`); the page then says how it went.
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user

from appliance.agents.approvals import STATUSES, count_pending, decide_pending, list_pending
from appliance.errors import Conflict, NotFound
from webapp.auth import admin_pages, client_address
from webapp.layout import add_nav_link

bp = Blueprint("admin_agents", __name__, url_prefix="/admin")

admin_pages(bp, "Only admins may see and decide AI agents' writes.")

VIEWS = ("pending", "decided", "all")
OUTCOMES = {
    "applied": ("success", "The write was applied."),
    "rejected": ("info", "The write was rejected; nothing was changed."),
}


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@bp.get("/agents")
def agents_page():
    view = request.args.get("view", "pending")
    if view not in VIEWS:
        view = "pending"
    items = list_pending("pending" if view == "pending" else None)
    if view == "decided":
        items = [item for item in items if item["status"] != "pending"]
    return render_template(
        "admin/agents.html", items=items, view=view, waiting=count_pending(), pretty=_pretty, statuses=STATUSES
    )


def _decide(pending_id: int, approve: bool):
    try:
        item = decide_pending(pending_id, approve, current_user.user, client_address())
    except (Conflict, NotFound) as exc:
        flash(exc.message, "warning")
        return redirect(url_for("admin_agents.agents_page"))
    if item["status"] == "failed":
        error = item.get("error") or {}
        fields = "; ".join(f"{k}: {v}" for k, v in (error.get("fields") or {}).items())
        flash(
            f"The write could not be applied: {error.get('message', '')}{' (' + fields + ')' if fields else ''}",
            "error",
        )
    else:
        category, message = OUTCOMES[item["status"]]
        flash(message, category)
    return redirect(url_for("admin_agents.agents_page"))


@bp.post("/agents/<int:pending_id>/approve")
def approve(pending_id: int):
    return _decide(pending_id, True)


@bp.post("/agents/<int:pending_id>/reject")
def reject(pending_id: int):
    return _decide(pending_id, False)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_link(app, "Agents", "/admin/agents", admin_only=True)
