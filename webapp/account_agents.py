"""``/account/agents``: a signed-in user connects an AI agent: a scoped MCP token, shown once with copy-ready
set-up for OpenClaw, Claude Desktop and any MCP client. The form also sits on ``/account``.

Post/Redirect/Get, as the token form of ``/account``: the secret rides in the
session to the next page only, so a refresh neither makes a second token nor
shows the secret again.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from appliance.accounts import tokens
from appliance.agents.connect import setup_snippets
from appliance.collections.access import list_collections
from appliance.errors import PermissionDenied, ValidationFailed
from webapp.auth import client_address
from webapp.context import current_instance
from webapp.layout import form_errors, form_number, keep_once, take_once

bp = Blueprint("account_agents", __name__)

TOOL_CHOICES = tokens.MCP_TOOLS


def agent_form_options() -> dict[str, Any]:
    """What the "Connect an AI agent" form offers the signed-in user: the collections they can see, the tools,
    the default expiry."""
    return {
        "collections": [(c.name, c.label) for c in list_collections(current_user.user)],
        "tools": TOOL_CHOICES,
        "write_tools": tokens.MCP_WRITE_TOOLS,
        "default_days": current_instance().settings.token_default_days,
    }


def _page(status: int = 200, **context: Any):
    defaults: dict[str, Any] = {"agent_errors": {}, "agent_values": {}, "made": None, "setup": None}
    defaults.update(context)
    return render_template("auth/agents.html", **defaults), status


@bp.get("/account/agents")
@login_required
def agents_page():
    made = take_once("new_agent_token")
    if isinstance(made, dict) and made.get("user") == current_user.id:
        home = current_instance().paths.home
        return _page(made=made, setup=setup_snippets(request.url_root, made["secret"], home))
    return _page()


@bp.post("/account/agents")
@login_required
def create_agent_token():
    form = request.form
    values: dict[str, Any] = {
        "name": form.get("name", ""),
        "scope": form.get("scope", ""),
        "expires_days": form.get("expires_days", ""),
        "collections": form.getlist("collections"),
        "tools": form.getlist("tools"),
        "approval": form.get("approval") == "yes",
    }
    try:
        token, secret = tokens.create_token(
            current_user.id,
            values["name"],
            scope=values["scope"],
            expires_days=form_number(values["expires_days"]),
            mcp=True,
            mcp_tools=values["tools"] or None,
            mcp_collections=values["collections"] or None,
            mcp_approval=values["approval"],
            actor=current_user.user,
            address=client_address(),
        )
    except (ValidationFailed, PermissionDenied) as exc:
        return _page(exc.status, agent_errors=form_errors(exc), agent_values=values)
    keep_once("new_agent_token", {"user": current_user.id, "name": token.name, "secret": secret})
    return redirect(url_for("account_agents.agents_page", _anchor="setup"), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["agent_form_options"] = agent_form_options
