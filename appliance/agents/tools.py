"""The MCP tools an AI agent may call: fixed names, fixed descriptions, input and output schemas, hints.

Everything here is constant text. Record contents never enter a description
or a schema: they travel only as data inside results (a record that says
"ignore previous instructions" is a value, not an instruction). The output
schemas are the shapes of ``structuredContent``; a refused call answers
:data:`ERROR_SCHEMA` instead (with ``isError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.accounts.tokens import MCP_TOOLS, MCP_WRITE_TOOLS

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

_NAME = {"type": "string", "minLength": 1, "maxLength": 50, "description": "The collection's name, e.g. customers."}
_ID = {"type": "integer", "minimum": 1, "description": "The record's id."}
_RECORD = {
    "type": "object",
    "description": "A record: id, created_at, updated_at, created_by, updated_by, then its fields.",
    "properties": {"id": {"type": "integer"}},
    "required": ["id"],
    "additionalProperties": True,
}
_FILTERS = {
    "type": "object",
    "description": (
        "Filters as the REST listing takes them: keys FIELD or FIELD__OP (ops: ne, lt, lte, gt, gte, "
        "contains, startswith, in, isnull; which ones a field takes is in describe_collection), "
        'values as text, e.g. {"status": "open", "quantity__gte": "5", "name__contains": "acme"}.'
    ),
    "additionalProperties": {"type": ["string", "number", "integer", "boolean"]},
}
_SEARCH = {"type": "string", "maxLength": 500, "description": "Words that must all appear in the text fields."}
_PAGE = {"type": "integer", "minimum": 1, "default": 1, "description": "The page, from 1."}
_PAGE_SIZE = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_PAGE_SIZE,
    "default": DEFAULT_PAGE_SIZE,
    "description": f"Records per page (default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE}).",
}
_VALUES = {
    "type": "object",
    "description": "Field values by field name, as describe_collection lists the fields.",
    "additionalProperties": True,
}
_MAY = {
    "type": "object",
    "description": "What you may do with its records: all, own (only the ones you created) or null.",
    "properties": {a: {"type": ["string", "null"]} for a in ("view", "create", "update", "delete")},
}
_LISTING = {
    "type": "object",
    "properties": {
        "items": {"type": "array"},
        "page": {"type": "integer"},
        "page_size": {"type": "integer"},
        "total_items": {"type": "integer"},
        "total_pages": {"type": "integer"},
    },
    "required": ["items", "page", "page_size", "total_items", "total_pages"],
}
_PENDING = {
    "type": "object",
    "description": "The write was not made: it waits for an admin's approval; ask get_pending for the outcome.",
    "properties": {
        "pending_id": {"type": "integer"},
        "status": {"const": "pending"},
        "message": {"type": "string"},
    },
    "required": ["pending_id", "status", "message"],
}
_WRITTEN = {
    "type": "object",
    "properties": {"record": _RECORD},
    "required": ["record"],
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "retry_after_seconds": {"type": "integer"},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


def _object(
    properties: dict[str, Any] | None = None, required: tuple[str, ...] = (), *, closed: bool = True
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if closed:
        schema["additionalProperties"] = False
    if required:
        schema["required"] = list(required)
    return schema


@dataclass(frozen=True)
class ToolSpec:
    """One tool as ``tools/list`` shows it. ``write`` tools need a write-scoped token."""

    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    read_only: bool
    destructive: bool
    idempotent: bool

    @property
    def write(self) -> bool:
        return self.name in MCP_WRITE_TOOLS


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "whoami",
        "Who am I",
        "Tells you which user you act as, their role, and what this token allows: its scope (read or write), "
        "the tools and collections it may use, and whether its writes need an admin's approval.",
        _object(),
        _object(
            {
                "user": {"type": "object"},
                "token": {"type": "object"},
            },
            ("user", "token"),
        ),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "list_collections",
        "List collections",
        "Lists the collections (tables of records) you may see, with their labels, how many records you may "
        "view in each, and what you may do with their records. Start here.",
        _object(),
        _object({"collections": {"type": "array", "items": {"type": "object"}}}, ("collections",)),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "describe_collection",
        "Describe a collection",
        "Describes one collection: its fields (name, type, whether required, choices, which filter operators "
        "each takes) and what you may do with its records. Call it before searching or writing.",
        _object({"collection": _NAME}, ("collection",)),
        _object(
            {
                "name": {"type": "string"},
                "label": {"type": "string"},
                "fields": {"type": "array", "items": {"type": "object"}},
                "record_count": {"type": ["integer", "null"]},
                "may": _MAY,
            },
            ("name", "label", "fields", "may"),
            closed=False,
        ),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "search_records",
        "Search records",
        "Finds records of a collection by filters and/or full-text search, one page at a time "
        f"(default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE} a page); the answer says how many match in "
        "total_items. ordering is a field name, '-' in front for descending, several comma-separated.",
        _object(
            {
                "collection": _NAME,
                "filters": _FILTERS,
                "search": _SEARCH,
                "ordering": {"type": "string", "maxLength": 200, "description": "e.g. -created_at,name"},
                "page": _PAGE,
                "page_size": _PAGE_SIZE,
            },
            ("collection",),
        ),
        _LISTING,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "get_record",
        "Get a record",
        "Reads one record of a collection by its id.",
        _object({"collection": _NAME, "id": _ID}, ("collection", "id")),
        _WRITTEN,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "count_records",
        "Count records",
        "Counts the records of a collection that match the filters and/or search (all you may view without).",
        _object({"collection": _NAME, "filters": _FILTERS, "search": _SEARCH}, ("collection",)),
        _object({"collection": {"type": "string"}, "count": {"type": "integer"}}, ("collection", "count")),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "get_record_history",
        "Get a record's history",
        "Lists the versions of one record, newest first: who changed it, when, and what changed "
        "(each field as [old, new]).",
        _object({"collection": _NAME, "id": _ID, "page": _PAGE, "page_size": _PAGE_SIZE}, ("collection", "id")),
        _LISTING,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "create_record",
        "Create a record",
        "Creates a record in a collection from field values (see describe_collection for the fields). "
        "Invalid values are refused with a message per field; nothing is written then. With a token whose "
        "writes need approval, the write waits for an admin and you get a pending_id instead.",
        _object({"collection": _NAME, "values": _VALUES}, ("collection", "values")),
        {"type": "object", "anyOf": [_WRITTEN, _PENDING]},
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    ToolSpec(
        "update_record",
        "Update a record",
        "Changes some fields of a record; fields you leave out keep their values. Invalid values are refused "
        "with a message per field; nothing is written then. With a token whose writes need approval, the "
        "write waits for an admin and you get a pending_id instead.",
        _object({"collection": _NAME, "id": _ID, "values": _VALUES}, ("collection", "id", "values")),
        {"type": "object", "anyOf": [_WRITTEN, _PENDING]},
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        "delete_record",
        "Delete a record",
        "Deletes a record, in two steps. Call it without confirm: nothing is deleted, and you get a preview "
        "of the record and a one-time confirm handle (valid 5 minutes). Show the preview to the user; if they "
        "agree, call it again with the same collection and id and that confirm handle to delete.",
        _object(
            {
                "collection": _NAME,
                "id": _ID,
                "confirm": {"type": "string", "maxLength": 200, "description": "The handle a preview gave."},
            },
            ("collection", "id"),
        ),
        {
            "type": "object",
            "anyOf": [
                _object(
                    {
                        "status": {"const": "confirm_needed"},
                        "record": _RECORD,
                        "confirm": {"type": "string"},
                        "expires_at": {"type": "string"},
                        "message": {"type": "string"},
                    },
                    ("status", "record", "confirm", "expires_at", "message"),
                ),
                _object(
                    {"status": {"const": "deleted"}, "collection": {"type": "string"}, "id": {"type": "integer"}},
                    ("status", "collection", "id"),
                ),
                _PENDING,
            ],
        },
        read_only=False,
        destructive=True,
        idempotent=False,
    ),
    ToolSpec(
        "get_pending",
        "Get a held write's outcome",
        "Tells you what became of a write that waited for an admin's approval (its pending_id): pending, "
        "applied (with the result), rejected or failed (with the error).",
        _object({"pending_id": {"type": "integer", "minimum": 1}}, ("pending_id",)),
        {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "tool": {"type": "string"}, "status": {"type": "string"}},
            "required": ["id", "tool", "status"],
        },
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
)
TOOLS_BY_NAME = {spec.name: spec for spec in TOOLS}
assert tuple(sorted(TOOLS_BY_NAME)) == tuple(sorted(MCP_TOOLS)), "the tools and the token options disagree"
