"""``/admin/collections``: the collection editor for admins, with plain forms, through the Flask test client."""

from __future__ import annotations

import re

import pytest

from appliance.accounts.users import get_user
from appliance.collections.definitions import get_collection
from appliance.records.write import create_record
from tests.conftest import post_form


def post(client, path: str, data: dict, status: int = 302):
    answer = post_form(client, path, data, token_from="/admin/collections")
    assert answer.status_code == status, answer.get_data(as_text=True)[:2000]
    return answer


def text(answer) -> str:
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))


@pytest.fixture
def admin(signed_in):
    client = signed_in("admin")
    post(client, "/admin/collections", {"name": "orders", "label": "Orders"})
    post(client, "/admin/collections/orders/fields", {"name": "title", "type": "text", "required": "yes"})
    post(client, "/admin/collections/orders/fields", {"name": "qty", "type": "integer", "min": "0"})
    post(client, "/admin/collections/orders/fields", {"name": "status", "type": "select", "choices": "open\npaid"})
    return client


def names() -> list[str]:
    return [f.name for f in get_collection("orders").fields]


@pytest.mark.parametrize(("who", "status"), [("editor", 403), ("viewer", 403)])
def test_only_admins_may_open_the_collection_editor(signed_in, who, status):
    client = signed_in(who)
    for path in ("/admin/collections", "/admin/collections/x"):
        assert client.get(path).status_code == status


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(client):
    answer = client.get("/admin/collections")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_an_admin_creates_a_collection_and_adds_fields_with_options(admin, personas):
    spec = get_collection("orders")
    assert names() == ["title", "qty", "status"]
    assert (
        spec.field("title").required and spec.field("qty").min == 0 and spec.field("status").choices == ["open", "paid"]
    )
    page = text(admin.get("/admin/collections/orders"))
    assert "Orders" in page and 'name="csrf_token"' in page and "<script" not in page
    listing = text(admin.get("/admin/collections"))
    assert "orders" in listing and "Collections" in listing


def test_refusals_of_the_service_come_back_as_form_errors_and_change_nothing(admin):
    taken = post(admin, "/admin/collections", {"name": "orders"}, status=409)
    assert "This name is taken." in text(taken)
    bad_name = post(admin, "/admin/collections", {"name": "Bad Name"}, status=422)
    assert "lower-case" in text(bad_name)
    bad_field = post(admin, "/admin/collections/orders/fields", {"name": "x", "type": "select"}, status=422)
    assert "a select field needs &#39;choices&#39;" in text(bad_field)
    duplicate = post(admin, "/admin/collections/orders/fields", {"name": "qty", "type": "text"}, status=422)
    assert "Two fields have this name." in text(duplicate)
    assert names() == ["title", "qty", "status"]


def test_renaming_and_reordering_keep_the_values(admin, personas):
    record = create_record("orders", {"title": "Desk", "qty": 2}, get_user(personas.admin.id))
    post(admin, "/admin/collections/orders/fields/qty", {"name": "quantity", "min": "0"})
    post(admin, "/admin/collections/orders/fields/quantity/move", {"direction": "up"})
    assert names() == ["quantity", "title", "status"]
    post(admin, "/admin/collections/orders/fields/status/move", {"direction": "down"})  # already last: no change
    assert names() == ["quantity", "title", "status"]
    from appliance.records.read import get_record

    assert get_record("orders", record["id"], get_user(personas.admin.id))["quantity"] == 2


def test_a_destructive_change_first_shows_how_many_records_it_touches(admin, personas):
    actor = get_user(personas.admin.id)
    for title, qty in (("a", 1), ("b", 2), ("c", None)):
        create_record("orders", {"title": title, "qty": qty}, actor)
    confirm = text(admin.get("/admin/collections/orders/fields/qty/remove"))
    assert "2 records have a value in this field" in confirm
    unconfirmed = post(admin, "/admin/collections/orders/fields/qty/remove", {}, status=422)
    assert "Tick the box" in text(unconfirmed) and "qty" in names()
    post(admin, "/admin/collections/orders/fields/qty/remove", {"confirm": "yes"})
    assert names() == ["title", "status"]
    assert "3 records" in text(admin.get("/admin/collections/orders/delete"))


