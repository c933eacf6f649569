"""The staff record pages through the Flask test client, for every role: home, lists, forms, a record,
its history, delete and restore."""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.records.read import get_record
from appliance.records.write import create_record, update_record
from appliance.storage.db import database
from appliance.text import format_bytes
from tests.conftest import csrf_token_in

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PDF2 = PDF.replace(b"1 0 obj", b"2 0 obj")

CLIENTS = {
    "name": "clients",
    "label": "Clients",
    "fields": [{"name": "name", "type": "text", "required": True, "unique": True}],
    "permissions": {"editor": ["view", "create", "update"], "viewer": ["view"]},
}
ORDERS = {
    "name": "orders",
    "label": "Orders",
    "fields": [
        {"name": "code", "type": "text"},
        {"name": "title", "type": "text", "required": True, "unique": True, "max": 80},
        {"name": "notes", "type": "long_text"},
        {"name": "quantity", "type": "integer", "min": 0, "filterable": True},
        {"name": "unit_price", "type": "number", "min": 0},
        {"name": "total", "type": "computed", "formula": "quantity * unit_price"},
        {"name": "paid", "type": "boolean", "filterable": True},
        {"name": "due", "type": "date", "filterable": True},
        {"name": "status", "type": "select", "choices": ["open", "paid"], "default": "open", "filterable": True},
        {"name": "client", "type": "relation", "collection": "clients", "filterable": True},
        {"name": "contract", "type": "file", "max_size": 2048, "accept": ["application/pdf"]},
        {"name": "extra", "type": "json"},
    ],
    "permissions": {"editor": ["view", "create", "update:own", "delete:own"], "viewer": ["view"]},
}
SECRET = {"name": "secret", "label": "Secret", "fields": [{"name": "x", "type": "text"}], "permissions": {}}


@pytest.fixture
def staff(instance, personas):
    """The personas and three collections (clients, orders, a secret one), with one client and two orders."""
    with database.connection_context():
        admin = get_user(personas.admin.id)
        editor = get_user(personas.editor.id)
        for definition in (CLIENTS, ORDERS, SECRET):
            create_collection(definition, admin)
        acme = create_record("clients", {"name": "Acme"}, admin)
        create_record("orders", {"title": "Admin order", "quantity": 1, "client": acme["id"]}, admin)
        create_record("orders", {"title": "Bob order", "quantity": 2, "unit_price": 5}, editor)
    return personas


@pytest.fixture
def as_(signed_in, staff):
    """``as_("editor")``: a test client signed in as that persona (keeps cookies, like a browser), once
    ``staff`` is set up."""
    return signed_in


def page(client, path: str, status: int = 200) -> str:
    """The HTML of ``path``, checked for the page rules: the status, no script of any kind, a token in every form."""
    answer = client.get(path)
    assert answer.status_code == status, (path, answer.status_code)
    html = answer.get_data(as_text=True)
    check_page_rules(html)
    return html


