"""Scheduled jobs in the JSON API: ``GET /api/jobs``, ``PATCH /api/jobs/{name}``,
``POST /api/jobs/{name}/run``, ``GET /api/jobs/{name}/runs``.

The API runs in a worker and the scheduler in the server's parent process:
a change or a run-now request is written to the database, and the scheduler
picks it up within ``scheduler_sync_seconds``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from appliance.jobs import definitions as jobs
from appliance.storage.pagination import paginate, paginate_list, parse_paging
from webapp.auth import client_address, require_admin, require_write
from webapp.context import current_instance
from webapp.strict_input import json_object

bp = Blueprint("api_jobs", __name__, url_prefix="/api")


def _admin():
    """The admin principal (401/403 otherwise); then make sure the job rows exist, once per process
    (the scheduler creates them at start; an app without a server running makes them here)."""
    principal = require_admin()
    jobs.ensure_jobs_once(current_instance().settings)
    return principal


def _job_item(name: str) -> dict:
    job = jobs.get_job(name)
    return jobs.serialize_job(job, jobs.last_runs([name]).get(name))


@bp.get("/jobs")
def list_all():
    _admin()
    page, page_size = parse_paging(request.args)
    return jsonify(paginate_list(jobs.job_items(), page, page_size))


@bp.get("/jobs/<name>")
def show(name: str):
    _admin()
    return jsonify(_job_item(name))


@bp.patch("/jobs/<name>")
def change(name: str):
    """Change ``schedule`` (cron or ``every 6h``), ``enabled`` or ``options``; 422 names a bad field and why."""
    principal = _admin()
    require_write()
    data = json_object()
    jobs.update_job(name, data, actor=principal.actor, address=client_address())
    return jsonify(_job_item(name))


@bp.post("/jobs/<name>/run")
def run_now(name: str):
    """Ask the scheduler to run the job now: 202, the run shows in ``/runs`` within seconds."""
    principal = _admin()
    require_write()
    jobs.request_run(name, actor=principal.actor, address=client_address())
    return jsonify(_job_item(name)), 202


@bp.get("/jobs/<name>/runs")
def runs(name: str):
    _admin()
    page, page_size = parse_paging(request.args)
    return jsonify(paginate(jobs.list_runs(name), page, page_size, jobs.serialize_run))
