"""The starter collections and demo data of data/: they load into working tables, once, by the services."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import tomllib
from pathlib import Path

import pytest

from appliance.collections.definitions import create_collection, get_collection
from appliance.errors import PermissionDenied, ValidationFailed
from appliance.records.demo import STARTER_COLLECTIONS, data_dir, load_demo, load_starter_collections, read_template
from appliance.records.files import Upload
from appliance.records.query import list_records
from appliance.records.write import create_record
from appliance.storage.db import database
from appliance.storage.models import AuditEvent
from tests.appliance.data_helpers import make_users
from tests.conftest import REPO, run_cli

# The wizard test needs a QApplication; never a window on a real display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def users(instance):
    return make_users()


def _demo_rows(name: str) -> list[dict[str, str]]:
    with (REPO / "data" / "demo" / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _count(table: str) -> int:
    return database.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]


def test_data_is_found_in_the_checkout_and_every_file_of_it_ships_with_an_install():
    assert data_dir() == REPO / "data"
    shipped = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    covered = {p for patterns in shipped.values() for pattern in patterns for p in REPO.glob(pattern)}
    on_disk = {p for p in (REPO / "data").rglob("*") if p.is_file()}
    assert on_disk and on_disk == covered
    for name in STARTER_COLLECTIONS:
        assert read_template(name)["name"] == name


def test_the_starter_templates_become_working_tables_with_totals_relations_and_permissions(instance, users, tmp_path):
    admin, editor, viewer = users["admin"], users["editor"], users["viewer"]
    result = load_starter_collections(instance, actor=admin)
    assert (result.created, result.existing) == (list(STARTER_COLLECTIONS), [])

    customer = create_record("customers", {"name": "Acme Ltd", "email": "Buyer@Acme.example"}, editor)
    assert (customer["status"], customer["email"]) == ("active", "Buyer@acme.example")
    item = create_record("inventory", {"sku": "CHR-1", "name": "Chair", "quantity": 5, "unit_price": 40}, editor)
    order = create_record(
        "orders",
        {
            "customer": customer["id"],
            "item": item["id"],
            "quantity": 3,
            "unit_price": 40,
            "discount": 0.25,
            "ordered_on": "2026-01-05",
        },
        editor,
        uploads={"contract": Upload("contract.pdf", io.BytesIO(PDF))},
        files_dir=tmp_path / "files",
    )
    assert order["total"] == 90
    assert (order["status"], order["contract"]["name"]) == ("open", "contract.pdf")

    with pytest.raises(ValidationFailed) as caught:
        create_record(
            "orders", {"customer": 999, "item": item["id"], "unit_price": 1, "ordered_on": "2026-01-05"}, editor
        )
    assert set(caught.value.fields) == {"customer"}
    with pytest.raises(ValidationFailed) as caught:
        create_record(
            "orders",
            {
                "customer": customer["id"],
                "item": item["id"],
                "unit_price": 1,
                "discount": 1.5,
                "ordered_on": "2026-01-05",
            },
            editor,
        )
    assert set(caught.value.fields) == {"discount"}
    with pytest.raises(ValidationFailed) as caught:
        create_record("inventory", {"sku": "CHR-2", "name": "Chair", "quantity": -1, "unit_price": 1}, editor)
    assert set(caught.value.fields) == {"quantity"}
    with pytest.raises(ValidationFailed) as caught:
        create_record(
            "orders",
            {"customer": customer["id"], "item": item["id"], "unit_price": 1, "ordered_on": "2026-01-05"},
            editor,
            uploads={"contract": Upload("contract.pdf", io.BytesIO(PNG))},
            files_dir=tmp_path / "files",
        )
    assert set(caught.value.fields) == {"contract"}

    assert [r["name"] for r in list_records("customers", viewer, {})["items"]] == ["Acme Ltd"]
    with pytest.raises(PermissionDenied):
        create_record("customers", {"name": "Viewer Co"}, viewer)
    assert _count("c_orders") == 1


def test_loading_the_starter_collections_again_keeps_what_exists_and_creates_the_rest(instance, users):
    admin = users["admin"]
    create_collection({"name": "customers", "fields": [{"name": "name", "type": "text"}]}, admin)
    result = load_starter_collections(instance, actor=admin)
    assert (result.created, result.existing) == (["inventory", "orders"], ["customers"])
    assert [f.name for f in get_collection("customers").fields] == ["name"]
    again = load_starter_collections(instance, actor=admin)
    assert (again.created, again.existing) == ([], list(STARTER_COLLECTIONS))
    assert AuditEvent.select().where(AuditEvent.action == "collection.created").count() == 3


def test_demo_records_that_do_not_fit_an_existing_collection_are_refused_and_none_stay(instance, users):
    admin = users["admin"]
    create_collection({"name": "customers", "fields": [{"name": "name", "type": "text"}]}, admin)
    with pytest.raises(ValidationFailed) as caught:
        load_demo(instance, actor=admin)
    assert "line 2 of customers.csv" in caught.value.message
    assert {"email", "status"} <= set(caught.value.fields)
    assert [_count(f"c_{name}") for name in STARTER_COLLECTIONS] == [0, 0, 0]
    assert AuditEvent.select().where(AuditEvent.action == "record.created").count() == 0


def test_the_demo_records_go_in_through_the_record_services_with_their_relations(instance, users):
    admin = users["admin"]
    result = load_demo(instance, actor=admin)
    expected = {name: len(_demo_rows(name)) for name in STARTER_COLLECTIONS}
    assert result.records == expected and expected == {"customers": 25, "inventory": 40, "orders": 60}
    assert {name: _count(f"c_{name}") for name in STARTER_COLLECTIONS} == expected
    assert {name: get_collection(name).row_count for name in STARTER_COLLECTIONS} == expected
    events = AuditEvent.select().where(AuditEvent.action == "record.created")
    assert events.count() == 125 and {e.actor for e in events} == {admin.email}

    first = _demo_rows("orders")[0]
    order = database.execute_sql(
        "SELECT c.name, i.sku, o.total, o.quantity * o.unit_price * (1 - o.discount) FROM c_orders o "
        "JOIN c_customers c ON c.id = o.customer JOIN c_inventory i ON i.id = o.item WHERE o.reference = ?",
        (first["reference"],),
    ).fetchone()
    assert order[:2] == (first["customer"], first["item"])
    assert order[2] == pytest.approx(order[3])
    assert (
        _count("c_orders")
        == database.execute_sql(
            "SELECT COUNT(*) FROM c_orders WHERE abs(total - quantity * unit_price * (1 - discount)) < 1e-9"
        ).fetchone()[0]
    )

    again = load_demo(instance, actor=admin)
    assert again.records == {} and "customers already has 25 records" in again.skipped_records
    assert {name: _count(f"c_{name}") for name in STARTER_COLLECTIONS} == expected


def test_appliance_demo_fills_a_new_home_and_a_second_run_adds_nothing(home: Path):
    first = run_cli("demo", "--json", home=home)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "collections": {"created": list(STARTER_COLLECTIONS), "existing": []},
        "records": {"customers": 25, "inventory": 40, "orders": 60},
        "skipped_records": None,
    }
    second = run_cli("demo", home=home)
    assert second.returncode == 0, second.stderr
    assert "kept existing collections customers, inventory, orders" in second.stdout
    assert "demo records not added" in second.stdout
    with sqlite3.connect(home / "db" / "appliance.sqlite3") as db:
        counts = [db.execute(f"SELECT COUNT(*) FROM c_{name}").fetchone()[0] for name in STARTER_COLLECTIONS]
        actors = db.execute(
            "SELECT DISTINCT actor, actor_id FROM audit_event WHERE action = 'record.created'"
        ).fetchall()
    assert counts == [25, 40, 60]
    assert actors == [("cli", None)]


def test_appliance_demo_no_records_adds_only_the_collections(home: Path):
    result = run_cli("demo", "--no-records", home=home)
    assert result.returncode == 0, result.stderr
    first, then = result.stdout.strip().splitlines()
    assert first == "created collections customers, inventory, orders"
    # No account yet: it says how to make the first admin, with this home.
    assert then.startswith("no users yet; to sign in, create the first admin with: appliance users create ")
    assert then.endswith(f"--role admin --home {home}")
    with sqlite3.connect(home / "db" / "appliance.sqlite3") as db:
        assert [db.execute(f"SELECT COUNT(*) FROM c_{n}").fetchone()[0] for n in STARTER_COLLECTIONS] == [0, 0, 0]


def test_appliance_demo_on_a_folder_that_is_no_home_says_so_and_changes_nothing(tmp_path: Path):
    result = run_cli("demo", home=tmp_path / "nothing")
    assert result.returncode == 1
    assert "is not an appliance home yet" in result.stderr
    assert f"run `appliance init --home {tmp_path / 'nothing'}` first" in result.stderr
    assert not (tmp_path / "nothing").exists()
