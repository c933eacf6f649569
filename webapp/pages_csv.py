"""CSV for staff in the browser: ``/c/<name>/export.csv`` (the list page's filters) and the import pages.

Importing is three steps, each a plain form: upload the file (``/c/<name>/import``),
check the preview and choose which field each column fills, then run it. The run
goes on in a background thread of this worker; its progress is in a job file that
every worker can read, and the job page refreshes itself (a ``<meta>`` refresh,
no script) until the import is done or has failed with every bad row listed.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from appliance.collections.access import get_visible_collection, require_access
from appliance.errors import BadRequest, Conflict, PermissionDenied, TooLarge, ValidationFailed
from appliance.records.csv.checks import importable_fields
from appliance.records.csv.export import export_csv
from appliance.records.csv.jobs import get_import_job, run_import_job, save_import_upload, start_import_job
from appliance.storage.db import database
from webapp.api_csv import csv_response, stop_imports_at_exit, uploaded_csv, with_bom
from webapp.context import current_instance
from webapp.layout import form_errors

bp = Blueprint("csv_pages", __name__)
log = logging.getLogger("webapp.csv")

ERRORS_SHOWN = 500


def _jobs_dir() -> Path:
    return current_instance().paths.run_dir / "imports"


def _actor() -> Any:
    return current_user.user


@bp.get("/c/<name>/export.csv")
@login_required
def export(name: str):
    """The list's records as CSV; ``bom=1`` starts it with a UTF-8 byte-order mark, which Excel needs
    to read the file as UTF-8 (the API's export never does)."""
    params = {k: v for k, v in request.args.to_dict(flat=False).items() if k != "bom"}
    pieces = export_csv(name, _actor(), params)
    if request.args.get("bom") == "1":
        pieces = with_bom(pieces)
    return csv_response(name, pieces)


def _creatable(name: str) -> Any:
    """The collection, if the user may create records in it (else 404 / 403)."""
    collection = get_visible_collection(name, _actor())
    require_access(collection, _actor(), "create")
    return collection


def _upload_page(name: str, status: int = 200, errors: dict | None = None):
    return render_template("admin/import.html", collection=_creatable(name), errors=errors or {}), status


@bp.get("/c/<name>/import")
@login_required
def upload_form(name: str):
    return _upload_page(name)


@bp.post("/c/<name>/import")
@login_required
def upload(name: str):
    _creatable(name)  # the permission checks, before reading the file
    try:
        filename, data = uploaded_csv()
        job = save_import_upload(
            _jobs_dir(), name, filename, data, _actor(), max_rows=current_instance().settings.max_import_rows
        )
    except (BadRequest, TooLarge) as exc:
        return _upload_page(name, exc.status, errors={"file": exc.message})
    return redirect(url_for("csv_pages.job_page", name=name, job_id=job["id"]))


@bp.get("/c/<name>/import/<job_id>")
@login_required
def job_page(name: str, job_id: str):
    collection = get_visible_collection(name, _actor())
    job = get_import_job(_jobs_dir(), job_id, _actor())
    return render_template(
        "admin/import_job.html",
        collection=collection,
        job=job,
        fields=[(f, collection.field(f).label or f) for f in importable_fields(collection, _actor())],
        labels=_labels(collection),
        errors={},
        shown=ERRORS_SHOWN,
    )


def _labels(collection: Any) -> dict[str, str]:
    return {f.name: f.label or f.name for f in collection.fields}


def _run_in_background(jobs_dir: Path, job_id: str, actor: Any) -> None:
    # A stopping worker asks the thread to stop and undo (the job file is the journal should it be killed).
    stop_imports_at_exit()
    max_rows = current_instance().settings.max_import_rows  # read here: the thread has no app context

    def work() -> None:
        try:
            with database.connection_context():
                run_import_job(jobs_dir, job_id, actor, max_rows=max_rows)
        except Exception:
            log.exception("import %s stopped", job_id)

    threading.Thread(target=work, name=f"import-{job_id}", daemon=True).start()


@bp.post("/c/<name>/import/<job_id>/run")
@login_required
def run(name: str, job_id: str):
    collection = get_visible_collection(name, _actor())
    job = get_import_job(_jobs_dir(), job_id, _actor())
    header = job["preview"]["header"]
    mapping = {column: request.form.get(f"map-{position}", "") for position, column in enumerate(header)}
    try:
        start_import_job(_jobs_dir(), job_id, mapping, _actor())
    except (ValidationFailed, Conflict, PermissionDenied) as exc:
        job["mapping"] = mapping
        page = render_template(
            "admin/import_job.html",
            collection=collection,
            job=job,
            fields=[(f, collection.field(f).label or f) for f in importable_fields(collection, _actor())],
            labels=_labels(collection),
            errors=form_errors(exc),
            shown=ERRORS_SHOWN,
        )
        return page, exc.status
    _run_in_background(_jobs_dir(), job_id, _actor())
    flash("The import has started; this page follows it.", "info")
    return redirect(url_for("csv_pages.job_page", name=name, job_id=job_id))
