"""CSV over the API: ``GET /api/collections/{name}/export.csv`` and ``POST /api/collections/{name}/import``."""

from __future__ import annotations

import atexit
from collections.abc import Iterable, Iterator

from flask import Blueprint, Response, jsonify, request, stream_with_context

from appliance.clock import utcnow
from appliance.collections.access import get_visible_collection
from appliance.errors import BadRequest, TooLarge
from appliance.records.csv.export import export_csv
from appliance.records.csv.importing import stop_running_imports
from appliance.records.csv.jobs import import_csv_journaled
from webapp.api_records import MB, actor_of, upload_limit
from webapp.auth import current_principal, require_write
from webapp.context import current_instance

bp = Blueprint("api_csv", __name__)


def csv_response(name: str, pieces) -> Response:
    """A streamed CSV download named after the collection and the day (UTC): ``visitors-2026-11-25.csv``."""
    response = Response(stream_with_context(pieces), mimetype="text/csv")
    day = utcnow().date().isoformat()
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{day}.csv"'
    return response


_stop_registered = False


def stop_imports_at_exit() -> None:
    """Once per process: at exit, running imports stop between batches and undo what they wrote."""
    global _stop_registered
    if not _stop_registered:
        _stop_registered = True
        atexit.register(stop_running_imports, current_instance().settings.shutdown_grace_seconds)


def with_bom(pieces: Iterable[str]) -> Iterator[str]:
    """The CSV pieces behind a UTF-8 byte-order mark (for Excel)."""
    yield "\ufeff"
    yield from pieces


def uploaded_csv() -> tuple[str, bytes]:
    """``(filename, bytes)`` of the multipart ``file`` field; 413 over ``max_upload_mb``, 400 when missing."""
    limit = upload_limit()
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"The file is larger than {limit // MB} MB.")
    request.max_content_length = limit
    if request.mimetype != "multipart/form-data":
        raise BadRequest("Send the CSV file as multipart/form-data in a field called 'file'.")
    storage = request.files.get("file")
    if storage is None and request.form.get("file"):  # the CSV as a plain field (curl -F 'file=<data.csv')
        return "file.csv", request.form["file"].encode("utf-8")
    if storage is None:
        raise BadRequest("Send the CSV file in a field called 'file'.", fields={"file": "Choose a CSV file."})
    return storage.filename or "file.csv", storage.read()


@bp.get("/api/collections/<name>/export.csv")
def export(name: str):
    actor = actor_of(current_principal())
    return csv_response(name, export_csv(name, actor, request.args.to_dict(flat=False)))


@bp.post("/api/collections/<name>/import")
def import_(name: str):
    principal = require_write()
    get_visible_collection(name, actor_of(principal))  # 404 before reading a body for an unknown collection
    _filename, data = uploaded_csv()
    stop_imports_at_exit()
    jobs_dir = current_instance().paths.run_dir / "imports"
    created = import_csv_journaled(
        jobs_dir, name, data, actor_of(principal), max_rows=current_instance().settings.max_import_rows
    )
    response = jsonify({"created": created})
    response.status_code = 201
    return response
