"""The start page ``/``: the collections the user may view, with their record counts, and the ways on."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from appliance.collections.access import access_scope, list_collections
from appliance.records.query import list_records

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    actor = current_user.user
    collections = []
    for collection in list_collections(actor):
        count = collection.row_count
        if access_scope(collection, actor, "view") == "own":
            # Limited to the records one created: count those, not the whole table.
            count = list_records(collection, actor, {"page_size": "1"})["total_items"]
        collections.append(
            {
                "name": collection.name,
                "label": collection.label,
                "count": count,
                "may_create": access_scope(collection, actor, "create") is not None,
            }
        )
    return render_template("home.html", collections=collections)


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on their own; point them at the page icon instead of a 404."""
    return redirect(url_for("static", filename="favicon.svg"), 301)
