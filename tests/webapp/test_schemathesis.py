"""Schemathesis over every operation of the OpenAPI document, with every check, against a real server.

``st run --checks all`` (not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance, response_headers_conformance, positive and negative data acceptance,
missing_required_header, unsupported_method, use_after_free, ensure_resource_availability,
ignored_auth ...) through its examples, coverage, fuzzing and stateful phases; deterministic
(``--generation-deterministic``: derandomised, no example database; Schemathesis runs Hypothesis with
no deadline), no shrinking, at most ``MAX_EXAMPLES`` per operation: about 7,000 cases in about a minute.
Any failure fails the test with Schemathesis's report (a curl line to replay each).

The run signs in with an admin's write token. It may call every operation,
user deletion and token revocation included: a hook (tests/webapp/schemathesis_hooks.py)
aims any case that names the run's own admin or token at a second admin and a
spare token instead, so the run cannot lock itself out half-way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config.settings import write_settings
from tests.mailbox import mailbox  # noqa: F401 - fixture
from tests.webapp.data_server import make_data_server
from tests.webapp.test_openapi import RICH

MAX_EXAMPLES = 12  # per operation and phase; about 90 operations: well over 1,000 cases
MIN_CASES = 1000
METHODS = {"get", "put", "post", "patch", "delete"}
# Schema-valid data the server may still refuse with its documented 422: values only the server can
# judge (a wrong two-factor code, a role or collection that does not exist, a taken name, the password
# policy, a webhook URL in a private network). Every other answer to valid data must be a success.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]
"""


@pytest.fixture
def home(home, mailbox):  # noqa: F811 - the shared home, with mail through the test's SMTP server
    write_settings(home / "appliance.toml", mailbox.settings())
    return home


def test_every_operation_conforms_to_the_document_under_all_checks(
    live_server, personas, api_token_for, tmp_path: Path
):
    data = make_data_server(live_server, personas, api_token_for)
    assert data.call("admin", "POST", "/api/collections", json=RICH).status_code == 201
    spare = data.call(
        "admin",
        "POST",
        "/api/users",
        json={"email": "spare@example.com", "name": "Spare", "role": "admin", "password": "spare-admin-pass-9"},
    )
    assert spare.status_code == 201, spare.text
    [keep_token] = [t["id"] for t in data.call("admin", "GET", "/api/tokens").json()["items"]]  # the run's own
    editor_tokens = data.call("admin", "GET", f"/api/tokens?user={personas.editor.id}").json()["items"]
    spare_token = editor_tokens[0]["id"]
    document = data.call("admin", "GET", "/api/openapi.json").json()
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(document))
    report = tmp_path / "report.ndjson"
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.webapp.schemathesis_hooks",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "FUZZ_KEEP_USER": str(personas.admin.id),
        "FUZZ_SPARE_USER": str(spare.json()["id"]),
        "FUZZ_KEEP_TOKEN": str(keep_token),
        "FUZZ_SPARE_TOKEN": str(spare_token),
    }
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(tmp_path / "schemathesis.toml"),
            "run",
            str(schema_file),
            "--url",
            data.server.url.rstrip("/"),
            "-H",
            f"Authorization: Bearer {data.tokens['admin']}",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "1",
            "--generation-deterministic",
            "--no-shrink",
            "--request-timeout",
            "20",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        cwd=tmp_path,  # schemathesis keeps a cache folder where it runs; not in the repository
    )
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-2000:]
    operations = len([m for item in document["paths"].values() for m in item if m in METHODS])
    assert f"Selected: {operations}/{operations}" in result.stdout and f"Tested: {operations}" in result.stdout
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated is not None and int(generated.group(1)) >= MIN_CASES, result.stdout[-3000:]
    assert data.call("admin", "GET", "/api/me").status_code == 200  # the run kept its admin


# --- what the run found, one by one (through the test client: fast, and each failed before its fix) ----


@pytest.fixture
def notes(client, headers):
    body = {"name": "notes", "label": "Notes", "fields": [{"name": "title", "type": "text"}], "permissions": {}}
    assert client.post("/api/collections", json=body, headers=headers["admin"]).status_code == 201
    return headers["admin"]


def test_roles_answer_the_array_the_document_describes(client, headers):
    answer = client.get("/api/roles", headers=headers["viewer"])
    document = client.get("/api/openapi.json", headers=headers["viewer"]).json
    schema = document["paths"]["/api/roles"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert isinstance(answer.json, list) and schema["type"] == "array"


def test_an_id_beyond_64_bits_is_not_found_for_every_method(client, notes):
    big = 2**63
    for method, path in (
        ("patch", f"/api/users/{big}"),
        ("delete", f"/api/collections/notes/records/{big}"),
        ("patch", f"/api/webhooks/{big}"),
    ):
        answer = getattr(client, method)(path, json={}, headers=notes)
        assert answer.status_code == 404, (method, path, answer.status_code)  # was 405, in no document
        assert answer.json["error"]["code"] == "not_found"


def test_the_last_page_is_one_number_whatever_the_page_size(client, headers):
    last = (2**63 - 1) // 500
    assert client.get(f"/api/users?page={last}&page_size=500", headers=headers["admin"]).status_code == 200
    answer = client.get(f"/api/users?page={last + 1}&page_size=20", headers=headers["admin"])
    assert answer.status_code == 400 and answer.json["error"]["parameter"] == "page"  # was 200


def test_a_moment_before_the_first_day_is_a_400_not_a_500(client, headers):
    answer = client.get("/api/audit?since=0001-01-01T00:00%2B13:00", headers=headers["admin"])
    assert answer.status_code == 400 and answer.json["error"]["parameter"] == "since"


def test_a_csv_sent_as_a_plain_field_is_imported(client, notes):
    answer = client.post(
        "/api/collections/notes/import",
        data={"file": "title\nfirst\n"},
        headers=notes,
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201, answer.json
    assert answer.json["created"] == 1
