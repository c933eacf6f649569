"""The OpenAPI 3.1 document of the whole API of API.md, with every collection the caller may view.

The fixed part (health checks, token, me, users, roles, tokens, audit,
files, backups, jobs, system status, collections) is written out here; each
collection the caller may view adds its own paths (``/api/collections/
customers/records`` ...) and schemas (``customers.Record``, ``customers.Input``,
``customers.Patch``), so a client generator or a fuzzer sees the real
field types, choices, bounds and filters, the system fields' filters
(``id__gt``, ``created_at__gte`` ...) included.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from appliance import __version__
from appliance.collections.definitions import CollectionDef, hidden_relation_targets
from appliance.collections.fields import MAX_LONG_TEXT, MAX_TEXT, Field
from appliance.records.query import SYSTEM_FIELD_TYPES, operators_for

ERROR = {"$ref": "#/components/schemas/Error"}


def _error_responses(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed request or unknown parameter",
        401: "Not signed in",
        403: "Not allowed",
        404: "Unknown (or not visible to the caller)",
        409: "Conflict (a unique value taken, a record still referred to)",
        413: "Too large",
        422: "Invalid field values",
        429: "Throttled; see Retry-After",
        503: "Busy or not ready; see Retry-After",
    }
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}} for c in codes}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema:
        kind = schema["type"]
        schema["type"] = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def value_schema(spec: Field, *, for_input: bool, hidden: Collection[str] = ()) -> dict[str, Any]:
    """The JSON Schema of one field's value (input: what may be sent; else what is answered).

    A relation to a collection in ``hidden`` (one the caller may not learn of) does not name it.
    """
    kind = spec.type
    schema: dict[str, Any]
    if kind in ("text", "long_text"):
        schema = {"type": "string", "maxLength": spec.max if spec.max is not None else MAX_TEXT}
        if kind == "long_text" and spec.max is None:
            schema["maxLength"] = MAX_LONG_TEXT
        if spec.min is not None:
            schema["minLength"] = max(spec.min, 1)
        if spec.pattern:
            schema["pattern"] = f"^(?:{spec.pattern})$"
    elif kind == "integer":
        schema = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
        if spec.min is not None:
            schema["minimum"] = spec.min
        if spec.max is not None:
            schema["maximum"] = spec.max
    elif kind == "number":
        schema = {"type": "number"}
        if spec.min is not None:
            schema["minimum"] = spec.min
        if spec.max is not None:
            schema["maximum"] = spec.max
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "date":
        schema = {"type": "string", "format": "date"}
    elif kind == "datetime":
        schema = {"type": "string", "format": "date-time"}
    elif kind == "email":
        schema = {"type": "string", "format": "email", "maxLength": 320}
    elif kind == "url":
        schema = {"type": "string", "format": "uri", "maxLength": 2048}
    elif kind == "select":
        schema = {"type": "string", "enum": list(spec.choices or [])}
    elif kind == "relation":
        target = "a collection you cannot see" if spec.collection in hidden else f"'{spec.collection}'"
        schema = {"type": "integer", "minimum": 1, "description": f"The id of a record of {target}."}
    elif kind == "file":
        if for_input:
            return {"type": "null", "description": "Send null to remove the file; upload it with multipart."}
        schema = {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "size": {"type": "integer"},
                "type": {"type": "string"},
                "url": {"type": "string"},
            },
        }
    elif kind == "json":
        return {"description": "Any JSON value."}
    else:  # computed
        return {"readOnly": True, "description": f"Computed: {spec.formula}"}
    if spec.label and spec.label != spec.name:
        schema.setdefault("title", spec.label)
    return schema if (for_input and spec.required) else _nullable(schema)


def _record_schemas(collection: CollectionDef, hidden: Collection[str] = ()) -> dict[str, Any]:
    system = {
        "id": {"type": "integer", "readOnly": True},
        "created_at": {"type": "string", "format": "date-time", "readOnly": True},
        "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
        "created_by": {"type": ["integer", "null"], "readOnly": True},
        "updated_by": {"type": ["integer", "null"], "readOnly": True},
    }
    record = {
        "type": "object",
        "properties": {
            **system,
            **{f.name: value_schema(f, for_input=False, hidden=hidden) for f in collection.fields},
        },
        "required": [*system, *(f.name for f in collection.fields)],
    }
    writable = [f for f in collection.fields if not f.read_only]
    inputs = {f.name: value_schema(f, for_input=True, hidden=hidden) for f in writable}
    create = {
        "type": "object",
        "properties": inputs,
        "additionalProperties": False,
        "required": [f.name for f in writable if f.required and f.default is None and f.type != "file"],
    }
    patch = {"type": "object", "properties": inputs, "additionalProperties": False}
    multipart_props: dict[str, Any] = {}
    for f in writable:
        if f.type == "file":
            multipart_props[f.name] = {"type": "string", "format": "binary"}
        else:
            multipart_props[f.name] = {"type": "string"}
    multipart = {"type": "object", "properties": multipart_props, "additionalProperties": False}
    return {"Record": record, "Input": create, "Patch": patch, "Multipart": multipart}


_QUERY_TYPES = {"integer": "integer", "relation": "integer", "number": "number", "boolean": "boolean"}


def _filter_parameters(collection: CollectionDef) -> list[dict[str, Any]]:
    params = []
    system = [Field(name=name, type=kind) for name, kind in SYSTEM_FIELD_TYPES.items()]
    for spec in [*system, *collection.fields]:
        for op in operators_for(spec.type):
            name = spec.name if op == "eq" else f"{spec.name}__{op}"
            schema: dict[str, Any] = {"type": "string"}
            if op == "isnull":
                schema["enum"] = ["true", "false"]
            elif op == "in":
                schema["description"] = "Comma-separated values."
            elif spec.type == "select" and op in ("eq", "ne"):
                schema["enum"] = list(spec.choices or [])
            elif spec.type in _QUERY_TYPES:
                schema = {"type": _QUERY_TYPES[spec.type]}
            elif spec.type == "date":
                schema["format"] = "date"
            elif spec.type == "datetime":
                schema["description"] = "A date and time (ISO 8601), or a date for that whole UTC day."
            params.append({"name": name, "in": "query", "required": False, "schema": schema})
    return params


_STATIC_SCHEMAS: dict[str, Any] = {
    "User": {
        "type": "object",
        "required": ["id", "email", "name", "role", "active", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string", "format": "email"},
            "name": {"type": "string"},
            "role": {"type": "string"},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "AuditEvent": {
        "type": "object",
        "required": ["id", "actor", "action", "target", "at", "address", "details"],
        "properties": {
            "id": {"type": "integer"},
            "actor": {"type": ["string", "null"]},
            "action": {"type": "string"},
            "target": {"type": ["string", "null"]},
            "at": {"type": "string", "format": "date-time"},
            "address": {"type": ["string", "null"]},
            "details": {},
        },
    },
    "Backup": {
        "type": "object",
        "required": ["name", "size", "created_at", "verified", "verification"],
        "properties": {
            "name": {"type": "string"},
            "size": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "verified": {"type": ["boolean", "null"]},
            "verification": {},
        },
    },
    "Job": {
        "type": "object",
        "required": ["name", "schedule", "enabled", "last_run", "next_run", "last_outcome"],
        "properties": {
            "name": {"type": "string"},
            "schedule": {},
            "enabled": {"type": "boolean"},
            "last_run": {"type": ["string", "null"]},
            "next_run": {"type": ["string", "null"]},
            "last_outcome": {"type": ["string", "null"]},
        },
    },
    "JobRun": {"type": "object", "description": "One run of a job: start, end, outcome and output."},
    "Role": {"type": "object", "properties": {"name": {"type": "string"}, "label": {"type": "string"}}},
    "Token": {"type": "object", "description": "An API token (never its secret, except once when created)."},
    "Status": {
        "type": "object",
        "description": "Version, uptime, database size, free disk, request metrics, last backup.",
    },
}


def _static_paths(ok: Any, listing: Any, paging: list[dict[str, Any]]) -> dict[str, Any]:
    """The paths of API.md that do not depend on the collections."""

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def path_param(name: str, kind: str = "string") -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}

    def query(name: str, **schema: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": {"type": "string", **schema}}

    deleted = {"204": {"description": "Deleted"}}
    status_body = {"type": "object", "properties": {"status": {"type": "string"}}}
    user_fields = {
        "email": {"type": "string", "format": "email"},
        "name": {"type": "string"},
        "role": {"type": "string"},
        "password": {"type": "string", "writeOnly": True},
    }
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Alive while the process lives",
                "security": [],
                "responses": ok(status_body),
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Ready when the database answers and migrations are applied",
                "security": [],
                "responses": {**ok(status_body), **_error_responses(503)},
            }
        },
        "/api/auth/token": {
            "post": {
                "operationId": "createToken",
                "summary": "An API token for an email and password (throttled like sign-in)",
                "security": [],
                "requestBody": body(
                    {"email": {"type": "string"}, "password": {"type": "string"}, "name": {"type": "string"}},
                    ["email", "password"],
                ),
                "responses": {
                    **ok(
                        {
                            "type": "object",
                            "properties": {
                                "token": {"type": "string"},
                                "expires_at": {"type": ["string", "null"], "format": "date-time"},
                            },
                        },
                        "201",
                        "Created",
                    ),
                    **_error_responses(400, 401, 429),
                },
            }
        },
        "/api/me": {
            "get": {
                "operationId": "me",
                "summary": "The caller",
                "responses": {**ok(ref("User")), **_error_responses(401)},
            }
        },
        "/api/users": {
            "get": {
                "operationId": "listUsers",
                "parameters": paging,
                "responses": {**ok(listing("#/components/schemas/User")), **_error_responses(400, 401, 403)},
            },
            "post": {
                "operationId": "createUser",
                "requestBody": body(user_fields, ["email", "name", "role", "password"]),
                "responses": {**ok(ref("User"), "201", "Created"), **_error_responses(400, 401, 403, 409, 422)},
            },
        },
        "/api/users/{id}": {
            "parameters": [path_param("id", "integer")],
            "get": {"operationId": "readUser", "responses": {**ok(ref("User")), **_error_responses(401, 403, 404)}},
            "patch": {
                "operationId": "updateUser",
                "requestBody": body({**user_fields, "active": {"type": "boolean"}}),
                "responses": {**ok(ref("User")), **_error_responses(400, 401, 403, 404, 409, 422)},
            },
            "delete": {"operationId": "deleteUser", "responses": {**deleted, **_error_responses(401, 403, 404, 409)}},
        },
        "/api/roles": {
            "get": {"operationId": "listRoles", "responses": {**ok({"type": "object"}), **_error_responses(401, 403)}},
            "post": {
                "operationId": "createRole",
                "requestBody": body({"name": {"type": "string"}, "label": {"type": "string"}}, ["name"]),
                "responses": {**ok(ref("Role"), "201", "Created"), **_error_responses(400, 401, 403, 409, 422)},
            },
        },
        "/api/tokens": {
            "get": {"operationId": "listTokens", "responses": {**ok({"type": "object"}), **_error_responses(401)}}
        },
        "/api/tokens/{id}": {
            "parameters": [path_param("id", "integer")],
            "delete": {"operationId": "revokeToken", "responses": {**deleted, **_error_responses(401, 403, 404)}},
        },
        "/api/audit": {
            "get": {
                "operationId": "listAudit",
                "summary": "Audit events (admins)",
                "parameters": [
                    *paging,
                    query("actor"),
                    query("action"),
                    query("target"),
                    query("since", format="date-time"),
                    query("until", format="date-time"),
                ],
                "responses": {**ok(listing("#/components/schemas/AuditEvent")), **_error_responses(400, 401, 403)},
            }
        },
        "/api/files/{collection}/{id}/{field}/{filename}": {
            "parameters": [
                path_param("collection"),
                path_param("id", "integer"),
                path_param("field"),
                path_param("filename"),
            ],
            "get": {
                "operationId": "downloadFile",
                "summary": "Download an uploaded file (view permission on the record)",
                "responses": {
                    "200": {
                        "description": "The file, as an attachment",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **_error_responses(401, 403, 404),
                },
            },
        },
        "/api/backups": {
            "get": {
                "operationId": "listBackups",
                "parameters": paging,
                "responses": {**ok(listing("#/components/schemas/Backup")), **_error_responses(401, 403)},
            },
            "post": {
                "operationId": "createBackup",
                "summary": "Make a backup now (answers when written and verified)",
                "responses": {**ok(ref("Backup"), "201", "Created"), **_error_responses(401, 403, 409)},
            },
        },
        "/api/backups/{name}/download": {
            "parameters": [path_param("name")],
            "get": {
                "operationId": "downloadBackup",
                "responses": {
                    "200": {
                        "description": "The archive",
                        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **_error_responses(401, 403, 404),
                },
            },
        },
        "/api/jobs": {
            "get": {
                "operationId": "listJobs",
                "parameters": paging,
                "responses": {**ok(listing("#/components/schemas/Job")), **_error_responses(401, 403)},
            }
        },
        "/api/jobs/{name}": {
            "parameters": [path_param("name")],
            "get": {"operationId": "readJob", "responses": {**ok(ref("Job")), **_error_responses(401, 403, 404)}},
            "patch": {
                "operationId": "updateJob",
                "requestBody": body({"schedule": {}, "enabled": {"type": "boolean"}}),
                "responses": {**ok(ref("Job")), **_error_responses(400, 401, 403, 404, 422)},
            },
        },
        "/api/jobs/{name}/run": {
            "parameters": [path_param("name")],
            "post": {
                "operationId": "runJob",
                "responses": {**ok(ref("JobRun"), "202", "Started"), **_error_responses(401, 403, 404, 409)},
            },
        },
        "/api/jobs/{name}/runs": {
            "parameters": [path_param("name")],
            "get": {
                "operationId": "listJobRuns",
                "parameters": paging,
                "responses": {**ok(listing("#/components/schemas/JobRun")), **_error_responses(401, 403, 404)},
            },
        },
        "/api/system/status": {
            "get": {
                "operationId": "systemStatus",
                "responses": {**ok(ref("Status")), **_error_responses(401, 403)},
            }
        },
    }


def build_document(collections: Iterable[CollectionDef], *, base_url: str = "", actor: Any = None) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for ``collections`` (those the caller may view).

    Given ``actor`` (the caller), a relation field pointing at a collection it may not learn of does
    not name that collection.
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
        {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
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
                    **_error_responses(401),
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
                                    "fields": {"type": "array", "items": {"type": "object"}},
                                    "permissions": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **ok({"$ref": "#/components/schemas/Collection"}, "201", "Created"),
                    **_error_responses(400, 401, 403, 409, 422),
                },
            },
        }
    }
    for collection in collections:
        name = collection.name
        prefix = f"#/components/schemas/{name}."
        hidden = hidden_relation_targets(collection, actor) if actor is not None else set()
        for key, schema in _record_schemas(collection, hidden).items():
            schemas[f"{name}.{key}"] = schema
        id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
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
                "responses": {**ok({"$ref": "#/components/schemas/Collection"}), **_error_responses(401, 404)},
            },
            "patch": {
                "operationId": f"{name}.updateCollection",
                "summary": f"Change {collection.label} (admins); field changes migrate its table",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    **ok({"$ref": "#/components/schemas/Collection"}),
                    **_error_responses(400, 401, 403, 404, 409, 422),
                },
            },
            "delete": {
                "operationId": f"{name}.deleteCollection",
                "responses": {"204": {"description": "Deleted"}, **_error_responses(401, 403, 404, 409)},
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
                    *_filter_parameters(collection),
                ],
                "responses": {**ok(listing(prefix + "Record")), **_error_responses(400, 401, 403, 404)},
            },
            "post": {
                "operationId": f"{name}.create",
                "summary": f"Create a record in {collection.label}",
                "requestBody": body,
                "responses": {
                    **ok(record_ref, "201", "Created"),
                    **_error_responses(400, 401, 403, 404, 409, 413, 422),
                },
            },
        }
        paths[f"{base}/records/{{id}}"] = {
            "parameters": [id_param],
            "get": {
                "operationId": f"{name}.read",
                "responses": {**ok(record_ref), **_error_responses(401, 403, 404)},
            },
            "patch": {
                "operationId": f"{name}.update",
                "requestBody": patch_body,
                "responses": {**ok(record_ref), **_error_responses(400, 401, 403, 404, 409, 413, 422)},
            },
            "delete": {
                "operationId": f"{name}.delete",
                "responses": {"204": {"description": "Deleted"}, **_error_responses(401, 403, 404, 409)},
            },
        }
        paths[f"{base}/records/{{id}}/history"] = {
            "parameters": [id_param],
            "get": {
                "operationId": f"{name}.history",
                "parameters": paging,
                "responses": {
                    **ok(listing("#/components/schemas/HistoryItem")),
                    **_error_responses(400, 401, 403, 404),
                },
            },
        }
        paths[f"{base}/records/{{id}}/history/{{version}}/restore"] = {
            "parameters": [
                id_param,
                {"name": "version", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}},
            ],
            "post": {
                "operationId": f"{name}.restore",
                "responses": {**ok(record_ref), **_error_responses(401, 403, 404, 409, 422)},
            },
        }
    paths.update(_static_paths(ok, listing, paging))
    schemas.update(_STATIC_SCHEMAS)
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
