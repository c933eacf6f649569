"""Restoring an old version of a record brings its file back: stored files stay while any version refers to them."""

from __future__ import annotations

import pytest

from tests.webapp.data_server import running_data_server

R = "/api/collections/items/records"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


@pytest.fixture
def data(home, personas, api_token_for):
    with running_data_server(home, personas, api_token_for, env={}) as data:
        yield data


def test_restoring_version_1_brings_back_the_file_that_a_later_version_replaced(data):
    created = data.call("editor", "POST", R, data={"title": "lease"}, files={"contract": ("lease.pdf", PDF)})
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]
    replaced = data.call("editor", "PATCH", f"{R}/{record_id}", files={"contract": ("photo.png", PNG)})
    assert replaced.status_code == 200 and replaced.json()["contract"]["type"] == "image/png"

    restored = data.call("editor", "POST", f"{R}/{record_id}/history/1/restore")
    assert restored.status_code == 200, restored.text
    contract = restored.json()["contract"]
    assert contract is not None and contract["name"] == "lease.pdf"
    download = data.call("viewer", "GET", contract["url"])
    assert download.status_code == 200 and download.content == PDF

    # The file of version 2 was not lost either: restoring it brings the photo back.
    again = data.call("editor", "POST", f"{R}/{record_id}/history/2/restore")
    assert again.status_code == 200 and again.json()["contract"]["name"] == "photo.png"
    assert data.call("viewer", "GET", again.json()["contract"]["url"]).content == PNG
