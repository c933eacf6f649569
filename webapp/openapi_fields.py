"""The OpenAPI schemas of one collection: each field's value (from the table of field types), the record,
create, patch and multipart bodies, and the listing's filter parameters (the system fields' included)."""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

from appliance.collections.definitions import CollectionDef
from appliance.collections.fields import Field
from appliance.records.query import SYSTEM_FIELD_TYPES, operators_for


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema:
        kind = schema["type"]
        schema["type"] = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _bounds(schema: dict[str, Any], spec: Field) -> None:
    """``min``/``max`` as JSON Schema states them: a text's length, a number's range (a date's has no keyword)."""
    bounds = spec.field_type.bounds
    if bounds == "length":
        if spec.max is not None:
            schema["maxLength"] = min(schema.get("maxLength", spec.max), spec.max)
        if spec.min is not None:
            schema["minLength"] = max(spec.min, 1)
    elif bounds == "number":
        if spec.min is not None:
            schema["minimum"] = spec.min
        if spec.max is not None:
            schema["maximum"] = spec.max


def value_schema(spec: Field, *, for_input: bool, hidden: Collection[str] = ()) -> dict[str, Any]:
    """The JSON Schema of one field's value (input: what may be sent; else what is answered): its type's
    schema narrowed by the field's options.

    A relation to a collection in ``hidden`` (one the caller may not learn of) does not name it.
    """
    kind = spec.field_type
    if for_input and kind.input_schema is not None:
        return copy.deepcopy(dict(kind.input_schema))
    schema: dict[str, Any] = copy.deepcopy(dict(kind.schema))
    if "type" not in schema:  # any JSON value, or whatever a formula gives
        if for_input and not spec.formula:  # any JSON the edge parser takes: whole numbers fit 64 bits
            return {**schema, "$ref": JSON_VALUE}
        if spec.formula:
            schema["description"] = f"Computed: {spec.formula}"
        return schema
    _bounds(schema, spec)
    if spec.pattern:
        schema["pattern"] = f"^(?:{spec.pattern})$"
    if spec.choices is not None:
        schema["enum"] = list(spec.choices)
    if spec.collection is not None:
        target = "a collection you cannot see" if spec.collection in hidden else f"'{spec.collection}'"
        schema["description"] = f"The id of a record of {target}."
    if spec.label and spec.label != spec.name:
        schema.setdefault("title", spec.label)
    return schema if (for_input and spec.required) else _nullable(schema)


def record_schemas(
    collection: CollectionDef, hidden: Collection[str] = (), read_only: Collection[str] = ()
) -> dict[str, Any]:
    """The ``Record``, ``Input``, ``Patch`` and ``Multipart`` schemas of ``collection``; ``hidden`` are the
    collections a relation may not name, ``read_only`` the fields the caller sees but may not set."""
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
            **{
                f.name: {
                    **value_schema(f, for_input=False, hidden=hidden),
                    **({"readOnly": True} if f.name in read_only else {}),
                }
                for f in collection.fields
            },
        },
        "required": [*system, *(f.name for f in collection.fields)],
    }
    writable = [f for f in collection.fields if not f.read_only and f.name not in read_only]
    inputs = {f.name: value_schema(f, for_input=True, hidden=hidden) for f in writable}
    create = {
        "type": "object",
        "properties": inputs,
        "additionalProperties": False,
        "required": [f.name for f in writable if f.required and f.default is None and not f.field_type.upload],
    }
    patch = {"type": "object", "properties": inputs, "additionalProperties": False}
    multipart_props: dict[str, Any] = {}
    for f in writable:
        multipart_props[f.name] = {"type": "string", "format": "binary"} if f.field_type.upload else {"type": "string"}
    multipart = {"type": "object", "properties": multipart_props, "additionalProperties": False}
    return {"Record": record, "Input": create, "Patch": patch, "Multipart": multipart}


def filter_parameters(collection: CollectionDef) -> list[dict[str, Any]]:
    """The listing's query parameters for filters: every operator of every field's type, system fields first."""
    params = []
    system = [Field(name=name, type=kind) for name, kind in SYSTEM_FIELD_TYPES.items()]
    for spec in [*system, *collection.fields]:
        for op in operators_for(spec.type):
            name = spec.name if op == "eq" else f"{spec.name}__{op}"
            schema: dict[str, Any]
            if op == "isnull":
                schema = {
                    "type": "string",
                    "pattern": YES_NO_PATTERN,
                    "description": "true or false (also 1/0, yes/no, on/off)",
                }
            elif op == "in":
                item = _in_item(spec)
                schema = {
                    "type": "string",
                    "pattern": f"^{item}(,{item}){{0,99}}$",
                    "description": "1 to 100 comma-separated values.",
                }
            elif spec.choices is not None and op in ("eq", "ne"):
                # Any text filters (a value no record has matches nothing); the choices are the useful ones.
                schema = {"type": "string", "examples": list(spec.choices)}
            else:
                schema = dict(spec.field_type.filter_schema or {"type": "string"})
                if schema.get("type") == "boolean":  # a query's word, as isnull takes it
                    schema = {"type": "string", "pattern": YES_NO_PATTERN}
                if schema.get("type") == "integer":
                    schema.update(minimum=-INT64 - 1, maximum=INT64)
            params.append({"name": name, "in": "query", "required": False, "schema": schema})
    return params


JSON_VALUE = "#/components/schemas/JsonValue"
# The words of appliance.text.TRUE_WORDS and FALSE_WORDS, in any case, with spaces around.
YES_NO_PATTERN = r"^\s*([Tt][Rr][Uu][Ee]|1|[Yy][Ee][Ss]|[Oo][Nn]|[Ff][Aa][Ll][Ss][Ee]|0|[Nn][Oo]|[Oo][Ff][Ff])\s*$"
INT64 = 2**63 - 1
_DAY = "[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_IN_ITEMS = {
    "integer": "-?[0-9]{1,18}",
    "relation": "[0-9]{1,18}",
    "number": "[+-]?([0-9]{1,15}(\\.[0-9]{0,15})?|\\.[0-9]{1,15})([eE][+-]?[0-9]{1,2})?",
    "date": _DAY,
    "datetime": f"{_DAY}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z",
}


def _in_item(spec: Field) -> str:
    """A regular expression of one value of an ``__in`` filter on ``spec``."""
    return _IN_ITEMS.get(spec.type, "[^,]+")


# Any JSON value the edge parser takes (whole numbers within 64 bits), for free-form inputs.
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": ["string", "boolean", "null"]},
        {"type": "integer", "minimum": -INT64 - 1, "maximum": INT64},
        {"type": "number", "not": {"type": "integer"}},
        {"type": "array", "items": {"$ref": JSON_VALUE}},
        {"type": "object", "additionalProperties": {"$ref": JSON_VALUE}},
    ]
}
