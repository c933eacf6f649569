"""What a new office meets in its first week on the web pages: how to set up a fresh instance, the
collections in the menu of staff, and the settings page's basic and advanced parts."""

from __future__ import annotations

import re

from appliance.accounts.users import get_user
from appliance.collections.definitions import create_collection
from appliance.config.settings import write_settings
from appliance.server.addresses import HTTPS_WARNING
from appliance.storage.db import database
from tests.conftest import post_form

NO_ADMIN = "No admin yet."


def _collection(name: str, label: str, permissions: dict) -> dict:
    fields = [{"name": "title", "type": "text", "required": True}]
    return {"name": name, "label": label, "fields": fields, "permissions": permissions}


def test_a_fresh_instances_sign_in_page_says_how_to_make_the_first_admin(client):
    page = client.get("/login").get_data(as_text=True)
    assert NO_ADMIN in page and "appliance users create EMAIL --role admin" in page and "set-up link" in page


def test_the_sign_in_page_says_nothing_about_set_up_once_an_admin_exists(client, personas):
    for answer in (client.get("/login"), post_form(client, "/login", {"email": "x@example.com", "password": "no"})):
        page = answer.get_data(as_text=True)
        assert NO_ADMIN not in page and "users create" not in page and "set-up" not in page


def _menu(page: str) -> str:
    return page[page.index("<nav") : page.index("</nav>")]


def test_staff_see_the_collections_they_may_view_in_the_menu(signed_in, personas):
    with database.connection_context():
        admin = get_user(personas.admin.id)
        create_collection(_collection("orders", "Orders", {"editor": ["view"], "viewer": ["view"]}), admin)
        create_collection(_collection("secrets", "Secrets", {}), admin)
        create_collection(_collection("stock", "Stock", {"editor": ["view", "create"]}), admin)
    editor = _menu(signed_in("editor").get("/").get_data(as_text=True))
    assert 'href="/c/orders">Orders</a>' in editor and 'href="/c/stock">Stock</a>' in editor
    assert "/c/secrets" not in editor and "All collections" not in editor
    viewer = _menu(signed_in("viewer").get("/c/orders").get_data(as_text=True))
    assert re.search(r'nav-link active" href="/c/orders">Orders', viewer) and "/c/stock" not in viewer


def test_a_long_list_of_collections_ends_the_menu_with_all_collections(signed_in, personas):
    with database.connection_context():
        admin = get_user(personas.admin.id)
        for index in range(8):
            create_collection(_collection(f"list{index}", f"List {index}", {"viewer": ["view"]}), admin)
    menu = _menu(signed_in("viewer").get("/").get_data(as_text=True))
    shown = re.findall(r'nav-collection"><a class="nav-link" href="([^"]+)"', menu)
    # Each list appears twice: the phone menu and the wide row.
    assert shown[:7] == [*(f"/c/list{i}" for i in range(6)), "/#collections"] and "All collections" in menu


def test_admins_keep_their_menu_without_the_collections(signed_in, personas):
    with database.connection_context():
        create_collection(_collection("orders", "Orders", {"viewer": ["view"]}), get_user(personas.admin.id))
    menu = _menu(signed_in("admin").get("/").get_data(as_text=True))
    assert "/c/orders" not in menu and 'href="/admin/collections"' in menu


def _parts(page: str) -> tuple[str, str]:
    """The settings page before its first <details> (basic) and the <details> parts (advanced)."""
    start = page.index('id="basic-settings"')
    advanced = "".join(re.findall(r"<details.*?</details>", page, re.S))
    basic = re.sub(r"<details.*?</details>", "", page[start:], flags=re.S)
    return basic, advanced


def test_the_settings_page_shows_basic_settings_and_folds_the_advanced_ones(signed_in):
    page = signed_in("admin").get("/admin/settings").get_data(as_text=True)
    basic, advanced = _parts(page)
    for name in ("smtp_host", "backup_keep_daily", "backup_offsite_dir", "alert_recipients", "public_url"):
        assert f'name="{name}"' in basic and f'name="{name}"' not in advanced
    for name in ("log_level", "smtp_timeout_seconds", "mcp_calls_per_minute"):
        assert f'name="{name}"' in advanced and f'name="{name}"' not in basic
    # The settings that need a restart: the port in the basic table, Argon2 and SQLite tuning folded.
    assert "<code>port</code>" in basic and "<code>argon2_memory_kib</code>" not in basic
    assert "<code>argon2_memory_kib</code>" in advanced and "<code>sqlite_busy_timeout_ms</code>" in advanced
    assert "<code>sign_in_max_failures</code>" in advanced
    assert '<details class="mt-4" id="advanced-settings">' in page  # folded: not open


def test_a_refused_advanced_value_opens_the_advanced_part(signed_in):
    answer = post_form(signed_in("admin"), "/admin/settings", {"log_level": "LOUD"})
    assert answer.status_code == 422
    assert '<details class="mt-4" id="advanced-settings" open>' in answer.get_data(as_text=True)


def test_the_settings_page_warns_when_the_server_is_open_to_the_office_network(signed_in, instance):
    admin = signed_in("admin")
    assert 'id="network-warning"' not in admin.get("/admin/settings").get_data(as_text=True)
    write_settings(instance.paths.settings_file, {"host": "10.20.30.40", "port": 8765})
    page = admin.get("/admin/settings").get_data(as_text=True)
    warning = page[page.index('id="network-warning"') :]
    assert HTTPS_WARNING.split(":")[0] in warning and "http://10.20.30.40:8765/" in warning
    assert page.index('id="network-warning"') < page.index("<code>host</code>")  # beside the restart settings