def test_a_change_existing_records_do_not_fit_is_refused_with_the_records_named(admin, personas):
    create_record("orders", {"title": "a"}, get_user(personas.admin.id))
    refused = post(admin, "/admin/collections/orders/fields/qty", {"name": "qty", "required": "yes"}, status=422)
    assert "Cannot make this field required: record 1" in text(refused)
    assert not get_collection("orders").field("qty").required


def test_permissions_are_set_per_role_and_action(admin):
    post(
        admin,
        "/admin/collections/orders/permissions",
        {
            "perm-editor-view": "all",
            "perm-editor-create": "all",
            "perm-editor-update": "own",
            "perm-viewer-view": "all",
        },
    )
    assert get_collection("orders").permissions == {"editor": ["view", "create", "update:own"], "viewer": ["view"]}
    page = text(admin.get("/admin/collections/orders"))
    assert re.search(r'name="perm-editor-update".*?value="own" selected', page)


def test_removing_a_collection_needs_confirmation(admin):
    post(admin, "/admin/collections/orders/delete", {}, status=422)
    post(admin, "/admin/collections/orders/delete", {"confirm": "yes"})
    assert admin.get("/admin/collections/orders").status_code == 404


def test_removing_a_file_field_on_the_page_removes_its_stored_files(admin, personas, instance):
    import io

    from appliance.records.files import Upload

    pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
    post(admin, "/admin/collections/orders/fields", {"name": "scan", "type": "file"})
    files = instance.paths.files_dir
    owner = get_user(personas.admin.id)
    create_record(
        "orders", {"title": "With a scan"}, owner, uploads={"scan": Upload("a.pdf", io.BytesIO(pdf))}, files_dir=files
    )
    assert [p.read_bytes() for p in files.rglob("*") if p.is_file()] == [pdf]
    post(admin, "/admin/collections/orders/fields/scan/remove", {"confirm": "yes"})
    assert "scan" not in names()
    assert [p for p in files.rglob("*") if p.is_file()] == []


def test_the_fields_table_names_only_options_that_are_set_and_scrolls_on_a_phone(admin):
    post(admin, "/admin/collections/orders/fields", {"name": "parent", "type": "relation", "collection": "orders"})
    assert get_collection("orders").field("parent").cascade is False
    page = text(admin.get("/admin/collections/orders"))
    row = page.split("<code>parent</code>", 1)[1].split("</tr>", 1)[0]
    assert "links to orders" in row and "deleted with" not in row and "False" not in row
    assert "required" in page.split("<code>title</code>", 1)[1].split("</tr>", 1)[0]
    assert page.count('<div class="table-responsive"><table') >= 1


def test_the_type_select_offers_every_type_of_the_table_in_words(admin):
    from webapp.admin_collections import type_choices

    page = admin.get("/admin/collections/orders").get_data(as_text=True)
    select = re.search(r'<select id="add-type" name="type".*?</select>', page, flags=re.S).group(0)
    assert re.findall(r'<option value="([a-z_]+)"[^>]*>([^<]+)</option>', select) == type_choices()
    assert ">Long text</option>" in select and ">long_text</option>" not in select
    assert "Type: Whole number" in text(admin.get("/admin/collections/orders/fields/qty"))


def test_a_refused_option_is_shown_beside_its_input_and_the_rest_is_kept(admin):
    answer = post(
        admin,
        "/admin/collections/orders/fields",
        {"name": "price", "type": "number", "min": "5", "max": "1", "pattern": "x"},
        status=422,
    )
    page = text(answer)
    assert '<div id="add-min-note" class="invalid-feedback">The smallest value is larger than the largest</div>' in page
    assert (
        '<div id="add-pattern-note" class="invalid-feedback">&#39;pattern&#39; does not apply to a number field</div>'
        in page
    )
    assert 'name="max" type="text" class="form-control" value="1"' in page
    choices = post(admin, "/admin/collections/orders/fields", {"name": "kind", "type": "select"}, status=422)
    assert re.search(
        r'name="choices"[^>]*is-invalid.*?<div class="invalid-feedback">a select field needs', text(choices)
    )
    assert names() == ["title", "qty", "status"]


def test_a_refused_change_of_a_field_keeps_its_type_and_options_on_the_page(admin):
    answer = post(admin, "/admin/collections/orders/fields/qty", {"name": "qty", "min": "9", "max": "2"}, status=422)
    page = text(answer)
    assert "Type: Whole number" in page
    assert (
        '<div id="edit-min-note" class="invalid-feedback">The smallest value is larger than the largest</div>' in page
    )
    assert get_collection("orders").field("qty").max is None
