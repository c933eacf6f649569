"""Field rules on the records services: files of hidden fields, uploads to read-only ones, and the full
record internal callers (events, webhooks' payloads) still get."""

from __future__ import annotations

import io

import pytest

from appliance.collections.definitions import create_collection, get_collection
from appliance.errors import NotFound, PermissionDenied
from appliance.records.files import Upload
from appliance.records.query import list_records
from appliance.records.read import fetch_values, get_record_file, serialize_record
from appliance.records.write import create_record
from tests.appliance.data_helpers import make_users

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


@pytest.fixture
def staff(instance):
    users = make_users()
    create_collection(
        {
            "name": "staff",
            "fields": [
                {"name": "name", "type": "text"},
                {"name": "contract", "type": "file"},
                {"name": "scan", "type": "file"},
                {"name": "memo", "type": "long_text"},
            ],
            "permissions": {
                "editor": ["view", "create", "update"],
                "viewer": ["view"],
                "fields": {"viewer": {"hidden": ["contract", "memo"]}, "editor": {"read_only": ["scan"]}},
            },
        },
        users["admin"],
    )
    record = create_record(
        "staff",
        {"name": "Ann", "memo": "walrus"},
        users["admin"],
        uploads={"contract": Upload("c.pdf", io.BytesIO(PDF))},
        files_dir=instance.paths.files_dir,
    )
    return users, record, instance.paths.files_dir


def test_a_hidden_file_cannot_be_downloaded(staff):
    users, record, _files = staff
    assert get_record_file("staff", record["id"], "contract", "c.pdf", users["editor"])["name"] == "c.pdf"
    with pytest.raises(NotFound):
        get_record_file("staff", record["id"], "contract", "c.pdf", users["viewer"])


def test_an_upload_to_a_read_only_file_field_is_refused_naming_it(staff):
    users, _record, files = staff
    with pytest.raises(PermissionDenied) as caught:
        create_record(
            "staff",
            {"name": "Bo"},
            users["editor"],
            uploads={"scan": Upload("s.pdf", io.BytesIO(PDF))},
            files_dir=files,
        )
    assert caught.value.fields == {"scan": "This field is read-only for you."}


def test_internal_callers_get_the_whole_record_and_a_caller_its_own_view(staff):
    users, record, _files = staff
    collection = get_collection("staff")
    values = fetch_values(collection, record["id"])
    assert {"contract", "memo"} <= set(serialize_record(collection, values))
    assert not {"contract", "memo"} & set(serialize_record(collection, values, users["viewer"]))
    assert list_records("staff", users["viewer"], {"search": "walrus"})["total_items"] == 0
    assert list_records("staff", users["editor"], {"search": "walrus"})["total_items"] == 1