def check_page_rules(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert "//cdn" not in html and "https://" not in html
    for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", html, flags=re.S):
        assert 'name="csrf_token"' in form


def token_of(client, path: str) -> str:
    return csrf_token_in(client.get(path).get_data(as_text=True))


def order_id(title: str) -> int:
    with database.connection_context():
        row = database.execute_sql("SELECT id FROM c_orders WHERE title = ?", (title,)).fetchone()
    return row[0]


def stored(collection: str, record_id: int, staff) -> dict:
    with database.connection_context():
        return get_record(collection, record_id, get_user(staff.admin.id))


# --- home ----------------------------------------------------------------------------------------


def test_home_lists_the_collections_each_role_may_view_with_their_record_counts(as_, client, staff):
    admin = page(as_("admin"), "/")
    assert all(f'href="/c/{name}"' in admin for name in ("clients", "orders", "secret"))
    assert "2 records" in admin and "1 record<" in admin and "0 records" in admin
    editor = page(as_("editor"), "/")
    assert 'href="/c/orders"' in editor and 'href="/c/secret"' not in editor
    assert 'href="/c/orders/new"' in editor
    viewer = page(as_("viewer"), "/")
    assert 'href="/c/orders"' in viewer and 'href="/c/orders/new"' not in viewer
    answer = client.get("/")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_home_counts_only_ones_own_records_when_viewing_is_limited_to_them(app, as_, staff):
    with database.connection_context():
        from appliance.collections.definitions import update_collection

        update_collection("orders", {"permissions": {"editor": ["view:own", "create"]}}, get_user(staff.admin.id))
    assert "1 record<" in page(as_("editor"), "/")


# --- lists ---------------------------------------------------------------------------------------


def test_a_list_puts_the_title_first_and_hides_long_text_and_json(as_):
    html = page(as_("viewer"), "/c/orders")
    headers = re.findall(r"<th scope=\"col\">(.*?)</th>", html, flags=re.S)
    names = [re.sub(r"<[^>]+>|[▲▼]", "", h).strip() for h in headers]
    assert names[:2] == ["#", "title"]
    assert "notes" not in names and "extra" not in names and "code" in names
    assert "Admin order" in html and "Bob order" in html
    assert len(names) == 1 + 7  # the id, then at most seven columns


def test_list_buttons_follow_the_role_and_hidden_collections_do_not_exist(as_, client):
    assert 'href="/c/orders/new"' not in page(as_("viewer"), "/c/orders")
    assert 'href="/c/orders/new"' in page(as_("editor"), "/c/orders")
    page(as_("editor"), "/c/secret", status=404)
    page(as_("viewer"), "/c/nothing", status=404)
    assert client.get("/c/orders").status_code == 302


def test_search_filters_sorting_and_paging_take_the_api_parameters_and_keep_the_query(as_, staff):
    with database.connection_context():
        admin = get_user(staff.admin.id)
        for n in range(12):
            create_record(
                "orders", {"title": f"Bulk {n:02}", "quantity": n, "status": "paid" if n % 2 else "open"}, admin
            )
    viewer = as_("viewer")
    html = page(viewer, "/c/orders?search=bulk&status=paid&quantity__gte=3&ordering=-quantity&page_size=2&due__lte=")
    titles = re.findall(r">(Bulk \d\d)<", html)
    assert titles == ["Bulk 11", "Bulk 09"]
    assert "5 records" in html and "1 / 3" in html
    next_link = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(next_link).query)
    assert query == {
        "search": ["bulk"],
        "status": ["paid"],
        "quantity__gte": ["3"],
        "ordering": ["-quantity"],
        "page_size": ["2"],
        "page": ["2"],
    }
    assert re.findall(r">(Bulk \d\d)<", page(viewer, next_link)) == ["Bulk 07", "Bulk 05"]
    # The filter row is named after the fields and shows the current filter.
    assert '<option value="paid" selected>' in html and 'name="quantity__gte"' in html
    assert 'name="due__lte" type="date"' in html and 'name="client"' in html
    # Column headers sort, and sorting again turns the order round.
    assert "ordering=quantity" in html and "ordering=-title" not in html
    ascending = page(viewer, "/c/orders?ordering=title&search=bulk")
    assert re.findall(r">(Bulk \d\d)<", ascending)[:2] == ["Bulk 00", "Bulk 01"]
    assert "ordering=-title" in ascending


def test_empty_and_no_results_states_and_a_bad_filter_say_so(as_, staff):
    editor = as_("editor")
    empty = page(editor, "/c/clients")
    assert "Acme" in empty
    nothing = page(editor, "/c/orders?search=nosuchword")
    assert "No records match" in nothing and "<table" not in nothing
    with database.connection_context():
        create_collection(
            {"name": "notes", "label": "Notes", "fields": [{"name": "text", "type": "text"}],
             "permissions": {"viewer": ["view"], "editor": ["view", "create"]}},
            get_user(staff.admin.id),
        )  # fmt: skip
    assert "no records in Notes yet" in page(as_("viewer"), "/c/notes")
    assert "Create the first one" in page(editor, "/c/notes")
    bad = page(editor, "/c/orders?colour=red", status=400)
    assert "there is no field &#39;colour&#39;" in bad or "there is no field 'colour'" in bad


