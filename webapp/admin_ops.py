"""``/admin/jobs`` and ``/admin/backups``: scheduled jobs, their history, backups and alerts, for admins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user

from appliance.backups.catalogue import list_backups
from appliance.errors import Busy, ValidationFailed
from appliance.jobs import definitions as jobs
from appliance.jobs.alerts import acknowledge_alerts, list_alerts
from appliance.jobs.builtin import take_backup
from appliance.storage.pagination import paginate, parse_paging
from webapp.auth import admin_pages, client_address
from webapp.context import current_instance
from webapp.layout import add_nav_link, form_errors
from webapp.pages_auth import safe_next

bp = Blueprint("admin_ops", __name__, url_prefix="/admin")


admin_pages(bp, "Only admins may manage jobs and backups.")


@bp.before_request
def _jobs_known():
    # After the admin check (registered first): only an admin's request reaches it.
    jobs.ensure_jobs_once(current_instance().settings)


def _actor() -> dict[str, Any]:
    return {"actor": current_user.user, "address": client_address()}


def _jobs_page(status: int = 200, errors: dict[str, dict[str, str]] | None = None, values: dict | None = None):
    return (
        render_template(
            "admin/jobs.html",
            jobs=jobs.job_items(),
            alerts=list_alerts(limit=20, open_only=True),
            errors=errors or {},
            values=values or {},
        ),
        status,
    )


@bp.get("/jobs")
def jobs_page():
    return _jobs_page()


@bp.get("/jobs/<name>")
def job_page(name: str):
    """The address a refused schedule form leaves in the address bar: back to the job's row."""
    jobs.get_job(name)
    return redirect(url_for("admin_ops.jobs_page", _anchor=f"job-{name}"))


@bp.post("/jobs/<name>")
def change_job(name: str):
    """The schedule form of one job: ``schedule`` and the ``enabled`` checkbox."""
    changes = {"schedule": request.form.get("schedule", ""), "enabled": request.form.get("enabled") == "yes"}
    try:
        jobs.update_job(name, changes, **_actor())
    except ValidationFailed as exc:
        return _jobs_page(422, errors={name: form_errors(exc)}, values={name: changes})
    flash(f"The job {name} was changed; the scheduler applies it within seconds.", "success")
    return redirect(url_for("admin_ops.jobs_page"))


@bp.post("/jobs/<name>/run")
def run_job(name: str):
    jobs.request_run(name, **_actor())
    flash(f"The job {name} will start within seconds; its run appears in the history.", "success")
    return redirect(url_for("admin_ops.jobs_page"))


@bp.get("/jobs/<name>/runs")
def job_runs(name: str):
    page, page_size = parse_paging(request.args)
    listing = paginate(jobs.list_runs(name), page, page_size, jobs.serialize_run)
    return render_template("admin/job_runs.html", job=jobs.serialize_job(jobs.get_job(name)), listing=listing)


@bp.post("/alerts/acknowledge")
def acknowledge():
    count = acknowledge_alerts()
    flash(f"{count} alert{'' if count == 1 else 's'} marked as seen.", "success")
    target = request.form.get("next")
    # Only a path on this site: a crafted form must not send the admin elsewhere (open redirect).
    return redirect(safe_next(target) if target else url_for("admin_ops.jobs_page"))


@bp.get("/backups")
def backups_page():
    return render_template(
        "admin/backups.html",
        backups=list_backups(current_instance().paths),
        alerts=list_alerts(limit=20, open_only=True),
        settings=jobs.current_settings(current_instance()),
    )


@bp.post("/backups")
def create_backup():
    try:
        item = take_backup(current_instance(), kind="manual", actor=current_user.user)
    except Busy as exc:
        flash(exc.message, "warning")
        return redirect(url_for("admin_ops.backups_page"))
    if item["verified"]:
        flash(f"{item['name']} was written and verified.", "success")
    else:
        flash(f"{item['name']} failed verification and was kept aside; see its problems below.", "error")
    return redirect(url_for("admin_ops.backups_page"))


def init_app(app: Flask) -> None:
    add_nav_link(app, "Jobs", "/admin/jobs", admin_only=True)
    add_nav_link(app, "Backups", "/admin/backups", admin_only=True)
