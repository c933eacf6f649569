"""Automation rules in the JSON API (admins only).

``GET``, ``POST /api/rules``; ``GET``, ``PATCH``, ``DELETE /api/rules/{id}``;
``GET /api/rules/{id}/runs`` (the run log, newest first, listing shape);
``POST /api/rules/{id}/test`` ``{"record_id"}`` (a test run: what each action
would do on that record; nothing is written, sent or called). A rule is
``{"name", "collection", "active", "events", "changed_fields", "daily_at",
"filter", "actions"}``; see :mod:`appliance.automations.checks`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from appliance.actors import SYSTEM, ActorLike
from appliance.automations import rules
from appliance.automations.engine import dry_run
from appliance.storage.pagination import paginate, paginate_list, parse_paging
from webapp.auth import client_address, require_admin, require_write
from webapp.strict_input import json_object

bp = Blueprint("api_rules", __name__, url_prefix="/api")


def _actor(principal: Any) -> ActorLike:
    """The signed-in admin, or the system actor for the control token."""
    return principal.user if principal.user is not None else SYSTEM


def _item(rule_id: int) -> dict[str, Any]:
    rule = rules.get_rule(rule_id)
    return rules.serialize_rule(rule, rules.last_runs([rule.id]).get(rule.id))


@bp.get("/rules")
def list_all():
    require_admin()
    page, page_size = parse_paging(request.args)
    found = rules.list_rules()
    last = rules.last_runs([r.id for r in found])
    return jsonify(paginate_list([rules.serialize_rule(r, last.get(r.id)) for r in found], page, page_size))


@bp.post("/rules")
def create():
    principal = require_admin()
    require_write()
    rule = rules.create_rule(json_object(), _actor(principal), address=client_address())
    return jsonify(_item(rule.id)), 201


@bp.get("/rules/<rule_id>")
def show(rule_id: str):
    require_admin()
    return jsonify(_item(rules.get_rule(rule_id).id))


@bp.patch("/rules/<rule_id>")
def change(rule_id: str):
    principal = require_admin()
    require_write()
    rule = rules.update_rule(rule_id, json_object(), _actor(principal), address=client_address())
    return jsonify(_item(rule.id))


@bp.delete("/rules/<rule_id>")
def remove(rule_id: str):
    principal = require_admin()
    require_write()
    rules.delete_rule(rule_id, _actor(principal), address=client_address())
    return "", 204


@bp.get("/rules/<rule_id>/runs")
def runs(rule_id: str):
    require_admin()
    page, page_size = parse_paging(request.args)
    return jsonify(paginate(rules.list_runs(rules.get_rule(rule_id)), page, page_size, rules.serialize_run))


@bp.post("/rules/<rule_id>/test")
def try_rule(rule_id: str):
    principal = require_admin()
    return jsonify(dry_run(rule_id, json_object().get("record_id"), _actor(principal)))
