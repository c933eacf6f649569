"""The OpenAPI paths of the API added since the first document: two-factor, account links, unlocking,
sign-out everywhere, custom roles' removal, webhooks, automation rules, MCP agents' tokens and approvals,
and a collection's deleted records, CSV export and import."""

from __future__ import annotations

from typing import Any

from appliance.records.events import EVENT_TYPES as WEBHOOK_EVENTS
from webapp.openapi_fields import JSON_VALUE, JSON_VALUE_SCHEMA
from webapp.openapi_static import INT64, error_responses

OBJECT: dict[str, Any] = {"type": "object"}
FREE_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": {"$ref": JSON_VALUE}}
LAST_PAGE = INT64 // 500  # the last page whose row offset fits at the largest page size


def _json(schema: dict[str, Any], status: str = "200", description: str = "OK") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


def _body(properties: dict[str, Any], required: list[str] | None = None, *, optional: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return {"required": not optional, "content": {"application/json": {"schema": schema}}}


def _op(operation_id: str, summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "summary": summary, "responses": responses, **more}


def _int_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": -INT64, "maximum": INT64},
    }


def _str_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def more_paths(listing: Any, paging: list[dict[str, Any]]) -> dict[str, Any]:
    """The paths of API.md's wave-2 additions (``listing``/``paging`` as in :func:`webapp.openapi.build_document`)."""

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    deleted = {"204": {"description": "Done"}}
    code = {"code": {"type": "string"}}
    user_id = _int_param("id")
    webhook_id = _int_param("id")
    rule_id = _str_param("id")
    webhook_fields = {
        "url": {"type": "string", "format": "uri", "pattern": "^https?://"},
        "collection": {"type": "string"},
        "events": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "enum": list(WEBHOOK_EVENTS)},
        },
        "active": {"type": "boolean"},
        "description": {"type": "string"},
    }
    return {
        "/api/me/sign-out-everywhere": {
            "post": _op(
                "signOutEverywhere",
                "End every browser session of the caller",
                {**deleted, **error_responses(400, 401, 403)},
            )
        },
        "/api/me/totp": {
            "post": _op(
                "startTotp",
                "A new two-factor secret for the caller (active once confirmed)",
                {**_json(ref("TotpSetup")), **error_responses(400, 401, 403, 409)},
            ),
            "delete": _op(
                "disableTotp",
                "Turn the caller's two-factor off with a current code (throttled like a sign-in)",
                {**deleted, **error_responses(400, 401, 403, 409, 422, 429)},
                requestBody=_body(code, ["code"]),
            ),
        },
        "/api/me/totp/confirm": {
            "post": _op(
                "confirmTotp",
                "Turn two-factor on with a first code; answers the recovery codes (shown once)",
                {
                    **_json(
                        {
                            "type": "object",
                            "required": ["recovery_codes"],
                            "properties": {"recovery_codes": {"type": "array", "items": {"type": "string"}}},
                        }
                    ),
                    **error_responses(400, 401, 403, 409, 422),
                },
                requestBody=_body(code, ["code"]),
            )
        },
        "/api/auth/forgot": {
            "post": _op(
                "forgotPassword",
                "Mail a password-reset link; the same answer whether or not the address has an account",
                {
                    **_json({"type": "object", "properties": {"message": {"type": "string"}}}, "202", "Accepted"),
                    **error_responses(400, 422, 429, 503),
                },
                security=[],
                requestBody=_body({"email": {"type": "string"}}, ["email"]),
            )
        },
        "/api/users/invite": {
            "post": _op(
                "inviteUser",
                "Add a user who chooses their own password through a one-time link (200 when an invitation was replaced)",
                {
                    **_json(ref("Invited")),
                    **_json(ref("Invited"), "201", "Created"),
                    **error_responses(400, 401, 403, 409, 422),
                },
                requestBody=_body(
                    {"email": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string"}},
                    ["email", "name", "role"],
                ),
            )
        },
        "/api/users/{id}/reset-link": {
            "parameters": [user_id],
            "post": _op(
                "createResetLink",
                "A one-time link (1 hour) where the user chooses a new password",
                {**_json(ref("ResetLink"), "201", "Created"), **error_responses(400, 401, 403, 404, 409)},
            ),
        },
        "/api/users/{id}/sign-out-everywhere": {
            "parameters": [user_id],
            "post": _op(
                "signOutUserEverywhere",
                "End every browser session of a user",
                {**deleted, **error_responses(401, 403, 404)},
            ),
        },
        "/api/users/{id}/unlock": {
            "parameters": [user_id],
            "post": _op(
                "unlockUser", "Lift a user's sign-in lock-out", {**_json(ref("User")), **error_responses(401, 403, 404)}
            ),
        },
        "/api/users/{id}/totp/reset": {
            "parameters": [user_id],
            "post": _op(
                "resetTotp",
                "Turn a user's two-factor off (admins)",
                {
                    **_json(
                        {
                            "type": "object",
                            "required": ["id", "email", "totp"],
                            "properties": {
                                "id": {"type": "integer"},
                                "email": {"type": "string"},
                                "totp": {"type": "boolean"},
                            },
                        }
                    ),
                    **error_responses(401, 403, 404),
                },
            ),
        },
        "/api/roles/{name}": {
            "parameters": [_str_param("name")],
            "delete": _op(
                "deleteRole",
                "Remove a custom role; 409 for a built-in one or one still in use",
                {**deleted, **error_responses(401, 403, 404, 409)},
            ),
        },
        "/api/webhooks": {
            "get": _op(
                "listWebhooks",
                "The webhooks (admins)",
                {**_json(listing("#/components/schemas/Webhook")), **error_responses(400, 401, 403)},
                parameters=paging,
            ),
            "post": _op(
                "createWebhook",
                "Add a webhook; answers it with its secret, shown this once",
                {**_json(ref("Webhook"), "201", "Created"), **error_responses(400, 401, 403, 409, 422)},
                requestBody=_body(webhook_fields, ["url", "collection"]),
            ),
        },
        "/api/webhooks/{id}": {
            "parameters": [webhook_id],
            "get": _op("readWebhook", "One webhook", {**_json(ref("Webhook")), **error_responses(401, 403, 404)}),
            "patch": _op(
                "updateWebhook",
                "Change a webhook",
                {**_json(ref("Webhook")), **error_responses(400, 401, 403, 404, 409, 422)},
                requestBody=_body(webhook_fields),
            ),
            "delete": _op("deleteWebhook", "Remove a webhook", {**deleted, **error_responses(401, 403, 404)}),
        },
        "/api/webhooks/{id}/rotate-secret": {
            "parameters": [webhook_id],
            "post": _op(
                "rotateWebhookSecret",
                "A new signing secret, shown this once",
                {**_json(ref("Webhook")), **error_responses(401, 403, 404)},
            ),
        },
        "/api/webhooks/{id}/deliveries": {
            "parameters": [webhook_id],
            "get": _op(
                "listWebhookDeliveries",
                "The delivery log, newest first",
                {**_json(listing("#/components/schemas/Delivery")), **error_responses(400, 401, 403, 404)},
                parameters=[
                    *paging,
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                    },
                ],
            ),
        },
        "/api/webhooks/{id}/deliveries/{delivery}/retry": {
            "parameters": [webhook_id, _int_param("delivery")],
            "post": _op(
                "retryDelivery",
                "Replay one delivery now",
                {**_json(ref("Delivery"), "202", "Accepted"), **error_responses(401, 403, 404, 409)},
            ),
        },
        "/api/webhooks/{id}/deliveries/retry-failed": {
            "parameters": [webhook_id],
            "post": _op(
                "retryFailedDeliveries",
                "Replay every failed delivery of the webhook now",
                {
                    **_json(
                        {"type": "object", "required": ["retried"], "properties": {"retried": {"type": "integer"}}},
                        "202",
                        "Accepted",
                    ),
                    **error_responses(401, 403, 404),
                },
            ),
        },
        "/api/rules": {
            "get": _op(
                "listRules",
                "The automation rules (admins)",
                {**_json(listing("#/components/schemas/Rule")), **error_responses(400, 401, 403)},
                parameters=paging,
            ),
            "post": _op(
                "createRule",
                "Add an automation rule",
                {**_json(ref("Rule"), "201", "Created"), **error_responses(400, 401, 403, 409, 422)},
                requestBody={"required": True, "content": {"application/json": {"schema": FREE_OBJECT}}},
            ),
        },
        "/api/rules/{id}": {
            "parameters": [rule_id],
            "get": _op("readRule", "One rule", {**_json(ref("Rule")), **error_responses(401, 403, 404)}),
            "patch": _op(
                "updateRule",
                "Change a rule",
                {**_json(ref("Rule")), **error_responses(400, 401, 403, 404, 409, 422)},
                requestBody={"required": True, "content": {"application/json": {"schema": FREE_OBJECT}}},
            ),
            "delete": _op("deleteRule", "Remove a rule", {**deleted, **error_responses(401, 403, 404)}),
        },
        "/api/rules/{id}/runs": {
            "parameters": [rule_id],
            "get": _op(
                "listRuleRuns",
                "A rule's runs, newest first",
                {**_json(listing("#/components/schemas/RuleRun")), **error_responses(400, 401, 403, 404)},
                parameters=paging,
            ),
        },
        "/api/rules/{id}/test": {
            "parameters": [rule_id],
            "post": _op(
                "testRule",
                "What the rule would do to a record, changing nothing",
                {**_json(OBJECT), **error_responses(400, 401, 403, 404, 422)},
                requestBody=_body({"record_id": {"type": "integer"}}, ["record_id"]),
            ),
        },
        "/api/mcp/tokens": {
            "post": _op(
                "createAgentToken",
                "An MCP agent token for the caller, with its set-up (the secret shown this once)",
                {**_json(OBJECT, "201", "Created"), **error_responses(400, 401, 403, 404, 422)},
                requestBody=_body(
                    {
                        "user": {"type": ["string", "integer"]},
                        "name": {"type": "string"},
                        "scope": {"type": "string", "enum": ["read", "write"]},
                        "expires_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650},
                        "mcp_tools": {"type": ["array", "null"], "items": {"type": "string"}},
                        "mcp_collections": {"type": ["array", "null"], "items": {"type": "string"}},
                        "mcp_approval": {"type": "boolean"},
                    },
                    ["user"],
                ),
            )
        },
        "/api/mcp/pending": {
            "get": _op(
                "listPendingAgentCalls",
                "Agents' calls waiting for approval",
                {
                    **_json(
                        {
                            "type": "object",
                            "required": ["items", "waiting"],
                            "properties": {"items": {"type": "array", "items": OBJECT}, "waiting": {"type": "integer"}},
                        }
                    ),
                    **error_responses(400, 401, 403),
                },
                parameters=[
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["pending", "applied", "rejected", "failed"]},
                    }
                ],
            )
        },
        "/api/mcp/pending/{id}/approve": {
            "parameters": [_int_param("id")],
            "post": _op(
                "approveAgentCall",
                "Approve and run a waiting call",
                {**_json(OBJECT), **error_responses(401, 403, 404, 409)},
            ),
        },
        "/api/mcp/pending/{id}/reject": {
            "parameters": [_int_param("id")],
            "post": _op(
                "rejectAgentCall", "Refuse a waiting call", {**_json(OBJECT), **error_responses(401, 403, 404, 409)}
            ),
        },
        "/api/openapi.json": {
            "get": _op("openapi", "This document, for the caller", {**_json(OBJECT), **error_responses(401)})
        },
    }


