"""Backups in the JSON API: ``GET``/``POST /api/backups``, ``GET /api/backups/{name}/download``;
and the ``last_backup``, ``jobs``, ``next_job``, ``alerts`` and ``last_restore_drill`` sections of
``/api/system/status``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify, request, send_file

from appliance.backups.catalogue import find_backup, last_backup, last_restore, last_restore_drill, list_backups
from appliance.backups.retention import last_prune
from appliance.jobs.alerts import list_alerts, serialize_alert
from appliance.jobs.builtin import take_backup
from appliance.jobs.definitions import ensure_jobs_once, job_items
from appliance.storage.pagination import paginate_list, parse_paging
from webapp.auth import require_admin, require_write
from webapp.context import current_instance

bp = Blueprint("api_backups", __name__, url_prefix="/api")


@bp.get("/backups")
def list_all():
    """Every archive, newest first, with its verification result (failed ones included)."""
    require_admin()
    page, page_size = parse_paging(request.args)
    return jsonify(paginate_list(list_backups(current_instance().paths), page, page_size))


@bp.post("/backups")
def create():
    """Write a backup now; answers 201 once it is written and verified (``verified`` says how that went)."""
    principal = require_admin()
    require_write()
    return jsonify(take_backup(current_instance(), kind="manual", actor=principal.actor)), 201


@bp.get("/backups/<name>/download")
def download(name: str):
    require_admin()
    path = find_backup(current_instance().paths, name)
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=path.name, max_age=0)


def status_section() -> dict[str, Any]:
    """What ``/api/system/status`` adds for backups and jobs: the newest backup, every job with its
    last and next run, the next job due, and the alerts nobody acknowledged."""
    newest = last_backup(current_instance().paths)
    ensure_jobs_once(current_instance().settings)  # the scheduler makes the rows; without a server, this does
    jobs = job_items()
    due = sorted((j for j in jobs if j["next_run"]), key=lambda j: j["next_run"])
    return {
        "last_backup": (
            {key: newest[key] for key in ("name", "created_at", "size", "verified", "status")} if newest else None
        ),
        "jobs": [
            {
                key: job[key]
                for key in ("name", "schedule", "enabled", "last_run", "next_run", "last_outcome", "running")
            }
            for job in jobs
        ],
        "next_job": {"name": due[0]["name"], "next_run": due[0]["next_run"]} if due else None,
        "alerts": [serialize_alert(alert) for alert in list_alerts(limit=20, open_only=True)],
        "last_restore_drill": last_restore_drill(current_instance().paths),
        "last_prune": last_prune(current_instance().paths),
        "last_restore": last_restore(current_instance().paths),
    }


def init_app(app: Flask) -> None:
    app.extensions.setdefault("appliance.status_sections", []).append(status_section)
