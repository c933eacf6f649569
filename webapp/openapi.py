"""The OpenAPI 3.1 document of the whole API of API.md, with every collection the caller may view.

The collections' own paths are built here, beside the fixed part of API.md
(health checks, token, me, users, roles, tokens, audit, files, backups,
jobs, system status, collections); each
collection the caller may view adds its own paths (``/api/collections/
customers/records`` ...) and schemas (``customers.Record``, ``customers.Input``,
``customers.Patch``), so a client generator or a fuzzer sees the real
field types, choices, bounds and filters, the system fields' filters
(``id__gt``, ``created_at__gte`` ...) included. The fixed paths are in
:mod:`webapp.openapi_static`, a collection's schemas in :mod:`webapp.openapi_fields`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from appliance import __version__
from appliance.collections.access import field_rules, hidden_relation_targets, visible_definition
from appliance.collections.definitions import CollectionDef
from webapp.openapi_fields import JSON_VALUE, filter_parameters, record_schemas
from webapp.openapi_more import LAST_PAGE, MORE_SCHEMAS, collection_extras, more_paths
from webapp.openapi_static import INT64, STATIC_SCHEMAS, error_responses, static_paths


def build_document(collections: Iterable[CollectionDef], *, base_url: str = "", actor: Any = None) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for ``collections`` (those the caller may view).

    Given ``actor`` (the caller), a relation field pointing at a collection it may not learn of does
    not name that collection, the fields hidden from it are not there at all (records, inputs, filters),
    and the fields read-only for it are ``readOnly`` in records and absent from inputs.
    """
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                }
            },
        },
        "Collection": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "label": {"type": "string"},
                "fields": {"type": "array", "items": {"type": "object"}},
                "permissions": {"type": "object"},
                "record_count": {"type": ["integer", "null"]},
            },
        },
        "HistoryItem": {
            "type": "object",
            "required": ["version", "actor", "at", "action", "changes"],
            "properties": {
                "version": {"type": "integer"},
                "actor": {"type": ["string", "null"]},
                "at": {"type": "string", "format": "date-time"},
                "action": {"type": "string", "enum": ["create", "update", "delete", "restore"]},
                "changes": {"type": "object", "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2}},
            },
        },
    }
    paging = [
        # The row offset must fit the database's 64-bit integers at the largest page size.
        {
            "name": "page",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": LAST_PAGE},
        },
        {
            "name": "page_size",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
        },
    ]

    def listing(item_ref: str) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["items", "page", "page_size", "total_items", "total_pages"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": item_ref}},
                "page": {"type": "integer"},
                "page_size": {"type": "integer"},
                "total_items": {"type": "integer"},
                "total_pages": {"type": "integer"},
            },
        }

    def ok(schema: dict[str, Any], status: str = "200", description: str = "OK") -> dict[str, Any]:
        return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}

    paths: dict[str, Any] = {
        "/api/collections": {
            "get": {
                "operationId": "listCollections",
                "summary": "The collections the caller may view",
                "responses": {
                    **ok(
                        {
                            "type": "object",
                            "properties": {
                                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Collection"}}
                            },
                        }
                    ),
                    **error_responses(401),
                },
            },
            "post": {
                "operationId": "createCollection",
                "summary": "Define a collection (admins)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,49}$"},
                                    "label": {"type": "string"},
                                    "fields": {
                                        "type": "array",
                                        "items": {"type": "object", "additionalProperties": {"$ref": JSON_VALUE}},
                                    },
                                    "permissions": {
                                        "type": "object",
                                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **ok({"$ref": "#/components/schemas/Collection"}, "201", "Created"),
                    **error_responses(400, 401, 403, 409, 422),
                },
            },
        }
    }
    for collection in collections:
        collection = visible_definition(collection, actor)
        read_only = field_rules(collection, actor).read_only
        name = collection.name
        prefix = f"#/components/schemas/{name}."
        hidden = hidden_relation_targets(collection, actor) if actor is not None else set()
        for key, schema in record_schemas(collection, hidden, read_only).items():
            schemas[f"{name}.{key}"] = schema
        id_param = {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": INT64},
        }
        record_ref = {"$ref": prefix + "Record"}
        body = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": prefix + "Input"}},
                "multipart/form-data": {"schema": {"$ref": prefix + "Multipart"}},
            },
        }
        patch_body = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": prefix + "Patch"}},
                "multipart/form-data": {"schema": {"$ref": prefix + "Multipart"}},
            },
        }
        base = f"/api/collections/{name}"
        paths[base] = {
            "get": {
                "operationId": f"{name}.getCollection",
                "summary": f"The definition of {collection.label}",
                "responses": {**ok({"$ref": "#/components/schemas/Collection"}), **error_responses(401, 404)},
            },
            "patch": {
                "operationId": f"{name}.updateCollection",
                "summary": f"Change {collection.label} (admins); field changes migrate its table",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "object", "additionalProperties": {"$ref": JSON_VALUE}}}
                    },
                },
                "responses": {
                    **ok({"$ref": "#/components/schemas/Collection"}),
                    **error_responses(400, 401, 403, 404, 409, 422),
                },
            },
            "delete": {
                "operationId": f"{name}.deleteCollection",
                "responses": {"204": {"description": "Deleted"}, **error_responses(401, 403, 404, 409)},
            },
        }
        paths[f"{base}/records"] = {
            "get": {
                "operationId": f"{name}.list",
                "summary": f"List {collection.label}",
                "parameters": [
                    *paging,
                    {"name": "ordering", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "search", "in": "query", "required": False, "schema": {"type": "string"}},
                    *filter_parameters(collection),
                ],
                "responses": {**ok(listing(prefix + "Record")), **error_responses(400, 401, 403, 404)},
            },
            "post": {
                "operationId": f"{name}.create",
                "summary": f"Create a record in {collection.label}",
                "requestBody": body,
                "responses": {
                    **ok(record_ref, "201", "Created"),
                    **error_responses(400, 401, 403, 404, 409, 413, 422),
                },
            },
        }
        paths[f"{base}/records/{{id}}"] = {
            "parameters": [id_param],
            "get": {
                "operationId": f"{name}.read",
                "responses": {**ok(record_ref), **error_responses(401, 403, 404)},
            },
            "patch": {
                "operationId": f"{name}.update",
                "requestBody": patch_body,
                "responses": {**ok(record_ref), **error_responses(400, 401, 403, 404, 409, 413, 422)},
            },
            "delete": {
                "operationId": f"{name}.delete",
                "responses": {"204": {"description": "Deleted"}, **error_responses(401, 403, 404, 409)},
            },
        }
        paths[f"{base}/records/{{id}}/history"] = {
            "parameters": [id_param],
            "get": {
                "operationId": f"{name}.history",
                "parameters": paging,
                "responses": {
                    **ok(listing("#/components/schemas/HistoryItem")),
                    **error_responses(400, 401, 403, 404),
                },
            },
        }
        paths.update(collection_extras(name, collection.label, listing(prefix + "Record")))
        paths[f"{base}/records/{{id}}/history/{{version}}/restore"] = {
            "parameters": [
                id_param,
                {
                    "name": "version",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": INT64},
                },
            ],
            "post": {
                "operationId": f"{name}.restore",
                "responses": {**ok(record_ref), **error_responses(401, 403, 404, 409, 422)},
            },
        }
    paths.update(static_paths(ok, listing, paging))
    paths.update(more_paths(listing, paging))
    schemas.update(STATIC_SCHEMAS)
    schemas.update(MORE_SCHEMAS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Office Appliance API", "version": __version__},
        "servers": [{"url": base_url or "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
