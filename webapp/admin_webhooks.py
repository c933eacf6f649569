"""``/admin/webhooks``: connect receivers, see every delivery, replay, rotate secrets; for admins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user

from appliance.collections.definitions import all_collections
from appliance.errors import ValidationFailed
from appliance.jobs.alerts import list_alerts
from appliance.records.events import EVENT_TYPES
from appliance.storage.pagination import paginate, parse_paging
from appliance.webhooks import definitions as hooks
from appliance.webhooks.deliveries import (
    PAUSE_AFTER_FAILURES,
    RETRY_DELAYS,
    STATUSES,
    deliveries_query,
    retry_delivery,
    retry_failed,
    serialize_delivery,
)
from webapp.api_webhooks import allowed_private
from webapp.auth import admin_pages, client_address
from webapp.layout import add_nav_link, form_errors, keep_once, take_once

bp = Blueprint("admin_webhooks", __name__, url_prefix="/admin")

admin_pages(bp, "Only admins may manage webhooks.")


def _form_values() -> dict[str, Any]:
    return {
        "url": request.form.get("url", "").strip(),
        "collection": request.form.get("collection", ""),
        "events": [e for e in EVENT_TYPES if request.form.get(f"event_{e}") == "yes"],
        "description": request.form.get("description", ""),
        "active": request.form.get("active") == "yes",
    }


def _delays() -> str:
    words = []
    for delay in RETRY_DELAYS:
        minutes = int(delay.total_seconds() // 60)
        words.append(f"{minutes // 60} h" if minutes >= 60 else f"{minutes} min")
    return ", ".join(words)


def _common() -> dict[str, Any]:
    return {
        "collections": [c.name for c in all_collections()],
        "event_types": EVENT_TYPES,
        "allowed_networks": allowed_private(),
        "delays": _delays(),
        "pause_after": PAUSE_AFTER_FAILURES,
    }


def _list_page(status: int = 200, errors: dict[str, str] | None = None, values: dict | None = None):
    return (
        render_template(
            "admin/webhooks.html",
            webhooks=[hooks.serialize_webhook(w) for w in hooks.list_webhooks()],
            alerts=[a for a in list_alerts(limit=20, open_only=True) if a.kind.startswith("webhook_")],
            errors=errors or {},
            values=values or {"events": list(EVENT_TYPES), "active": True},
            **_common(),
        ),
        status,
    )


@bp.get("/webhooks")
def list_page():
    return _list_page()


@bp.post("/webhooks")
def create():
    values = _form_values()
    try:
        webhook, secret = hooks.create_webhook(
            values, current_user.user, allowed_private=allowed_private(), address=client_address()
        )
    except ValidationFailed as exc:
        return _list_page(422, errors=form_errors(exc), values=values)
    keep_once(f"webhook-secret:{webhook.id}", secret)
    flash("The webhook was created. Copy its signing secret now: it is shown only this once.", "success")
    return redirect(url_for("admin_webhooks.detail", webhook_id=webhook.id))


def _detail_page(webhook_id: int, status: int = 200, errors: dict[str, str] | None = None, values: dict | None = None):
    webhook = hooks.serialize_webhook(hooks.get_webhook(webhook_id))
    shown = request.args.get("status") or None
    if shown not in STATUSES:
        shown = None
    page, page_size = parse_paging(request.args)
    listing = paginate(deliveries_query(webhook_id, shown), page, page_size, serialize_delivery)
    failed = deliveries_query(webhook_id, "failed").count()
    return (
        render_template(
            "admin/webhook.html",
            webhook=webhook,
            secret=take_once(f"webhook-secret:{webhook_id}"),
            listing=listing,
            shown=shown,
            statuses=STATUSES,
            failed=failed,
            errors=errors or {},
            values=values or webhook,
            **_common(),
        ),
        status,
    )


@bp.get("/webhooks/<int:webhook_id>")
def detail(webhook_id: int):
    return _detail_page(webhook_id)


@bp.post("/webhooks/<int:webhook_id>")
def change(webhook_id: int):
    values = _form_values()
    try:
        hooks.update_webhook(
            webhook_id, values, current_user.user, allowed_private=allowed_private(), address=client_address()
        )
    except ValidationFailed as exc:
        return _detail_page(webhook_id, 422, errors=form_errors(exc), values=values)
    flash("The webhook was saved.", "success")
    return redirect(url_for("admin_webhooks.detail", webhook_id=webhook_id))


@bp.post("/webhooks/<int:webhook_id>/rotate-secret")
def rotate(webhook_id: int):
    _webhook, secret = hooks.rotate_secret(webhook_id, current_user.user, address=client_address())
    keep_once(f"webhook-secret:{webhook_id}", secret)
    flash("A new signing secret was made; the old one signs nothing any more. Copy it now.", "success")
    return redirect(url_for("admin_webhooks.detail", webhook_id=webhook_id))


@bp.post("/webhooks/<int:webhook_id>/delete")
def delete(webhook_id: int):
    hooks.delete_webhook(webhook_id, current_user.user, address=client_address())
    flash("The webhook and its delivery log were deleted.", "success")
    return redirect(url_for("admin_webhooks.list_page"))


@bp.post("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/retry")
def retry(webhook_id: int, delivery_id: int):
    retry_delivery(webhook_id, delivery_id, current_user.user, address=client_address())
    flash(f"Delivery {delivery_id} will be sent again within seconds, with the same webhook-id.", "success")
    return redirect(url_for("admin_webhooks.detail", webhook_id=webhook_id))


@bp.post("/webhooks/<int:webhook_id>/deliveries/retry-failed")
def retry_all_failed(webhook_id: int):
    count = retry_failed(webhook_id, current_user.user, address=client_address())
    flash(f"{count} failed deliver{'y' if count == 1 else 'ies'} will be sent again within seconds.", "success")
    return redirect(url_for("admin_webhooks.detail", webhook_id=webhook_id))


def init_app(app: Flask) -> None:
    add_nav_link(app, "Webhooks", "/admin/webhooks", admin_only=True)
