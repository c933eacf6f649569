"""The records API against a real server: JSON and multipart, errors, schema changes, files, history, audit."""

from __future__ import annotations

import pytest

from tests.webapp.data_server import ITEMS, running_data_server

R = "/api/collections/items/records"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


@pytest.fixture
def data(home, personas, api_token_for):
    with running_data_server(home, personas, api_token_for, env={"APPLIANCE_MAX_UPLOAD_MB": "1"}) as data:
        yield data


def test_create_read_change_and_delete_a_record_as_json(data):
    created = data.call("editor", "POST", R, json={"title": "Desk", "quantity": 2, "price": 150})
    assert created.status_code == 201
    record = created.json()
    assert record["total"] == 300 and record["status"] == "open" and record["created_by"] == data.personas.editor.id
    assert created.headers["Location"] == f"{R}/{record['id']}"
    changed = data.call("editor", "PATCH", f"{R}/{record['id']}", json={"quantity": 3})
    assert changed.status_code == 200 and changed.json()["total"] == 450
    assert data.call("editor", "GET", f"{R}/{record['id']}").json()["quantity"] == 3
    assert data.call("editor", "DELETE", f"{R}/{record['id']}").status_code == 204
    assert data.call("editor", "GET", f"{R}/{record['id']}").status_code == 404


def test_invalid_values_answer_422_naming_each_field_and_a_taken_unique_value_409(data):
    bad = data.call("editor", "POST", R, json={"quantity": -1, "status": "lost", "total": 1, "colour": "red"})
    assert bad.status_code == 422
    assert set(bad.json()["error"]["fields"]) == {"title", "quantity", "status", "total", "colour"}
    assert data.call("editor", "GET", R).json()["total_items"] == 0
    data.call("editor", "POST", R, json={"title": "one"})
    taken = data.call("admin", "POST", R, json={"title": "one"})
    assert taken.status_code == 409
    assert taken.json()["error"]["fields"] == {"title": "Another record already has this value."}
    assert data.call("editor", "POST", R, data="not json", headers={"Content-Type": "text/plain"}).status_code == 400
    assert data.call("editor", "POST", R, data="[1]", headers={"Content-Type": "application/json"}).status_code == 400


def test_listing_over_http_filters_orders_and_refuses_unknown_parameters(data):
    for title, quantity in (("b", 5), ("a", 1), ("c", 9)):
        data.call("admin", "POST", R, json={"title": title, "quantity": quantity})
    page = data.call("viewer", "GET", R, params={"quantity__gte": "5", "ordering": "-title"}).json()
    assert [r["title"] for r in page["items"]] == ["c", "b"]
    assert page["total_items"] == 2
    for params, named in (
        ({"colour": "x"}, "colour"),
        ({"quantity__near": "1"}, "near"),
        ({"page_size": "0"}, "page_size"),
    ):
        answer = data.call("viewer", "GET", R, params=params)
        assert answer.status_code == 400 and named in answer.json()["error"]["message"]


def test_schema_changes_through_the_api_migrate_or_are_refused_with_the_rows_named(data):
    data.call("admin", "POST", R, json={"title": "first", "quantity": 1})
    data.call("admin", "POST", R, json={"title": "second", "quantity": 1})
    fields = [*ITEMS["fields"], {"name": "owner", "type": "text", "required": True}]
    refused = data.call("admin", "PATCH", "/api/collections/items", json={"fields": fields})
    assert refused.status_code == 422 and "records 1, 2" in refused.json()["error"]["fields"]["fields.owner"]
    unique = [dict(f, unique=True) if f["name"] == "quantity" else f for f in ITEMS["fields"]]
    refused = data.call("admin", "PATCH", "/api/collections/items", json={"fields": unique})
    assert refused.status_code == 422 and "records 1, 2" in refused.json()["error"]["fields"]["fields.quantity"]
    assert [f["name"] for f in data.call("admin", "GET", "/api/collections/items").json()["fields"]] == [
        f["name"] for f in ITEMS["fields"]
    ]
    fields = [*ITEMS["fields"], {"name": "owner", "type": "text", "required": True, "default": "nobody"}]
    fields[0] = dict(fields[0], name="name", rename_from="title")
    changed = data.call("admin", "PATCH", "/api/collections/items", json={"fields": fields})
    assert changed.status_code == 200, changed.text
    rows = data.call("admin", "GET", R, params={"search": "second"}).json()["items"]
    assert [(r["name"], r["owner"]) for r in rows] == [("second", "nobody")]
    audit = data.call("admin", "GET", "/api/audit", params={"action": "collection.updated"}).json()
    assert audit["items"][0]["details"]["renamed"] == {"title": "name"}


