"""Webhooks in the JSON API (admins): ``GET``/``POST /api/webhooks``, ``GET``/``PATCH``/``DELETE
/api/webhooks/{id}``, ``POST /api/webhooks/{id}/rotate-secret``, ``GET /api/webhooks/{id}/deliveries``,
``POST /api/webhooks/{id}/deliveries/{delivery}/retry`` and ``.../deliveries/retry-failed``; and the
``webhooks`` section of ``/api/system/status``.

Deliveries are sent by the server's parent process: a replay asks for a try
now, and it happens within a second or two.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify, request

from appliance.errors import BadRequest
from appliance.jobs.definitions import current_settings
from appliance.storage.pagination import paginate, parse_paging
from appliance.webhooks import definitions as hooks
from appliance.webhooks.deliveries import (
    STATUSES,
    deliveries_query,
    retry_delivery,
    retry_failed,
    serialize_delivery,
    webhooks_summary,
)
from webapp.auth import client_address, require_admin, require_write
from webapp.context import current_instance
from webapp.strict_input import json_object

bp = Blueprint("api_webhooks", __name__, url_prefix="/api")


def _writer():
    principal = require_admin()
    require_write()
    return principal


def allowed_private() -> str:
    """The live setting (a change applies without a restart)."""
    return str(current_settings(current_instance()).webhook_allowed_private_networks)


@bp.get("/webhooks")
def list_all():
    require_admin()
    page, page_size = parse_paging(request.args)
    return jsonify(paginate(hooks.webhooks_query(), page, page_size, hooks.serialize_webhook))


@bp.post("/webhooks")
def create():
    """201 with the webhook and its ``secret``, shown this once."""
    principal = _writer()
    webhook, secret = hooks.create_webhook(
        json_object(), principal.actor, allowed_private=allowed_private(), address=client_address()
    )
    return jsonify(hooks.serialize_webhook(webhook, secret)), 201


@bp.get("/webhooks/<int:webhook_id>")
def show(webhook_id: int):
    require_admin()
    return jsonify(hooks.serialize_webhook(hooks.get_webhook(webhook_id)))


@bp.patch("/webhooks/<int:webhook_id>")
def change(webhook_id: int):
    principal = _writer()
    webhook = hooks.update_webhook(
        webhook_id, json_object(), principal.actor, allowed_private=allowed_private(), address=client_address()
    )
    return jsonify(hooks.serialize_webhook(webhook))


@bp.delete("/webhooks/<int:webhook_id>")
def remove(webhook_id: int):
    principal = _writer()
    hooks.delete_webhook(webhook_id, principal.actor, address=client_address())
    return "", 204


@bp.post("/webhooks/<int:webhook_id>/rotate-secret")
def rotate(webhook_id: int):
    """The webhook with its new ``secret``, shown this once; the old one signs nothing any more."""
    principal = _writer()
    webhook, secret = hooks.rotate_secret(webhook_id, principal.actor, address=client_address())
    return jsonify(hooks.serialize_webhook(webhook, secret))


@bp.get("/webhooks/<int:webhook_id>/deliveries")
def deliveries(webhook_id: int):
    """The delivery log, newest first; ``status`` (pending, delivered, failed) narrows it."""
    require_admin()
    page, page_size = parse_paging(request.args)
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}", parameter="status")
    return jsonify(paginate(deliveries_query(webhook_id, status), page, page_size, serialize_delivery))


@bp.post("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/retry")
def retry(webhook_id: int, delivery_id: int):
    """Replay one delivery now (same ``webhook-id``): 202 with the delivery, tried within seconds."""
    principal = _writer()
    delivery = retry_delivery(webhook_id, delivery_id, principal.actor, address=client_address())
    return jsonify(serialize_delivery(delivery)), 202


@bp.post("/webhooks/<int:webhook_id>/deliveries/retry-failed")
def retry_all_failed(webhook_id: int):
    """Replay every failed delivery of the webhook now: 202 with ``{"retried": N}``."""
    principal = _writer()
    return jsonify({"retried": retry_failed(webhook_id, principal.actor, address=client_address())}), 202


def status_section() -> dict[str, Any]:
    """What ``/api/system/status`` adds: ``webhooks`` with the paused ones and the failed deliveries."""
    return {"webhooks": webhooks_summary()}


def init_app(app: Flask) -> None:
    app.extensions.setdefault("appliance.status_sections", []).append(status_section)
