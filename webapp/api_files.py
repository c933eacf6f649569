"""Downloads of uploaded files, only for callers who may view the record."""

from __future__ import annotations

from flask import Blueprint, send_file

from appliance.records.read import get_record_file
from appliance.storage.blobs import blob_path
from webapp.api_records import actor_of
from webapp.auth import current_principal
from webapp.context import current_instance

bp = Blueprint("api_files", __name__)


@bp.get("/api/files/<collection>/<int:record_id>/<field>/<filename>")
def download(collection: str, record_id: int, field: str, filename: str):
    value = get_record_file(collection, record_id, field, filename, actor_of(current_principal()))
    path = blob_path(current_instance().paths.files_dir, value["sha256"])
    response = send_file(
        path,
        mimetype=value.get("type") or "application/octet-stream",
        as_attachment=True,
        download_name=value["name"],
        conditional=True,
        etag=value["sha256"],
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-cache"
    return response