def test_uploads_are_checked_by_content_stored_by_digest_and_served_with_safe_headers(data):
    answer = data.call(
        "editor",
        "POST",
        R,
        data={"title": "with file", "quantity": "2"},
        files={"contract": ("../../secret.key/../evil.pdf", PDF, "image/png")},
    )
    assert answer.status_code == 201, answer.text
    record = answer.json()
    assert record["quantity"] == 2
    assert record["contract"]["name"] == "evil.pdf" and record["contract"]["type"] == "application/pdf"
    stored = [p for p in (data.server.home / "files").rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].read_bytes() == PDF and stored[0].parent.parent == data.server.home / "files"
    download = data.call("viewer", "GET", record["contract"]["url"])
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Type"] == "application/pdf"
    assert (
        download.headers["Content-Disposition"].startswith("attachment;")
        and "evil.pdf" in download.headers["Content-Disposition"]
    )
    assert data.call("outsider", "GET", record["contract"]["url"]).status_code == 401
    wrong_name = record["contract"]["url"].rsplit("/", 1)[0] + "/..%2F..%2Fsecret.key"
    assert data.call("viewer", "GET", wrong_name).status_code == 404

    replaced = data.call("editor", "PATCH", f"{R}/{record['id']}", files={"contract": ("pic.png", PNG)})
    assert replaced.status_code == 200 and replaced.json()["contract"]["type"] == "image/png"
    # The replaced file stays while the record's history refers to it (restoring version 1 brings it back).
    stored = [p for p in (data.server.home / "files").rglob("*") if p.is_file()]
    assert sorted(p.read_bytes() for p in stored) == sorted([PDF, PNG])
    assert data.call("editor", "DELETE", f"{R}/{record['id']}").status_code == 204
    stored = [p for p in (data.server.home / "files").rglob("*") if p.is_file()]
    assert sorted(p.read_bytes() for p in stored) == sorted([PDF, PNG]), "a deleted record can be restored"


