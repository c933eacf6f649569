"""Uploaded files: names made harmless, types judged by content, storage by digest and reference counting."""

from __future__ import annotations

import hashlib
import io

import pytest

from appliance.errors import TooLarge, ValidationFailed
from appliance.records.delete import delete_record
from appliance.records.files import Upload, safe_filename, sniff_type, type_accepted
from appliance.records.write import create_record, update_record
from appliance.storage.blobs import remove_unreferenced
from appliance.storage.db import database
from tests.appliance.data_helpers import make_users

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("..", "file"),
        ("", "file"),
        ("a\x00b\nc.pdf", "abc.pdf"),
        ('we"ird<>.pdf', "weird.pdf"),
    ],
)
def test_a_client_file_name_is_reduced_to_a_harmless_base_name(given, safe):
    assert safe_filename(given) == safe


def test_types_are_judged_by_content_not_by_name():
    assert sniff_type(PDF) == "application/pdf"
    assert sniff_type(b"plain words") == "text/plain"
    assert sniff_type(b"\x00\x01\x02binary") == "application/octet-stream"
    assert type_accepted("image/png", ["image/*"]) and not type_accepted("application/pdf", ["image/*"])
    assert type_accepted("text/plain", ["text/csv"])


@pytest.fixture
def admin(instance):
    from appliance.collections.definitions import create_collection

    people = make_users()
    create_collection(
        {
            "name": "docs",
            "label": "Docs",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "scan", "type": "file", "max_size": 100, "accept": ["application/pdf"]},
            ],
        },
        people["admin"],
    )
    return people["admin"]


def stored(instance) -> list[bytes]:
    return sorted(p.read_bytes() for p in instance.paths.files_dir.rglob("*") if p.is_file())


def test_identical_content_is_stored_once_and_removed_when_the_last_reference_goes(instance, admin):
    files = instance.paths.files_dir
    one = create_record("docs", {}, admin, uploads={"scan": Upload("a.pdf", io.BytesIO(PDF))}, files_dir=files)
    two = create_record("docs", {}, admin, uploads={"scan": Upload("b.pdf", io.BytesIO(PDF))}, files_dir=files)
    assert stored(instance) == [PDF]
    delete_record("docs", one["id"], admin, files_dir=files)
    assert stored(instance) == [PDF]
    update_record("docs", two["id"], {"scan": None}, admin, files_dir=files)
    assert stored(instance) == [PDF], "the records' history still refers to it"
    database.execute_sql("DELETE FROM record_version")  # what deleting the collection does to its history
    assert remove_unreferenced(files, [hashlib.sha256(PDF).hexdigest()]) == 1
    assert stored(instance) == []


def test_a_refused_upload_leaves_nothing_stored(instance, admin):
    files = instance.paths.files_dir
    with pytest.raises(TooLarge):
        create_record("docs", {}, admin, uploads={"scan": Upload("a.pdf", io.BytesIO(PDF * 10))}, files_dir=files)
    with pytest.raises(ValidationFailed):
        create_record(
            "docs", {}, admin, uploads={"scan": Upload("a.pdf", io.BytesIO(b"GIF89a" + b"\0" * 20))}, files_dir=files
        )
    with pytest.raises(ValidationFailed):
        create_record("docs", {"title": 5}, admin, uploads={"scan": Upload("a.pdf", io.BytesIO(PDF))}, files_dir=files)
    assert stored(instance) == []


def _refs() -> list[tuple]:
    from appliance.storage.db import database

    return database.execute_sql("SELECT collection, record_id, field FROM file_ref ORDER BY record_id").fetchall()


def test_renaming_a_file_field_keeps_its_files_and_removing_it_removes_them(instance, admin):
    from appliance.collections.definitions import update_collection
    from appliance.records.read import get_record_file

    files = instance.paths.files_dir
    record = create_record("docs", {}, admin, uploads={"scan": Upload("a.pdf", io.BytesIO(PDF))}, files_dir=files)
    renamed = [{"name": "title", "type": "text"}, {"name": "contract", "type": "file", "rename_from": "scan"}]
    update_collection("docs", {"fields": renamed}, admin, files_dir=files)
    assert _refs() == [("docs", record["id"], "contract")]
    assert get_record_file("docs", record["id"], "contract", "a.pdf", admin)["size"] == len(PDF)
    # The content is still referenced: deleting the record now removes it.
    other = create_record("docs", {}, admin, uploads={"contract": Upload("b.pdf", io.BytesIO(PDF))}, files_dir=files)
    delete_record("docs", other["id"], admin, files_dir=files)
    assert stored(instance) == [PDF]
    update_collection("docs", {"fields": [{"name": "title", "type": "text"}]}, admin, files_dir=files)
    assert _refs() == []
    assert stored(instance) == [PDF], "the versions of the records still hold it"


def test_swapping_two_file_fields_names_swaps_their_references(instance, admin):
    from appliance.collections.definitions import update_collection

    files = instance.paths.files_dir
    two = [{"name": "scan", "type": "file"}, {"name": "photo", "type": "file"}]
    update_collection("docs", {"fields": two}, admin, files_dir=files)
    record = create_record("docs", {}, admin, uploads={"scan": Upload("a.pdf", io.BytesIO(PDF))}, files_dir=files)
    swapped = [
        {"name": "photo", "type": "file", "rename_from": "scan"},
        {"name": "scan", "type": "file", "rename_from": "photo"},
    ]
    update_collection("docs", {"fields": swapped}, admin, files_dir=files)
    assert _refs() == [("docs", record["id"], "photo")]
    assert stored(instance) == [PDF]


def test_a_file_over_its_limit_is_refused_with_the_limit_as_the_pages_state_it(instance, admin):
    """A field's ``max_size`` in the one byte format (powers of 1024, as beside the file input); the
    ``max_upload_mb`` setting in whole MB, as the setting is given."""
    files = instance.paths.files_dir
    with pytest.raises(TooLarge) as field_limit:
        create_record("docs", {}, admin, uploads={"scan": Upload("a.pdf", io.BytesIO(PDF * 10))}, files_dir=files)
    assert field_limit.value.fields["scan"] == "The file is larger than 100 bytes."
    from appliance.collections.definitions import update_collection

    fields = [{"name": "title", "type": "text"}, {"name": "scan", "type": "file", "max_size": 2048}]
    update_collection("docs", {"fields": fields}, admin)
    with pytest.raises(TooLarge) as field_limit:
        create_record("docs", {}, admin, uploads={"scan": Upload("a.pdf", io.BytesIO(b"x" * 3000))}, files_dir=files)
    assert field_limit.value.fields["scan"] == "The file is larger than 2 KB."
    mb = 1024 * 1024
    fields[1].pop("max_size")
    update_collection("docs", {"fields": fields}, admin)
    with pytest.raises(TooLarge) as setting_limit:
        create_record(
            "docs",
            {},
            admin,
            uploads={"scan": Upload("b.pdf", io.BytesIO(b"y" * (mb + 1)))},
            files_dir=files,
            upload_limit=mb,
        )
    assert setting_limit.value.fields["scan"] == "The file is larger than 1 MB."
    assert stored(instance) == []