# --- new and edit --------------------------------------------------------------------------------


def test_the_new_form_has_an_input_per_field_of_the_right_kind(as_):
    html = page(as_("editor"), "/c/orders/new")
    assert 'enctype="multipart/form-data"' in html
    assert re.search(r'name="due" type="date"', html)
    assert re.search(r'<select id="f-status" name="status"', html) and '<option value="open" selected>' in html
    assert re.search(r'<select id="f-client" name="client"', html) and ">Acme (#1)</option>" in html
    assert 'name="contract" type="file"' in html and 'accept="application/pdf"' in html
    assert 'name="paid" type="checkbox"' in html and re.search(r'<textarea id="f-notes" name="notes"', html)
    assert re.search(r'<input id="f-total" type="text" class="form-control" readonly', html)
    assert 'name="total"' not in html  # computed: shown, never sent


def test_viewers_get_no_form_and_are_refused_when_they_post_anyway(as_):
    viewer = as_("viewer")
    page(viewer, "/c/orders/new", status=403)
    token = token_of(viewer, "/c/orders")
    assert viewer.post("/c/orders/new", data={"title": "x", "csrf_token": token}).status_code == 403
    assert "x" not in [r for r in re.findall(r">([^<]+)</a></td>", page(viewer, "/c/orders"))]


def test_a_refused_form_shows_each_error_beside_its_field_and_keeps_what_was_typed(as_, staff):
    editor = as_("editor")
    token = token_of(editor, "/c/orders/new")
    answer = editor.post(
        "/c/orders/new",
        data={"csrf_token": token, "title": "", "quantity": "-3", "due": "2026-02-30", "notes": "keep <me>",
              "extra": "{oops", "paid": "true"},
    )  # fmt: skip
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    check_page_rules(html)
    for name, message in (
        ("title", "This field is required."),
        ("quantity", "Enter 0 or more."),
        ("due", "Enter a real date as YYYY-MM-DD."),
        ("extra", "Enter valid JSON."),
    ):
        assert re.search(rf'id="f-{name}" name="{name}"[^>]*class="[^"]*is-invalid', html), name
        assert f'<div id="f-{name}-note" class="invalid-feedback d-block">{message}</div>' in html
    assert 'value="-3"' in html and 'value="2026-02-30"' in html and "keep &lt;me&gt;</textarea>" in html
    assert "{oops</textarea>" in html and re.search(r'name="paid" type="checkbox" value="true"[^>]* checked', html)
    taken = editor.post("/c/orders/new", data={"csrf_token": token, "title": "Admin order"})
    assert taken.status_code == 409 and "Another record already has this value." in taken.get_data(as_text=True)
    assert "2 records" in page(editor, "/")


