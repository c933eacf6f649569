"""``/admin/settings``: the settings that take effect without a restart, checked, written to appliance.toml.

Each worker picks up a changed file on its next request (see
:mod:`appliance.server.live_settings`); settings that need a restart are listed
read-only with where their value comes from.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user

from appliance.config.labels import GROUPS, setting_choices, setting_group, setting_label
from appliance.config.registry import registry
from appliance.config.setting import Setting
from appliance.config.settings import load_settings
from appliance.errors import ValidationFailed
from appliance.server.addresses import HTTPS_WARNING, is_open_to_network, staff_urls
from appliance.server.live_settings import change_runtime_settings, editable_settings, refresh_runtime_settings
from appliance.server.metrics import MAX_SLOTS
from webapp.auth import admin_pages, client_address
from webapp.context import current_instance
from webapp.layout import add_nav_link, form_errors

bp = Blueprint("admin_settings", __name__, url_prefix="/admin")


admin_pages(bp, "Only admins may change settings.")


# Settings this page leaves out: backup_schedule only seeds the 'backup' job when that job is first
# created, so saving it here would change nothing; the job's schedule is changed on /admin/jobs.
HIDDEN = frozenset({"backup_schedule"})


def _editable() -> list[Setting]:
    return [s for s in editable_settings() if s.name not in HIDDEN]


def _differs(name: str, configured: Any, running: Any) -> bool:
    """Whether the running server uses another value than the file; workers 0 means one per core."""
    if name == "workers" and configured == 0:
        return running != min(os.cpu_count() or 1, MAX_SLOTS)
    return running != configured


def _page(status: int = 200, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None):
    current = load_settings(current_instance().paths.settings_file)
    shown = {s.name: ("" if s.secret else current.values[s.name]) for s in _editable()}
    shown.update(values or {})
    fixed = [s for s in registry().values() if s.restart]
    running = _running()
    editable = _editable()
    by_group = {group: [s for s in editable if setting_group(s.name) == group] for group, _title in GROUPS}
    host = str(current.values["host"])
    return render_template(
        "admin/settings.html",
        editable=editable,
        groups=GROUPS,
        editable_by_group=by_group,
        fixed_by_group={group: [s for s in fixed if setting_group(s.name) == group] for group, _title in GROUPS},
        advanced_open=any(s.name in (errors or {}) for s in by_group["advanced"]),
        https_warning=HTTPS_WARNING,
        network_urls=staff_urls(host, int(current.values["port"])) if is_open_to_network(host) else None,
        values=shown,
        current=current,
        fixed=fixed,
        running=running,
        differs={
            s.name for s in fixed if s.name in running and _differs(s.name, current.values[s.name], running[s.name])
        },
        labels={s.name: setting_label(s.name) for s in registry().values()},
        choices={s.name: setting_choices(s) for s in _editable()},
        errors=errors or {},
    ), status


def _running() -> dict[str, Any]:
    """What the running server really uses where the settings file may differ (``run/server.json``):
    the port it bound (``--port`` and port 0 choose another), its address and worker count."""
    try:
        info = json.loads(current_instance().paths.server_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(info, dict):
        return {}
    return {name: info[name] for name in ("port", "host", "workers") if name in info}


@bp.get("/settings")
def settings_page():
    return _page()


@bp.post("/settings")
def change_settings():
    submitted = {}
    sources = load_settings(current_instance().paths.settings_file).sources
    for setting in _editable():
        if sources.get(setting.name, "").startswith("environment"):
            # Shown read-only (the environment wins over the file): a value sent all the same goes to the
            # service, which refuses it when it differs, rather than being dropped as "Nothing changed."
            if setting.name in request.form:
                submitted[setting.name] = request.form[setting.name]
            continue
        if setting.type is bool:
            submitted[setting.name] = "true" if request.form.get(setting.name) else "false"
        elif setting.name in request.form:
            submitted[setting.name] = request.form[setting.name]
    try:
        changed = change_runtime_settings(
            current_instance(), submitted, actor=current_user.user, address=client_address()
        )
    except ValidationFailed as exc:
        return _page(exc.status, values=submitted, errors=form_errors(exc))
    flash(f"Saved: {', '.join(changed)}." if changed else "Nothing changed.", "success")
    return redirect(url_for("admin_settings.settings_page"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_link(app, "Settings", "/admin/settings", admin_only=True)
    instance = app.extensions["appliance.instance"]

    @app.before_request
    def _take_changed_settings() -> None:
        refresh_runtime_settings(instance)
