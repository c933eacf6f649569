"""``/admin/rules``: automation rules in plain words — list, create, change, try on a record, run log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from appliance.automations import rules
from appliance.automations.engine import dry_run
from appliance.collections.access import list_collections
from appliance.errors import ApplianceError, ValidationFailed
from appliance.storage.models import Role
from appliance.storage.pagination import paginate, parse_paging
from webapp.auth import admin_pages, client_address
from webapp.layout import add_nav_link, form_errors

bp = Blueprint("admin_rules", __name__, url_prefix="/admin")
admin_pages(bp, "Only admins may manage automation rules.")

EVENTS = (("record.created", "is created"), ("record.updated", "is changed"), ("record.deleted", "is deleted"))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def rule_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """The rule object the API takes, from the page's form; :class:`ValidationFailed` for a line it cannot read."""
    problems: dict[str, str] = {}
    conditions: dict[str, str] = {}
    for number, line in enumerate(_lines(form.get("filter", "")), start=1):
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            problems["filter"] = f"Line {number}: write one condition a line, FIELD=value or FIELD__OP=value."
            break
        conditions[key.strip()] = value.strip()
    actions: list[dict[str, Any]] = []
    if form.get("email_on") == "yes":
        actions.append(
            {
                "type": "email",
                "to": form.get("email_to", ""),
                "to_field": form.get("email_to_field", ""),
                "to_role": form.get("email_to_role", ""),
                "subject": form.get("email_subject", ""),
                "body": form.get("email_body", ""),
            }
        )
    if form.get("webhook_url", "").strip():
        actions.append({"type": "webhook", "url": form.get("webhook_url", "").strip()})
    values: dict[str, Any] = {}
    formulas: dict[str, str] = {}
    for number, line in enumerate(_lines(form.get("set_fields", "")), start=1):
        if ":=" in line:
            name, _, formula = line.partition(":=")
            formulas[name.strip()] = formula.strip()
        elif "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
        else:
            problems["set_fields"] = f"Line {number}: write field = value, or field := formula."
    if values or formulas:
        actions.append({"type": "set_fields", "values": values, "formulas": formulas})
    if problems:
        raise ValidationFailed(problems)
    return {
        "name": form.get("name", ""),
        "collection": form.get("collection", ""),
        "active": form.get("active") == "yes",
        "events": form.getlist("events"),
        "changed_fields": [c.strip() for c in form.get("changed_fields", "").split(",") if c.strip()],
        "daily_at": form.get("daily_at", "").strip() or None,
        "filter": conditions,
        "actions": actions,
    }


def form_from_rule(item: dict[str, Any]) -> dict[str, Any]:
    """The page's form values for a stored rule (the first action of each kind)."""
    values: dict[str, Any] = {
        "name": item["name"],
        "collection": item["collection"],
        "active": item["active"],
        "events": item["events"],
        "changed_fields": ", ".join(item["changed_fields"]),
        "daily_at": item["daily_at"] or "",
        "filter": "\n".join(f"{k}={v}" for k, v in item["filter"].items()),
    }
    for action in item["actions"]:
        if action["type"] == "email" and "email_on" not in values:
            values.update(
                email_on=True,
                email_to=", ".join(action["to"]),
                email_to_field=action.get("to_field") or "",
                email_to_role=action.get("to_role") or "",
                email_subject=action["subject"],
                email_body=action["body"],
            )
        elif action["type"] == "webhook" and "webhook_url" not in values:
            values.update(webhook_url=action["url"], webhook_secret=action["secret"])
        elif action["type"] == "set_fields" and "set_fields" not in values:
            lines = [f"{k} = {v}" for k, v in action["values"].items()]
            lines += [f"{k} := {v}" for k, v in action["formulas"].items()]
            values["set_fields"] = "\n".join(lines)
    return values


def _page(item: dict[str, Any] | None, values: dict[str, Any], errors: dict[str, str], status: int = 200, **extra):
    runs = None
    if item is not None:
        page, page_size = parse_paging(request.args)
        runs = paginate(rules.list_runs(rules.get_rule(item["id"])), page, page_size, rules.serialize_run)
    context = {
        "rule": item,
        "values": values,
        "errors": errors,
        "runs": runs,
        "collections": list_collections(current_user.user),
        "roles": [r.name for r in Role.select().order_by(Role.name)],
        "event_choices": EVENTS,
        "depth_limit": rules.DEPTH_LIMIT,
        **extra,
    }
    return render_template("admin/rule.html", **context), status


@bp.get("/rules")
def rules_page():
    found = rules.list_rules()
    last = rules.last_runs([r.id for r in found])
    items = [rules.serialize_rule(r, last.get(r.id)) for r in found]
    return render_template("admin/rules.html", rules=items, depth_limit=rules.DEPTH_LIMIT)


@bp.get("/rules/new")
def new_rule():
    return _page(None, {"active": True, "events": ["record.created"], "email_on": True}, {})


@bp.post("/rules/new")
def create_rule():
    try:
        data = rule_from_form(request.form)
        rule = rules.create_rule(data, current_user.user, address=client_address())
    except (ValidationFailed, ApplianceError) as exc:
        values = {**request.form.to_dict(), "events": request.form.getlist("events")}
        return _page(None, values, form_errors(exc), 409 if exc.status == 409 else 422)
    flash(f"The rule {rule.name} was saved; it reacts to changes from now on.", "success")
    return redirect(url_for("admin_rules.rule_page", rule_id=rule.id))


@bp.get("/rules/<int:rule_id>")
def rule_page(rule_id: int):
    item = rules.serialize_rule(rules.get_rule(rule_id))
    return _page(item, form_from_rule(item), {})


@bp.post("/rules/<int:rule_id>")
def change_rule(rule_id: int):
    item = rules.serialize_rule(rules.get_rule(rule_id))
    try:
        data = rule_from_form(request.form)
        if not data["actions"] or any(a["type"] == "webhook" for a in data["actions"]):
            data["actions"] = _keep_secret(data["actions"], item["actions"])
        rules.update_rule(rule_id, data, current_user.user, address=client_address())
    except (ValidationFailed, ApplianceError) as exc:
        values = {**request.form.to_dict(), "events": request.form.getlist("events")}
        return _page(item, values, form_errors(exc), 409 if exc.status == 409 else 422)
    flash("The rule was saved.", "success")
    return redirect(url_for("admin_rules.rule_page", rule_id=rule_id))


def _keep_secret(actions: list[dict[str, Any]], old: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The form shows one webhook action; it keeps the secret of the rule's first webhook action.
    secret = next((a["secret"] for a in old if a["type"] == "webhook"), None)
    return [{**a, "secret": secret} if a["type"] == "webhook" and secret else a for a in actions]


@bp.post("/rules/<int:rule_id>/delete")
def delete_rule(rule_id: int):
    rule = rules.get_rule(rule_id)
    rules.delete_rule(rule_id, current_user.user, address=client_address())
    flash(f"The rule {rule.name} and its run log were deleted.", "success")
    return redirect(url_for("admin_rules.rules_page"))


@bp.post("/rules/<int:rule_id>/test")
def try_rule(rule_id: int):
    item = rules.serialize_rule(rules.get_rule(rule_id))
    try:
        result = dry_run(rule_id, request.form.get("record_id", ""), current_user.user)
    except ApplianceError as exc:
        return _page(item, form_from_rule(item), {}, exc.status, test_error=exc.message)
    return _page(item, form_from_rule(item), {}, test=result, test_record=request.form.get("record_id", ""))


def init_app(app: Flask) -> None:
    add_nav_link(app, "Rules", "/admin/rules", admin_only=True)
