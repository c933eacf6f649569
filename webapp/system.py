"""System status and Prometheus metrics, for the console (control token) and admins."""

from __future__ import annotations

import datetime as dt
import shutil

from flask import Blueprint, Response, current_app, g, jsonify

from appliance import __version__
from appliance.accounts.sessions import count_users_online
from appliance.clock import parse_iso
from appliance.errors import NotAuthenticated, PermissionDenied
from appliance.server.metrics import read_metrics
from appliance.server.prometheus import render_metrics
from appliance.storage.db import database, is_sqlite
from webapp.context import bearer_token, control_token_matches, current_instance

bp = Blueprint("system", __name__)


def require_control_or_admin() -> None:
    """Allow the control token; admin sign-in is added by the accounts layer through ``system_auth`` hooks."""
    token = bearer_token()
    if token and control_token_matches(token):
        return
    for hook in current_app.extensions.get("appliance.system_auth", []):
        if hook():
            return
    if token:
        raise PermissionDenied("This token may not read the system status.")
    raise NotAuthenticated("Sign in as an admin or use the control token.")


def _merged_metrics() -> dict:
    runtime = current_app.extensions["appliance.runtime"]
    if runtime is None:
        return {"requests": 0, "errors": 0, "routes": {}}
    return read_metrics(current_instance().paths.metrics_file)


def _database_size() -> int | None:
    if is_sqlite():
        paths = current_instance().paths
        return sum(p.stat().st_size for p in paths.db_dir.glob("appliance.sqlite3*") if p.exists())
    try:
        return database.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]
    except Exception:
        return None


@bp.get("/api/system/status")
def status():
    require_control_or_admin()
    if bearer_token() and control_token_matches(bearer_token()):
        # The console polls this every few seconds; counting its polls would
        # show them as office traffic and fill the access log.
        g.unobserved = True
    instance = current_instance()
    runtime = current_app.extensions["appliance.runtime"]
    started = runtime.started_at if runtime else None
    uptime = None
    if started:
        uptime = (dt.datetime.now(dt.UTC) - parse_iso(started)).total_seconds()
    disk = shutil.disk_usage(instance.home)
    body = {
        "version": __version__,
        "started_at": started,
        "uptime_seconds": uptime,
        "workers": runtime.workers if runtime else 1,
        "database": {"engine": "sqlite" if is_sqlite() else "postgresql", "size_bytes": _database_size()},
        "disk": {"free_bytes": disk.free, "total_bytes": disk.total},
        "metrics": _merged_metrics(),
        # Distinct users with a browser session seen in the last 5 minutes (API tokens are not people).
        "users_online": count_users_online(),
    }
    for hook in current_app.extensions.get("appliance.status_sections", []):
        body.update(hook())
    return jsonify(body)


@bp.get("/metrics")
def prometheus():
    require_control_or_admin()
    return Response(render_metrics(_merged_metrics()), mimetype="text/plain; version=0.0.4; charset=utf-8")