def test_uploads_of_the_wrong_type_or_too_big_are_refused_and_change_nothing(data):
    wrong = data.call(
        "editor", "POST", R, data={"title": "exe"}, files={"contract": ("a.pdf", b"MZ\x90\x00" + b"\x00" * 60)}
    )
    assert wrong.status_code == 422 and "contract" in wrong.json()["error"]["fields"]
    text = data.call("editor", "POST", R, data={"title": "txt"}, files={"contract": ("a.pdf", b"just text")})
    assert text.status_code == 422
    big = data.call("editor", "POST", R, data={"title": "big"}, files={"contract": ("a.pdf", PDF + b"0" * 4096)})
    assert big.status_code == 413 and "contract" in big.json()["error"]["fields"]
    body = b"x" * (1024 * 1024 + 10)
    huge = data.call("editor", "POST", R, data=body, headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert huge.status_code == 413
    assert data.call("editor", "GET", R).json()["total_items"] == 0
    assert [p for p in (data.server.home / "files").rglob("*") if p.is_file()] == []


def test_history_lists_versions_and_restores_one_as_a_new_version(data):
    record = data.call("editor", "POST", R, json={"title": "v1", "quantity": 1}).json()
    url = f"{R}/{record['id']}"
    data.call("editor", "PATCH", url, json={"title": "v2"})
    history = data.call("viewer", "GET", url + "/history").json()
    assert history["total_items"] == 2 and history["page"] == 1
    item = history["items"][0]
    assert set(item) == {"version", "actor", "at", "action", "changes"}
    assert item["changes"] == {"title": ["v1", "v2"]} and item["actor"] == data.personas.editor.email
    restored = data.call("editor", "POST", url + "/history/1/restore")
    assert restored.status_code == 200 and restored.json()["title"] == "v1"
    assert data.call("editor", "POST", url + "/history/99/restore").status_code == 404
    data.call("editor", "DELETE", url)
    deleted = data.call("admin", "GET", "/api/collections/items/deleted").json()["items"]
    assert [d["id"] for d in deleted] == [record["id"]]
    back = data.call("admin", "POST", url + f"/history/{deleted[0]['version']}/restore")
    assert back.status_code == 200 and back.json()["id"] == record["id"]


def test_the_audit_log_filters_by_actor_action_target_and_time(data):
    record = data.call("editor", "POST", R, json={"title": "audited"}).json()
    data.call("editor", "PATCH", f"{R}/{record['id']}", json={"quantity": 4})
    events = data.call("admin", "GET", "/api/audit", params={"target": f"items/{record['id']}"}).json()
    assert [e["action"] for e in events["items"]] == ["record.updated", "record.created"]
    assert events["items"][0]["details"]["changes"]["quantity"] == [None, 4]
    assert events["items"][0]["actor"] == data.personas.editor.email
    by_actor = data.call(
        "admin", "GET", "/api/audit", params={"actor": data.personas.editor.email, "action": "record."}
    )
    assert by_actor.json()["total_items"] == 2
    future = data.call("admin", "GET", "/api/audit", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert future["total_items"] == 0
    assert data.call("admin", "GET", "/api/audit", params={"since": "soon"}).status_code == 400


def test_a_deeply_nested_json_body_is_a_bad_request_not_a_server_error(data):
    deep = "[" * 100_000 + "]" * 100_000
    headers = {"Content-Type": "application/json"}
    for method, path in (
        ("POST", R),
        ("PATCH", f"{R}/1"),
        ("POST", "/api/collections"),
        ("PATCH", "/api/collections/items"),
    ):
        answer = data.call("admin", method, path, data=deep, headers=headers)
        assert answer.status_code in (400, 404), (method, path, answer.status_code)
        assert answer.json()["error"]["code"] in ("bad_request", "not_found")
    assert data.call("admin", "POST", R, data=deep, headers=headers).json()["error"]["code"] == "bad_request"
    assert (
        data.call("admin", "GET", "/api/collections/items/records/99999999999999999999999/history").status_code == 404
    )


def test_a_filter_given_twice_is_a_400_naming_it(data):
    answer = data.call("viewer", "GET", f"{R}?title=Acme&title=Bob")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["parameter"] == "title" and "title__in" in error["message"]
    assert data.call("viewer", "GET", f"{R}?quantity__in=").json()["error"]["parameter"] == "quantity__in"
    assert data.call("viewer", "GET", R, params={"search": "☃"}).json()["total_items"] == 0


def test_record_audit_events_carry_the_client_address(data):
    record = data.call("editor", "POST", R, json={"title": "addressed"}).json()
    data.call("editor", "PATCH", f"{R}/{record['id']}", json={"quantity": 2})
    data.call("editor", "DELETE", f"{R}/{record['id']}")
    events = data.call("admin", "GET", "/api/audit", params={"target": f"items/{record['id']}"}).json()["items"]
    assert {e["action"] for e in events} == {"record.created", "record.updated", "record.deleted"}
    assert {e["address"] for e in events} == {"127.0.0.1"}


@pytest.fixture
def impatient(home, personas, api_token_for):
    with running_data_server(home, personas, api_token_for, env={"APPLIANCE_SQLITE_BUSY_TIMEOUT_MS": "100"}) as data:
        yield data


def test_a_database_locked_by_another_writer_answers_503_busy_with_retry_after(impatient, home):
    import sqlite3

    from appliance.config.home import open_instance

    holder = sqlite3.connect(open_instance(home).paths.database_file, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        answer = impatient.call("editor", "POST", R, json={"title": "waits"})
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "busy"
        assert answer.headers["Retry-After"] == "1"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert impatient.call("editor", "POST", R, json={"title": "waits"}).status_code == 201
