"""The OpenAPI document: valid OpenAPI 3.1, generated from the collections, then fuzzed by schemathesis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from tests.webapp.data_server import make_data_server

RICH = {
    "name": "orders",
    "label": "Orders",
    "fields": [
        {"name": "title", "type": "text", "required": True, "unique": True, "max": 40},
        {"name": "notes", "type": "long_text"},
        {"name": "quantity", "type": "integer", "min": 0, "max": 1000, "filterable": True},
        {"name": "unit_price", "type": "number", "min": 0},
        {"name": "total", "type": "computed", "formula": "quantity * unit_price"},
        {"name": "paid", "type": "boolean"},
        {"name": "due", "type": "date"},
        {"name": "sent_at", "type": "datetime"},
        {"name": "contact", "type": "email"},
        {"name": "site", "type": "url"},
        {"name": "status", "type": "select", "choices": ["open", "paid"], "default": "open"},
        {"name": "item", "type": "relation", "collection": "items"},
        {"name": "scan", "type": "file", "accept": ["application/pdf"]},
        {"name": "extra", "type": "json"},
    ],
    "permissions": {"editor": ["view", "create", "update", "delete"]},
}


@pytest.fixture
def data(live_server, personas, api_token_for):
    server = make_data_server(live_server, personas, api_token_for)
    assert server.call("admin", "POST", "/api/collections", json=RICH).status_code == 201
    return server


def test_the_document_is_valid_openapi_31_and_describes_every_viewable_collection(data):
    document = data.call("editor", "GET", "/api/openapi.json").json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert "/api/collections/orders/records" in document["paths"]
    assert "/api/collections/hidden/records" not in document["paths"]
    schema = document["components"]["schemas"]["orders.Record"]["properties"]
    assert schema["status"]["enum"] == ["open", "paid", None]
    assert schema["quantity"]["maximum"] == 1000
    assert schema["total"]["readOnly"] is True
    params = {p["name"] for p in document["paths"]["/api/collections/orders/records"]["get"]["parameters"]}
    assert {"page", "ordering", "search", "quantity__gte", "title__icontains", "extra__isnull"} <= params
    assert {"id__gt", "id__in", "created_at__gte", "updated_at__lt", "created_by", "updated_by__isnull"} <= params


def test_the_document_describes_the_whole_api_not_only_the_collections(data):
    document = data.call("viewer", "GET", "/api/openapi.json").json()
    validate(document)
    paths = document["paths"]
    expected = {
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/api/auth/token": {"post"},
        "/api/me": {"get"},
        "/api/users": {"get", "post"},
        "/api/users/{id}": {"patch", "delete"},
        "/api/audit": {"get"},
        "/api/files/{collection}/{id}/{field}/{filename}": {"get"},
        "/api/backups": {"get", "post"},
        "/api/backups/{name}/download": {"get"},
        "/api/jobs": {"get"},
        "/api/jobs/{name}": {"patch"},
        "/api/jobs/{name}/run": {"post"},
        "/api/jobs/{name}/runs": {"get"},
        "/api/system/status": {"get"},
        "/api/collections": {"get", "post"},
        "/api/collections/items": {"get", "patch", "delete"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert paths["/healthz"]["get"]["security"] == [] and paths["/api/auth/token"]["post"]["security"] == []
    audit = {p["name"] for p in paths["/api/audit"]["get"]["parameters"]}
    assert {"actor", "action", "target", "since", "until", "page"} <= audit


def test_schemathesis_finds_no_server_error(data, tmp_path: Path):
    document = data.call("admin", "GET", "/api/openapi.json").json()
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(document))
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            str(schema_file),
            "--url",
            data.server.url.rstrip("/"),
            "-H",
            f"Authorization: Bearer {data.tokens['admin']}",
            "--checks",
            "not_a_server_error",
            # The records endpoints of every collection (fuzzing backups, jobs or user deletion
            # would only make backups and lock the admin out).
            "--include-path-regex",
            "^/api/collections/[a-z_]+/records",
            "--max-examples",
            "15",
            "--seed",
            "1",
            "--generation-database",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,  # schemathesis keeps a cache folder where it runs; not in the repository
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
