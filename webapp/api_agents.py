"""AI agents in the JSON API, for the console and admins (an admin's token or session, or the control token):
the approval queue (``GET /api/mcp/pending``, ``POST /api/mcp/pending/{id}/approve`` and ``/reject``) and
``POST /api/mcp/tokens``, which makes an MCP token for a user and answers it once with copy-ready set-up."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from appliance.accounts import tokens
from appliance.accounts.users import find_user_by_email, get_user
from appliance.actors import SYSTEM
from appliance.agents.approvals import count_pending, decide_pending, list_pending
from appliance.agents.connect import setup_snippets
from appliance.errors import BadRequest, ValidationFailed
from webapp.auth import client_address, require_admin
from webapp.context import current_instance
from webapp.strict_input import json_object

bp = Blueprint("api_agents", __name__)

TOKEN_FIELDS = ("user", "name", "scope", "expires_days", "mcp_tools", "mcp_collections", "mcp_approval")


@bp.get("/api/mcp/pending")
def pending():
    require_admin()
    unknown = sorted(set(request.args) - {"status"})
    if unknown:
        raise BadRequest(f"Unknown parameter '{unknown[0]}'", parameter=unknown[0])
    status = request.args.get("status") or None
    return jsonify({"items": list_pending(status), "waiting": count_pending()})


def _decide(pending_id: int, approve: bool):
    principal = require_admin()
    actor = principal.user if principal.user is not None else SYSTEM
    return jsonify(decide_pending(pending_id, approve, actor, client_address()))


@bp.post("/api/mcp/pending/<int:pending_id>/approve")
def approve(pending_id: int):
    return _decide(pending_id, True)


@bp.post("/api/mcp/pending/<int:pending_id>/reject")
def reject(pending_id: int):
    return _decide(pending_id, False)


@bp.post("/api/mcp/tokens")
def create_agent_token():
    """A new MCP token for ``user`` (an email or an id), answered once (201) with ``setup`` texts."""
    principal = require_admin()
    data = json_object()
    unknown = sorted(set(data) - set(TOKEN_FIELDS))
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}; accepted: {', '.join(TOKEN_FIELDS)}.")
    who = data.get("user")
    if isinstance(who, str) and not who.isdigit():
        user = find_user_by_email(who)
        if user is None:
            raise ValidationFailed({"user": f"No user with the email {who.strip()[:320]!r}."})
    elif isinstance(who, int | str) and not isinstance(who, bool):
        user = get_user(who)
    else:
        raise ValidationFailed({"user": "Give the user's email or id."})
    if not user.active:
        raise ValidationFailed({"user": "This user is disabled; enable them first."})
    instance = current_instance()
    token, secret = tokens.create_token(
        user.id,
        data.get("name", "AI agent"),
        scope=data.get("scope", "read"),
        expires_days=data.get("expires_days", instance.settings.token_default_days),
        mcp=True,
        mcp_tools=data.get("mcp_tools"),
        mcp_collections=data.get("mcp_collections"),
        mcp_approval=data.get("mcp_approval", False),
        actor=principal.actor,
        address=client_address(),
    )
    setup = setup_snippets(request.url_root, secret, instance.paths.home)
    return jsonify({"token": secret, **tokens.serialize_token(token), "setup": setup}), 201