def test_creating_a_record_with_a_file_through_the_form(as_, staff):
    editor = as_("editor")
    token = token_of(editor, "/c/orders/new")
    answer = editor.post(
        "/c/orders/new",
        data={
            "csrf_token": token,
            "title": "Desk",
            "quantity": "3",
            "unit_price": "2.5",
            "due": "2026-03-01",
            "status": "paid",
            "client": "1",
            "extra": '{"a": 1}',
            "contract": (io.BytesIO(PDF), "../contract.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302
    record_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    record = stored("orders", record_id, staff)
    assert record["quantity"] == 3 and record["total"] == 7.5 and record["paid"] is False
    assert record["due"] == "2026-03-01" and record["client"] == 1 and record["extra"] == {"a": 1}
    assert record["contract"]["name"] == "contract.pdf" and record["created_by"] == staff.editor.id
    html = page(editor, answer.headers["Location"])
    assert "was created" in html and f'href="{record["contract"]["url"]}" download' in html
    download = editor.get(record["contract"]["url"])
    assert download.data == PDF
    download.close()
    too_big = editor.post(
        "/c/orders/new",
        data={"csrf_token": token, "title": "Big", "contract": (io.BytesIO(PDF * 100), "big.pdf")},
        content_type="multipart/form-data",
    )
    assert too_big.status_code == 413 and "larger than 2 KB" in too_big.get_data(as_text=True)
    wrong = editor.post(
        "/c/orders/new",
        data={"csrf_token": token, "title": "Wrong", "contract": (io.BytesIO(b"plain text"), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert wrong.status_code == 422 and "text/plain are not accepted" in wrong.get_data(as_text=True)


def test_editing_shows_the_current_values_and_file_and_saves_changes(app, as_, staff):
    editor = as_("editor")
    bob = order_id("Bob order")
    with database.connection_context():
        from appliance.records.files import Upload

        update_record(
            "orders",
            bob,
            {"extra": {"k": [1, 2]}, "due": "2026-01-05"},
            get_user(staff.editor.id),
            uploads={"contract": Upload("old.pdf", io.BytesIO(PDF))},
            files_dir=app.extensions["appliance.instance"].paths.files_dir,
        )
    html = page(editor, f"/c/orders/{bob}/edit")
    assert 'value="Bob order"' in html and 'value="2026-01-05"' in html and "Current file:" in html
    assert ">old.pdf</a>" in html and 'name="_clear.contract"' in html and "&#34;k&#34;" in html
    assert re.search(r'<input id="f-total" type="text" class="form-control" readonly value="10"', html)
    token = csrf_token_in(html)
    form = {"csrf_token": token, "title": "Bob order", "quantity": "4", "unit_price": "5", "extra": '{"k": [1, 2]}'}
    form.update(due="2026-01-05", status="open", client="", code="", notes="")
    refused = editor.post(f"/c/orders/{bob}/edit", data={**form, "quantity": "many"})
    assert refused.status_code == 422 and 'value="many"' in refused.get_data(as_text=True)
    assert stored("orders", bob, staff)["quantity"] == 2
    saved = editor.post(
        f"/c/orders/{bob}/edit",
        data={**form, "contract": (io.BytesIO(PDF2), "new.pdf")},
        content_type="multipart/form-data",
    )
    assert saved.status_code == 302
    record = stored("orders", bob, staff)
    assert record["quantity"] == 4 and record["total"] == 20 and record["contract"]["name"] == "new.pdf"
    assert record["extra"] == {"k": [1, 2]} and record["due"] == "2026-01-05"
    cleared = editor.post(f"/c/orders/{bob}/edit", data={**form, "_clear.contract": "yes"})
    assert cleared.status_code == 302 and stored("orders", bob, staff)["contract"] is None


def test_editors_may_change_and_delete_only_their_own_records_and_viewers_nothing(as_):
    admin_order, bob_order = order_id("Admin order"), order_id("Bob order")
    editor, viewer = as_("editor"), as_("viewer")
    own = page(editor, f"/c/orders/{bob_order}")
    assert f'href="/c/orders/{bob_order}/edit"' in own and f'href="/c/orders/{bob_order}/delete"' in own
    other = page(editor, f"/c/orders/{admin_order}")
    assert "/edit" not in other and "/delete" not in other and "Restore version" not in other
    viewed = page(viewer, f"/c/orders/{bob_order}")
    assert "/edit" not in viewed and "/delete" not in viewed
    token = token_of(editor, "/c/orders")
    page(editor, f"/c/orders/{admin_order}/edit", status=403)
    assert editor.post(f"/c/orders/{admin_order}/edit", data={"csrf_token": token, "title": "x"}).status_code == 403
    assert editor.post(f"/c/orders/{admin_order}/delete", data={"csrf_token": token}).status_code == 403
    page(viewer, f"/c/orders/{bob_order}/delete", status=403)
    assert viewer.post(f"/c/orders/{bob_order}/delete", data={"csrf_token": token}).status_code in (400, 403)
    assert "Admin order" in page(viewer, "/c/orders") and "Bob order" in page(viewer, "/c/orders")
    admin = page(as_("admin"), f"/c/orders/{bob_order}")
    assert "/edit" in admin and "/delete" in admin


# --- one record: detail, history, delete, restore --------------------------------------------------


def test_the_record_page_shows_values_files_and_who_changed_what_from_what_to_what(as_, staff):
    editor = as_("editor")
    bob = order_id("Bob order")
    with database.connection_context():
        update_record("orders", bob, {"quantity": 7, "status": "paid"}, get_user(staff.admin.id))
    html = page(editor, f"/c/orders/{bob}")
    assert '<dd class="col-sm-8 col-lg-9" id="value-total">35</dd>' in html
    assert 'id="value-paid"><span class="text-muted">—</span>' in html
    assert "Version 2</strong>: changed" in html and "by alice@example.com" in html
    assert "<strong>quantity</strong>: 2 → 7" in html and "<strong>status</strong>: open → paid" in html
    assert "Version 1</strong>: created" in html and "by bob@example.com" in html
    assert 'id="files"' in html and "no file" in html
    admins = page(editor, f"/c/orders/{order_id('Admin order')}")
    assert '<a href="/c/clients/1">Acme</a>' in admins  # a relation shows the related record's title
    assert "Restore version 1" in html and "Restore version 2" not in html
    assert "Restore version" not in page(as_("viewer"), f"/c/orders/{bob}")
    page(editor, f"/c/orders/{bob + 100}", status=404)


def test_restoring_a_version_brings_its_values_back_as_a_new_version(as_, staff):
    editor = as_("editor")
    bob = order_id("Bob order")
    with database.connection_context():
        update_record("orders", bob, {"quantity": 9, "title": "Renamed"}, get_user(staff.editor.id))
    token = token_of(editor, f"/c/orders/{bob}")
    assert editor.post(f"/c/orders/{bob}/history/1/restore").status_code == 400  # no CSRF token
    viewer = as_("viewer")
    assert viewer.post(
        f"/c/orders/{bob}/history/1/restore", data={"csrf_token": token_of(viewer, "/")}
    ).status_code == (403)
    answer = editor.post(f"/c/orders/{bob}/history/1/restore", data={"csrf_token": token})
    assert answer.status_code == 302
    record = stored("orders", bob, staff)
    assert record["quantity"] == 2 and record["title"] == "Bob order"
    html = page(editor, answer.headers["Location"])
    assert "Version 1 was restored." in html and "Version 3</strong>: restored" in html
    assert "<strong>title</strong>: Renamed → Bob order" in html


def test_a_restore_that_would_break_a_unique_value_is_refused_with_the_reason(as_, staff):
    editor = as_("editor")
    bob = order_id("Bob order")
    with database.connection_context():
        update_record("orders", bob, {"title": "Renamed"}, get_user(staff.editor.id))
        create_record("orders", {"title": "Bob order"}, get_user(staff.admin.id))
    answer = editor.post(f"/c/orders/{bob}/history/1/restore", data={"csrf_token": token_of(editor, "/")})
    assert answer.status_code == 302
    html = page(editor, answer.headers["Location"])
    assert "Version 1 cannot be restored" in html and "Another record already has this value." in html
    assert stored("orders", bob, staff)["title"] == "Renamed"


def test_delete_asks_first_then_deletes_and_a_referenced_record_is_kept(as_, staff):
    editor = as_("editor")
    bob = order_id("Bob order")
    confirm = page(editor, f"/c/orders/{bob}/delete")
    assert "Delete this record?" in confirm and 'method="post"' in confirm
    assert stored("orders", bob, staff)["id"] == bob  # asking deletes nothing
    answer = editor.post(f"/c/orders/{bob}/delete", data={"csrf_token": csrf_token_in(confirm)})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/c/orders")
    listing = page(editor, "/c/orders")
    assert "Orders: Bob order was deleted." in listing and ">Bob order</a>" not in listing
    page(editor, f"/c/orders/{bob}", status=404)
    admin = as_("admin")
    refused = admin.post("/c/clients/1/delete", data={"csrf_token": token_of(admin, "/c/clients/1/delete")})
    assert refused.status_code == 302
    assert "still referred to by orders.client" in page(admin, "/c/clients/1")


def test_the_list_page_links_to_a_csv_export_of_the_same_filtered_view(as_):
    html = page(as_("editor"), "/c/clients?name=Acme&ordering=-name&page=2")
    href = re.search(r'href="([^"]*export\.csv[^"]*)"', html).group(1).replace("&amp;", "&")
    parts = urlsplit(href)
    assert parts.path == "/c/clients/export.csv"
    assert parse_qs(parts.query) == {"name": ["Acme"], "ordering": ["-name"]}
    assert 'href="/c/clients/import"' in html
    assert 'href="/c/clients/import"' not in page(as_("viewer"), "/c/clients")


# --- links that keep the query, Excel export, numbers, relations ------------------------------------


def test_a_filter_called_name_with_results_keeps_its_value_in_every_link(as_, staff):
    with database.connection_context():
        create_record("clients", {"name": "Alder & Finch"}, get_user(staff.admin.id))
    html = page(as_("editor"), "/c/clients?name=Alder%20%26%20Finch")
    assert "Alder &amp; Finch" in html
    sort_link = re.search(r'href="(/c/clients\?[^"]*ordering=[^"]*)"', html).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(sort_link).query)["name"] == ["Alder & Finch"]


def test_a_repeated_filter_is_refused_as_the_api_refuses_it(as_):
    html = page(as_("editor"), "/c/orders?status=open&status=paid", status=400)
    assert "more than once" in html or "status__in" in html


def test_the_list_offers_an_excel_export_with_a_byte_order_mark_beside_the_plain_one(as_):
    client = as_("editor")
    html = page(client, "/c/orders?status=open")
    excel = re.search(r'href="([^"]*export\.csv[^"]*)"[^>]*>Export CSV \(Excel\)', html).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(excel).query) == {"status": ["open"], "bom": ["1"]}
    assert client.get(excel).get_data().startswith(b"\xef\xbb\xbfid,")
    assert client.get("/c/orders/export.csv?status=open").get_data().startswith(b"id,")


def test_numbers_show_without_float_noise_in_lists_records_and_history(as_, staff):
    with database.connection_context():
        record = create_record(
            "orders", {"title": "Noisy", "quantity": 3, "unit_price": 17.8}, get_user(staff.admin.id)
        )
        update_record("orders", record["id"], {"unit_price": 17.9}, get_user(staff.admin.id))
    assert stored("orders", record["id"], staff)["total"] != 53.7  # the stored float is noisy
    client = as_("viewer")
    from webapp.record_fields import number_text

    # Lists show values through the same macro and filter as the record page.
    assert [number_text(v) for v in (53.400000000000006, 2.0, 0.1 + 0.2, 7, 1e20)] == ["53.4", "2", "0.3", "7", "1e+20"]
    html = page(client, f"/c/orders/{record['id']}")
    assert 'id="value-total">53.7</dd>' in html
    assert "<strong>total</strong>: 53.4 → 53.7" in html and "53.400000000000006" not in html


def test_a_relation_with_too_many_targets_shows_the_current_label_and_a_lookup(as_, staff, monkeypatch):
    import webapp.record_fields as record_fields

    monkeypatch.setattr(record_fields, "MAX_RELATION_CHOICES", 1)
    with database.connection_context():
        create_record("clients", {"name": "Other"}, get_user(staff.admin.id))  # two targets: more than 1
    record_id = order_id("Admin order")
    html = page(as_("admin"), f"/c/orders/{record_id}/edit")
    field = re.search(r'<input id="f-client"[^>]*>', html).group(0)
    assert 'type="number"' in field and 'value="1"' in field
    assert "Now: <strong>Acme</strong> (#1)" in html
    assert re.search(r'<a href="/c/clients" target="_blank" rel="noopener">find it in Clients</a>', html)


def test_history_shows_the_related_records_labels_not_their_ids(as_, staff):
    admin_order = order_id("Admin order")
    with database.connection_context():
        beta = create_record("clients", {"name": "Beta"}, get_user(staff.admin.id))
        update_record("orders", admin_order, {"client": beta["id"]}, get_user(staff.admin.id))
    html = page(as_("viewer"), f"/c/orders/{admin_order}")
    assert (
        f'<strong>client</strong>: Acme <span class="text-muted">(#1)</span> → Beta <span class="text-muted">(#{beta["id"]})</span>'
        in html
    )


def test_list_columns_put_filterable_and_select_fields_before_the_others(as_):
    html = page(as_("viewer"), "/c/orders")
    headers = re.findall(r"<th scope=\"col\">(.*?)</th>", html, flags=re.S)
    names = [re.sub(r"<[^>]+>|[▲▼]", "", h).strip() for h in headers]
    assert names[1:] == ["title", "quantity", "paid", "due", "status", "client", "code"]


def test_a_wrong_file_type_and_bad_values_are_all_shown_at_once_and_nothing_is_kept(as_, staff, app):
    editor = as_("editor")
    answer = editor.post(
        "/c/orders/new",
        data={
            "csrf_token": token_of(editor, "/c/orders/new"),
            "title": "",
            "quantity": "-4",
            "contract": (io.BytesIO(b"plain text"), "a.pdf"),
        },
        content_type="multipart/form-data",
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    for field in ("title", "quantity", "contract"):
        assert f'id="f-{field}-note" class="invalid-feedback' in html, field
    assert "text/plain are not accepted" in html
    files_dir = app.extensions["appliance.instance"].paths.files_dir
    assert not [p for p in files_dir.rglob("*") if p.is_file()]


def test_the_limit_beside_a_file_input_and_its_error_state_the_same_size(as_):
    editor = as_("editor")
    form = page(editor, "/c/orders/new")
    limit = re.search(r'<div id="f-contract-note" class="form-text">At most ([^.]+)\.', form).group(1)
    assert limit == format_bytes(2048) == "2 KB"
    answer = editor.post(
        "/c/orders/new",
        data={
            "csrf_token": token_of(editor, "/c/orders/new"),
            "title": "Big",
            "contract": (io.BytesIO(PDF * 100), "b.pdf"),
        },
        content_type="multipart/form-data",
    )
    html = answer.get_data(as_text=True)
    assert f'<div id="f-contract-note" class="invalid-feedback d-block">The file is larger than {limit}.</div>' in html


def test_sizes_on_the_record_pages_are_written_the_one_way(as_, staff, app):
    from appliance.records.files import Upload

    editor = as_("editor")
    record_id = order_id("Bob order")
    with database.connection_context():
        update_record(
            "orders",
            record_id,
            {},
            get_user(staff.editor.id),
            uploads={"contract": Upload("c.pdf", io.BytesIO(PDF + b" " * 1500))},
            files_dir=app.extensions["appliance.instance"].paths.files_dir,
        )
    size = format_bytes(len(PDF) + 1500)
    assert size.endswith(" KB")
    assert f"({size})" in page(editor, f"/c/orders/{record_id}/edit")
    assert f"application/pdf, {size}" in page(editor, f"/c/orders/{record_id}")
