"""The records API: list, create, read, change, delete, history and restore (API.md, Listing)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from appliance.actors import SYSTEM, ActorLike
from appliance.collections.access import get_visible_collection
from appliance.errors import BadRequest, TooLarge
from appliance.records.delete import delete_record
from appliance.records.files import Upload
from appliance.records.history import list_history
from appliance.records.query import list_records
from appliance.records.read import get_record
from appliance.records.write import create_record, restore_version, update_record
from webapp.auth import Principal, client_address, current_principal, require_write
from webapp.context import current_instance

bp = Blueprint("api_records", __name__)

MB = 1024 * 1024


def actor_of(principal: Principal) -> ActorLike:
    """What the services take as the actor: the user, or the system actor for the control token."""
    return principal.user if principal.user is not None else SYSTEM


def json_body() -> Any:
    """The request's JSON body, any value (``None`` when it is not JSON); ``webapp.strict_input`` refuses
    what no endpoint may take before this sees it."""
    return request.get_json(silent=True)


def upload_limit() -> int:
    return current_instance().settings.max_upload_mb * MB


def read_body() -> tuple[dict[str, Any], dict[str, Upload], bool]:
    """``(values, uploads, from_form)`` of a JSON or multipart body.

    Refuses a body whose declared length is over ``max_upload_mb`` with 413
    before reading it, and caps the reading of a body without a length.
    """
    limit = upload_limit()
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"The request body is larger than {limit // MB} MB.")
    request.max_content_length = limit
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        values: dict[str, Any] = {k: request.form.get(k) for k in request.form}
        uploads = {
            name: Upload(filename=storage.filename or "file", stream=storage.stream)
            for name, storage in request.files.items()
        }
        return values, uploads, True
    if mimetype != "application/json":
        raise BadRequest("Send JSON (application/json), or multipart/form-data when the record carries files.")
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object of field values.")
    return body, {}, False


def _write_options(uploads: dict[str, Upload], form: bool) -> dict[str, Any]:
    """The keywords of a record write from a request body (as :func:`read_body` read it): its files,
    where files are kept, whether values are form text, the upload limit and the client's address."""
    return {
        "uploads": uploads,
        "files_dir": current_instance().paths.files_dir,
        "form": form,
        "upload_limit": upload_limit(),
        "address": client_address(),
    }


@bp.get("/api/collections/<name>/records")
def list_(name: str):
    principal = current_principal()
    # Every value of every parameter, so that a filter given twice is refused rather than half-read.
    return jsonify(list_records(name, actor_of(principal), request.args.to_dict(flat=False)))


@bp.post("/api/collections/<name>/records")
def create(name: str):
    principal = require_write()
    get_visible_collection(name, actor_of(principal))  # 404 before reading a body for an unknown collection
    values, uploads, form = read_body()
    record = create_record(name, values, actor_of(principal), **_write_options(uploads, form))
    response = jsonify(record)
    response.status_code = 201
    response.headers["Location"] = f"/api/collections/{name}/records/{record['id']}"
    return response


@bp.get("/api/collections/<name>/records/<int:record_id>")
def read(name: str, record_id: int):
    return jsonify(get_record(name, record_id, actor_of(current_principal())))


@bp.patch("/api/collections/<name>/records/<int:record_id>")
def change(name: str, record_id: int):
    principal = require_write()
    get_visible_collection(name, actor_of(principal))
    values, uploads, form = read_body()
    record = update_record(name, record_id, values, actor_of(principal), **_write_options(uploads, form))
    return jsonify(record)


@bp.delete("/api/collections/<name>/records/<int:record_id>")
def remove(name: str, record_id: int):
    principal = require_write()
    delete_record(
        name,
        record_id,
        actor_of(principal),
        files_dir=current_instance().paths.files_dir,
        address=client_address(),
    )
    return Response(status=204)


@bp.get("/api/collections/<name>/records/<int:record_id>/history")
def history(name: str, record_id: int):
    actor = actor_of(current_principal())
    collection = get_visible_collection(name, actor)
    return jsonify(list_history(collection, record_id, actor, request.args.to_dict()))


@bp.post("/api/collections/<name>/records/<int:record_id>/history/<int:version>/restore")
def restore(name: str, record_id: int, version: int):
    principal = require_write()
    record = restore_version(
        name,
        record_id,
        version,
        actor_of(principal),
        files_dir=current_instance().paths.files_dir,
        address=client_address(),
    )
    return jsonify(record)