MORE_SCHEMAS: dict[str, Any] = {
    "TotpSetup": {
        "type": "object",
        "required": ["secret", "otpauth_uri"],
        "properties": {"secret": {"type": "string"}, "otpauth_uri": {"type": "string"}},
    },
    "Invited": {
        "type": "object",
        "required": ["id", "email", "invitation"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "invitation": OBJECT,
            "invite_url": {"type": "string"},
        },
    },
    "ResetLink": {
        "type": "object",
        "required": ["user", "expires_at", "mailed"],
        "properties": {
            "user": OBJECT,
            "expires_at": {"type": "string"},
            "mailed": {"type": "boolean"},
            "reset_url": {"type": "string"},
            "mail_error": {"type": "string"},
        },
    },
    "Webhook": {
        "type": "object",
        "required": ["id", "url"],
        "properties": {"id": {"type": "integer"}, "url": {"type": "string"}, "secret": {"type": "string"}},
    },
    "Delivery": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
    "Rule": {"type": "object", "required": ["id"]},
    "RuleRun": OBJECT,
    "JsonValue": JSON_VALUE_SCHEMA,
}


def collection_extras(name: str, label: str, record_listing: dict[str, Any]) -> dict[str, Any]:
    """A collection's deleted records, CSV export and CSV import."""
    base = f"/api/collections/{name}"
    return {
        f"{base}/deleted": {
            "get": _op(
                f"{name}.deleted",
                f"Deleted records of {label} that may still be restored",
                {**_json(record_listing), **error_responses(400, 401, 403, 404)},
            )
        },
        f"{base}/export.csv": {
            "get": _op(
                f"{name}.exportCsv",
                f"{label} as CSV (the list's filters apply)",
                {
                    "200": {"description": "The CSV file", "content": {"text/csv": {"schema": {"type": "string"}}}},
                    **error_responses(400, 401, 403, 404),
                },
            )
        },
        f"{base}/import": {
            "post": _op(
                f"{name}.importCsv",
                f"Import a CSV file into {label}",
                {
                    **_json(OBJECT),
                    **_json(OBJECT, "201", "Created"),
                    **_json(OBJECT, "202", "Accepted"),
                    **error_responses(400, 401, 403, 404, 409, 413, 422),
                },
                requestBody={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {"type": "string", "minLength": 1, "contentMediaType": "text/csv"}
                                },
                            },
                            "encoding": {"file": {"contentType": "text/csv"}},
                        }
                    },
                },
            )
        },
    }
