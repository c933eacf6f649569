"""Files and history: a version keeps its file; removing a file field removes its files, old versions'
included, and never one that another field's history still holds."""

from __future__ import annotations

import io
import json

import pytest

from appliance.collections.definitions import create_collection, get_collection, update_collection
from appliance.records.files import Upload
from appliance.records.write import create_record, update_record
from appliance.storage.blobs import blob_path, is_referenced
from appliance.storage.db import database
from tests.appliance.data_helpers import make_users


def _pdf(n: int) -> bytes:
    return b"%PDF-1.4\n" + f"% copy {n}\n".encode() + b"1 0 obj\n<<>>\nendobj\n%%EOF\n"


@pytest.fixture
def admin(instance):
    people = make_users()
    create_collection(
        {
            "name": "docs",
            "label": "Docs",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "scan", "type": "file", "accept": ["application/pdf"]},
                {"name": "copy", "type": "file", "accept": ["application/pdf"]},
            ],
        },
        people["admin"],
    )
    return people["admin"]


def _upload(field: str, n: int) -> dict[str, Upload]:
    return {field: Upload(f"{field}{n}.pdf", io.BytesIO(_pdf(n)))}


def test_removing_a_file_field_removes_its_files_and_keeps_the_other_fields_old_files(instance, admin):
    files = instance.paths.files_dir
    made = create_record(
        "docs", {"title": "A"}, admin, uploads={**_upload("scan", 1), **_upload("copy", 2)}, files_dir=files
    )
    update_record("docs", made["id"], {}, admin, uploads=_upload("scan", 3), files_dir=files)  # scan 1: history only
    update_record("docs", made["id"], {}, admin, uploads=_upload("copy", 4), files_dir=files)  # copy 2: history only
    digests = {
        n: database.execute_sql(
            "SELECT sha256 FROM file_ref WHERE collection = 'docs' AND field = ?", (field,)
        ).fetchone()[0]
        for n, field in ((3, "scan"), (4, "copy"))
    }
    first = json.loads(
        database.execute_sql("SELECT data FROM record_version WHERE collection = 'docs' AND version = 1").fetchone()[0]
    )
    scan_1, copy_2 = first["scan"]["sha256"], first["copy"]["sha256"]
    assert all(blob_path(files, d).exists() for d in (scan_1, copy_2, *digests.values()))

    fields = [f.to_dict() for f in get_collection("docs").fields if f.name != "scan"]
    update_collection("docs", {"fields": fields}, admin, files_dir=files)

    assert not blob_path(files, scan_1).exists() and not blob_path(files, digests[3]).exists()
    assert blob_path(files, copy_2).exists() and is_referenced(copy_2)  # held by the copy field's history
    assert blob_path(files, digests[4]).exists()
    assert all("scan" not in json.loads(r[0]) for r in database.execute_sql("SELECT data FROM record_version"))
