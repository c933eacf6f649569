"""The table of field types: every type of API.md is one entry with every attribute, and the definitions,
coercion, filters, OpenAPI schemas, the collection editor and the pages all read it."""

from __future__ import annotations

import dataclasses
import re

import pytest

from appliance.collections import types
from appliance.collections.fields import Field, coerce_value, from_column, parse_field, to_column
from appliance.collections.types import FIELD_TYPES, FieldType
from appliance.collections.values import FieldError
from appliance.records.query import OPERATORS, operators_for
from webapp.admin_collections import definition_errors, type_choices
from webapp.field_words import type_words
from webapp.openapi_fields import filter_parameters, value_schema

API_TYPES = (
    "text",
    "long_text",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "email",
    "url",
    "select",
    "relation",
    "file",
    "json",
    "computed",
)
# The options a definition needs for each type that needs some.
NEEDED = {"select": {"choices": ["a", "b"]}, "relation": {"collection": "items"}, "computed": {"formula": "1 + 1"}}


def minimal(kind: str) -> Field:
    return parse_field({"name": "f", "type": kind, **NEEDED.get(kind, {})})


def test_the_table_holds_exactly_the_types_of_api_md_in_their_order():
    assert tuple(FIELD_TYPES) == API_TYPES == types.TYPES


@pytest.mark.parametrize("kind", API_TYPES)
def test_every_type_has_every_attribute(kind):
    entry = FIELD_TYPES[kind]
    for attribute in dataclasses.fields(FieldType):
        assert hasattr(entry, attribute.name), attribute.name
    assert entry.name == kind
    assert entry.label and entry.label[0].isupper() and "_" not in entry.label  # words, not the name
    assert entry.column in ("TEXT", "INTEGER", "REAL", "")
    assert callable(entry.coerce) and callable(entry.filter_value)
    assert entry.operators and set(entry.operators) <= {"eq", *OPERATORS}
    assert isinstance(entry.schema, dict)
    assert entry.widget in types.WIDGETS and entry.filter_row in types.FILTER_ROWS
    assert (
        entry.needs
        <= entry.options
        <= {"min", "max", "pattern", "choices", "formula", "collection"}
        | {
            "cascade",
            "max_size",
            "accept",
        }
    )
    assert (entry.bounds is None) == ("min" not in entry.options)
    assert entry.bounds is None or entry.bounds in types.BOUNDS


@pytest.mark.parametrize("kind", API_TYPES)
def test_definitions_coercion_filters_and_schemas_read_the_entry(kind):
    entry = FIELD_TYPES[kind]
    spec = minimal(kind)
    assert spec.field_type is entry and spec.column_type == entry.column and spec.read_only == entry.read_only
    assert operators_for(kind) == entry.operators
    assert type_words(kind) == entry.label
    schema = value_schema(spec, for_input=False)
    for key, value in entry.schema.items():
        if key == "type":
            assert value in (schema["type"] if "type" in schema else schema["anyOf"][0]["type"])
        else:
            assert (schema.get(key) if "anyOf" not in schema else schema["anyOf"][0].get(key)) == value, key
    if entry.input_schema is not None:
        assert value_schema(spec, for_input=True) == entry.input_schema


def test_the_filter_parameters_of_the_openapi_document_are_the_operators_of_each_type():
    from appliance.collections.definitions import CollectionDef

    specs = [minimal(kind) for kind in API_TYPES]
    for spec, kind in zip(specs, API_TYPES, strict=True):
        spec.name = f"f_{kind}"
    names = {p["name"] for p in filter_parameters(CollectionDef("c", "C", specs, {}))}
    for spec in specs:
        expected = {spec.name if op == "eq" else f"{spec.name}__{op}" for op in spec.field_type.operators}
        assert {n for n in names if n == spec.name or n.startswith(spec.name + "__")} == expected


def test_the_editors_type_choices_are_the_table_in_the_words_people_read():
    assert type_choices() == [(entry.name, entry.label) for entry in FIELD_TYPES.values()]


