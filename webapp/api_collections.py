"""The collections API (define, change, remove), the deleted-records list and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from appliance.collections.access import get_visible_collection, list_collections, serialize_collection
from appliance.collections.definitions import create_collection, delete_collection, update_collection
from appliance.records.history import list_deleted_records
from appliance.storage.blobs import remove_unreferenced
from webapp.api_records import actor_of
from webapp.auth import current_principal, require_admin, require_write
from webapp.context import current_instance
from webapp.openapi import build_document
from webapp.strict_input import json_object

bp = Blueprint("api_collections", __name__)


@bp.get("/api/collections")
def index():
    actor = actor_of(current_principal())
    return jsonify({"items": [serialize_collection(c, actor) for c in list_collections(actor)]})


@bp.post("/api/collections")
def create():
    require_write()
    principal = require_admin()
    collection = create_collection(json_object(), actor_of(principal))
    response = jsonify(serialize_collection(collection, actor_of(principal)))
    response.status_code = 201
    response.headers["Location"] = f"/api/collections/{collection.name}"
    return response


@bp.get("/api/collections/<name>")
def read(name: str):
    actor = actor_of(current_principal())
    return jsonify(serialize_collection(get_visible_collection(name, actor), actor))


@bp.patch("/api/collections/<name>")
def change(name: str):
    require_write()
    principal = current_principal()
    get_visible_collection(name, actor_of(principal))
    require_admin()
    changed = update_collection(name, json_object(), actor_of(principal), files_dir=current_instance().paths.files_dir)
    return jsonify(serialize_collection(changed, actor_of(principal)))


@bp.delete("/api/collections/<name>")
def remove(name: str):
    require_write()
    principal = current_principal()
    get_visible_collection(name, actor_of(principal))
    require_admin()
    orphaned = delete_collection(name, actor_of(principal))
    remove_unreferenced(current_instance().paths.files_dir, orphaned)
    return Response(status=204)


@bp.get("/api/collections/<name>/deleted")
def deleted(name: str):
    actor = actor_of(current_principal())
    collection = get_visible_collection(name, actor)
    return jsonify(list_deleted_records(collection, actor, request.args.to_dict()))


@bp.get("/api/openapi.json")
def openapi():
    actor = actor_of(current_principal())
    return jsonify(build_document(list_collections(actor), base_url=request.host_url.rstrip("/"), actor=actor))
