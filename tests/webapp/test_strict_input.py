"""Input no endpoint may take is refused at the edge, once, for every endpoint: a 400 (or 404) in the
error shape, never a 500, and nothing changes (issue 16, item 12)."""

from __future__ import annotations

import json

import pytest

from appliance.collections.definitions import create_collection
from appliance.storage.models import Role, User
from tests.conftest import ADMIN

DEEP = "[" * 100_000 + "]" * 100_000
JSON_ENDPOINTS = [
    ("post", "/api/users"),
    ("post", "/api/roles"),
    ("post", "/api/auth/token"),
    ("patch", "/api/jobs/backup"),
    ("post", "/api/collections"),
    ("post", "/api/collections/notes/records"),
]


@pytest.fixture
def api(app, personas, headers):
    create_collection(
        {"name": "notes", "label": "Notes", "fields": [{"name": "text", "type": "text"}], "permissions": {}},
        personas.admin,
    )
    client = app.test_client()
    as_json = {**headers[ADMIN], "Content-Type": "application/json"}

    def call(method, path, body=None, content_type=None):
        sent = dict(as_json)
        if content_type:
            sent["Content-Type"] = content_type
        return getattr(client, method)(path, data=body, headers=sent)

    return call


def _refused(response, status=400):
    assert response.status_code == status, response.get_data(as_text=True)[:200]
    assert set(response.get_json()["error"]) >= {"code", "message"}
    return response.get_json()["error"]["message"]


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_deeply_nested_json_is_a_400_on_every_endpoint(api, method, path):
    assert "nested too deeply" in _refused(api(method, path, DEEP))


@pytest.mark.parametrize(
    "body",
    [
        '{"text": "a\\ud800b"}',  # a lone high surrogate
        '{"text\\udc00": "x"}',  # in a key
        '{"text": ["fine", {"deeper": "\\udfff"}]}',
    ],
)
def test_a_lone_surrogate_anywhere_in_a_json_body_is_a_400_and_stores_nothing(api, body):
    assert "lone surrogate" in _refused(api("post", "/api/collections/notes/records", body))
    listing = api("get", "/api/collections/notes/records").get_json()
    assert listing["total_items"] == 0


def test_a_user_with_a_lone_surrogate_is_not_created(api):
    users_before = User.select().count()
    body = '{"email": "x@example.com", "name": "a\\ud800", "role": "viewer", "password": "correct horse battery 9"}'
    _refused(api("post", "/api/users", body))
    assert User.select().count() == users_before


@pytest.mark.parametrize("number", [str(2**63), str(-(2**63) - 1), "1" + "0" * 400])
def test_whole_numbers_past_64_bits_in_a_body_are_a_400(api, number):
    assert "too large" in _refused(api("post", "/api/collections/notes/records", f'{{"text": {number}}}'))


def test_nan_and_infinity_are_not_json(api):
    for constant in ("NaN", "Infinity", "-Infinity"):
        assert "not a JSON number" in _refused(api("post", "/api/collections/notes/records", f'{{"text": {constant}}}'))


def test_page_numbers_and_ids_past_64_bits_never_reach_the_database(api):
    big = 2**63
    _refused(api("get", f"/api/users?page={big}"))
    _refused(api("get", f"/api/collections/notes/records?page={big}"))
    assert api("get", f"/api/collections/notes/records/{big}").status_code == 404
    assert api("patch", f"/api/users/{big}", "{}").status_code in (404, 405)
    assert api("delete", f"/api/collections/notes/records/{big}").status_code in (404, 405)


def test_a_role_name_or_label_that_is_not_text_is_a_field_error(api):
    response = api("post", "/api/roles", json.dumps({"name": 5, "label": ["x"]}))
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"name", "label"}
    assert Role.select().where(Role.builtin == False).count() == 0  # noqa: E712


def test_a_collection_with_a_null_label_is_a_field_error(api):
    response = api("post", "/api/collections", json.dumps({"name": "things", "label": None, "fields": []}))
    assert response.status_code == 422
    assert "label" in response.get_json()["error"]["fields"]
    assert api("get", "/api/collections/things").status_code == 404


def test_a_multipart_body_with_a_broken_boundary_creates_nothing(api):
    body = b'--xyz\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello\r\n--xyz--\r\n'
    message = _refused(api("post", "/api/collections/notes/records", body, "multipart/form-data; boundary=abc"))
    assert "boundary" in message
    assert api("get", "/api/collections/notes/records").get_json()["total_items"] == 0


def test_a_well_formed_multipart_body_still_creates_the_record(api):
    body = b'--abc\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello\r\n--abc--\r\n'
    response = api("post", "/api/collections/notes/records", body, "multipart/form-data; boundary=abc")
    assert response.status_code == 201 and response.get_json()["text"] == "hello"