def test_a_new_type_is_one_entry(monkeypatch):
    """A type added to the table (here a phone number, as text of digits) works everywhere at once."""
    phone = dataclasses.replace(
        FIELD_TYPES["text"],
        name="phone",
        label="Phone number",
        coerce=lambda spec, value, form: re.sub(r"[\s-]", "", str(value)),
        schema={"type": "string", "pattern": "^[+0-9]+$"},
        title_rank=None,
    )
    monkeypatch.setitem(FIELD_TYPES, "phone", phone)  # type: ignore[index]
    spec = parse_field({"name": "tel", "type": "phone", "max": 20, "unique": True})
    assert coerce_value(spec, "+41 44-123") == "+4144123"
    with pytest.raises(FieldError, match="at most 20 characters"):
        coerce_value(spec, "1" * 30)
    assert to_column(spec, "1") == from_column(spec, "1") == "1" and spec.column_type == "TEXT"
    assert operators_for("phone") == FIELD_TYPES["text"].operators
    assert value_schema(spec, for_input=True)["pattern"] == "^[+0-9]+$"
    assert type_words("phone") == "Phone number"


@pytest.mark.parametrize(
    ("raw", "options"),
    [
        ({"type": "integer", "min": 5, "max": 1}, ["min"]),
        ({"type": "integer", "min": "a", "max": 5}, ["min"]),
        ({"type": "text", "max": -1, "pattern": "("}, ["max", "pattern"]),
        ({"type": "select"}, ["choices"]),
        ({"type": "select", "choices": ["a"], "default": "b"}, ["default"]),
        ({"type": "file", "max_size": 0, "accept": ["pdf"]}, ["max_size", "accept"]),
        ({"type": "text", "choices": ["a"], "cascade": True}, ["cascade", "choices"]),
        ({"type": "computed", "formula": "1", "required": True, "unique": True}, ["unique", "required"]),
        ({"type": "relation"}, ["collection"]),
        ({"type": "json", "label": 5, "bogus": 1}, [None, "label"]),
    ],
)
def test_a_refused_definition_names_the_option_of_each_problem(raw, options):
    with pytest.raises(FieldError) as caught:
        parse_field({"name": "f", **raw})
    assert [p.option for p in caught.value.problems] == options
    assert str(caught.value) == "; ".join(p.message for p in caught.value.problems)


def test_name_and_type_errors_name_their_option():
    for raw in ({"name": "Bad", "type": "text"}, {"name": "id", "type": "text"}):
        with pytest.raises(FieldError) as caught:
            parse_field(raw)
        assert caught.value.option == "name"
    with pytest.raises(FieldError) as caught:
        parse_field({"name": "f", "type": "colour"})
    assert caught.value.option == "type"


def test_the_field_form_puts_each_problem_beside_the_input_of_its_option():
    with pytest.raises(FieldError) as caught:
        parse_field({"name": "f", "type": "file", "max_size": 0, "bogus": 1})
    assert definition_errors(caught.value) == {
        "_form": "unknown option(s): bogus",
        "max_size": "Enter the largest file size in bytes (1 or more)",
    }


@pytest.mark.parametrize("kind", ["text", "email", "url"])
def test_the_schema_states_the_bounds_and_pattern_every_text_type_checks(kind):
    spec = parse_field({"name": "f", "type": kind, "min": 3, "max": 100, "pattern": ".*x.*", "required": True})
    schema = value_schema(spec, for_input=True)
    assert schema["minLength"] == 3 and schema["pattern"] == "^(?:.*x.*)$"
    assert schema["maxLength"] == min(100, FIELD_TYPES[kind].schema["maxLength"])
    wide = parse_field({"name": "f", "type": kind, "max": 5000})
    assert value_schema(wide, for_input=True)["maxLength"] == min(5000, FIELD_TYPES[kind].schema["maxLength"])
