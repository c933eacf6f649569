"""The fixed part of the OpenAPI document: the paths and schemas of API.md that no collection changes
(health checks, token, me, users, roles, tokens, audit, files, backups, jobs, system status), and the
error answers every path shares."""

from __future__ import annotations

from typing import Any

from appliance.collections.types import ISO_MOMENT_PATTERN

INT64 = 2**63 - 1  # the largest whole number the database stores (and the edge parser takes)

ERROR = {"$ref": "#/components/schemas/Error"}


def error_responses(*codes: int) -> dict[str, Any]:
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


STATIC_SCHEMAS: dict[str, Any] = {
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


def static_paths(ok: Any, listing: Any, paging: list[dict[str, Any]]) -> dict[str, Any]:
    """The paths of API.md that do not depend on the collections."""

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def body(
        properties: dict[str, Any], required: list[str] | None = None, depends: dict[str, list[str]] | None = None
    ) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        if depends:
            schema["dependentRequired"] = depends
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def path_param(name: str, kind: str = "string", **schema: Any) -> dict[str, Any]:
        bounds = {"minimum": 0, "maximum": INT64} if kind == "integer" else {}
        return {"name": name, "in": "path", "required": True, "schema": {"type": kind, **bounds, **schema}}

    def query(name: str, **schema: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": {"type": "string", **schema}}

    deleted = {"204": {"description": "Deleted"}}
    moment = "An ISO 8601 date, or date and time (UTC without an offset); empty: no bound"
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
                "responses": {**ok(status_body), **error_responses(503)},
            }
        },
        "/api/auth/token": {
            "post": {
                "operationId": "createToken",
                "summary": "An API token for an email and password (throttled like sign-in)",
                "security": [],
                "requestBody": body(
                    {
                        "email": {"type": "string"},
                        "password": {"type": "string"},
                        "otp": {"type": "string"},
                        "name": {"type": "string"},
                        "scope": {"type": "string", "enum": ["read", "write"]},
                        "expires_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650},
                        "mcp": {"type": "boolean"},
                        "mcp_tools": {"type": ["array", "null"], "items": {"type": "string"}},
                        "mcp_collections": {"type": ["array", "null"], "items": {"type": "string"}},
                        "mcp_approval": {"type": "boolean"},
                    },
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
                    **error_responses(400, 401, 403, 422, 429),
                },
            }
        },
        "/api/me": {
            "get": {
                "operationId": "me",
                "summary": "The caller",
                "responses": {**ok(ref("User")), **error_responses(401)},
            }
        },
        "/api/users": {
            "get": {
                "operationId": "listUsers",
                "parameters": paging,
                "responses": {**ok(listing("#/components/schemas/User")), **error_responses(400, 401, 403)},
            },
            "post": {
                "operationId": "createUser",
                "requestBody": body(
                    {**user_fields, "must_change_password": {"type": "boolean"}}, ["email", "name", "role", "password"]
                ),
                "responses": {**ok(ref("User"), "201", "Created"), **error_responses(400, 401, 403, 409, 422)},
            },
        },
        "/api/users/{id}": {
            "parameters": [path_param("id", "integer")],
            "get": {"operationId": "readUser", "responses": {**ok(ref("User")), **error_responses(401, 403, 404)}},
            "patch": {
                "operationId": "updateUser",
                "requestBody": body(
                    {
                        **user_fields,
                        "active": {"type": "boolean"},
                        "must_change_password": {"type": "boolean"},
                        "revoke_tokens": {"type": "boolean"},
                    },
                    depends={"must_change_password": ["password"], "revoke_tokens": ["password"]},
                ),
                "responses": {**ok(ref("User")), **error_responses(400, 401, 403, 404, 409, 422)},
            },
            "delete": {"operationId": "deleteUser", "responses": {**deleted, **error_responses(401, 403, 404, 409)}},
        },
        "/api/roles": {
            "get": {
                "operationId": "listRoles",
                "summary": "Every role (built-in and custom)",
                "responses": {**ok({"type": "array", "items": ref("Role")}), **error_responses(401)},
            },
            "post": {
                "operationId": "createRole",
                "requestBody": body({"name": {"type": "string"}, "label": {"type": "string"}}, ["name"]),
                "responses": {**ok(ref("Role"), "201", "Created"), **error_responses(400, 401, 403, 409, 422)},
            },
        },
        "/api/tokens": {
            "get": {"operationId": "listTokens", "responses": {**ok({"type": "object"}), **error_responses(401)}}
        },
        "/api/tokens/{id}": {
            "parameters": [path_param("id", "integer")],
            "delete": {"operationId": "revokeToken", "responses": {**deleted, **error_responses(401, 403, 404)}},
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
                    query("since", pattern=f"(^$)|({ISO_MOMENT_PATTERN})", description=moment),
                    query("until", pattern=f"(^$)|({ISO_MOMENT_PATTERN})", description=moment),
                ],
                "responses": {**ok(listing("#/components/schemas/AuditEvent")), **error_responses(400, 401, 403)},
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
                    **error_responses(401, 403, 404),
                },
            },
        },
        "/api/backups": {
            "get": {
                "operationId": "listBackups",
                "parameters": paging,
                "responses": {**ok(listing("#/components/schemas/Backup")), **error_responses(400, 401, 403)},
            },
            "post": {
                "operationId": "createBackup",
                "summary": "Make a backup now (answers when written and verified)",
                "responses": {**ok(ref("Backup"), "201", "Created"), **error_responses(401, 403, 409)},
            },
        },
        "/api/backups/{name}/download": {
            "parameters": [path_param("name", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.zip$")],
            "get": {
                "operationId": "downloadBackup",
                "responses": {
                    "200": {
                        "description": "The archive",
                        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **error_responses(400, 401, 403, 404),
                },
            },
        },
        "/api/jobs": {
            "get": {
                "operationId": "listJobs",
                "parameters": paging,
                "responses": {**ok(listing("#/components/schemas/Job")), **error_responses(400, 401, 403)},
            }
        },
        "/api/jobs/{name}": {
            "parameters": [path_param("name")],
            "get": {"operationId": "readJob", "responses": {**ok(ref("Job")), **error_responses(401, 403, 404)}},
            "patch": {
                "operationId": "updateJob",
                "requestBody": body({"schedule": {"type": "string", "minLength": 1}, "enabled": {"type": "boolean"}}),
                "responses": {**ok(ref("Job")), **error_responses(400, 401, 403, 404, 422)},
            },
        },
        "/api/jobs/{name}/run": {
            "parameters": [path_param("name")],
            "post": {
                "operationId": "runJob",
                "responses": {**ok(ref("JobRun"), "202", "Started"), **error_responses(401, 403, 404, 409)},
            },
        },
        "/api/jobs/{name}/runs": {
            "parameters": [path_param("name")],
            "get": {
                "operationId": "listJobRuns",
                "parameters": paging,
                "responses": {**ok(listing("#/components/schemas/JobRun")), **error_responses(400, 401, 403, 404)},
            },
        },
        "/api/system/status": {
            "get": {
                "operationId": "systemStatus",
                "responses": {**ok(ref("Status")), **error_responses(401, 403)},
            }
        },
    }
