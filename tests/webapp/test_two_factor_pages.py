"""Two-factor pages: set-up at /account/two-factor, the second sign-in step, the policy's lead to the
set-up, the admin's reset on /admin/users; and what a password change or reset does to API tokens."""

from __future__ import annotations

import re
import time

import pyotp

from appliance.accounts import totp
from appliance.accounts.tokens import authenticate_token
from appliance.config.settings import write_settings
from appliance.storage.db import database
from tests.conftest import csrf_token_in, post_form


def secret_on(page: str) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    assert match, "the set-up page shows no key"
    return match.group(1)


def turn_on(client) -> tuple[str, list[str]]:
    """Set two-factor up through the pages; returns the secret and the recovery codes shown once."""
    assert post_form(client, "/account/two-factor/setup", {}, token_from="/account/two-factor").status_code == 303
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = secret_on(page)
    assert 'src="/account/two-factor/qr.svg"' in page
    qr = client.get("/account/two-factor/qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    assert qr.headers["Cache-Control"] == "no-store"
    answer = post_form(
        client, "/account/two-factor/confirm", {"code": pyotp.TOTP(secret).now()}, token_from="/account/two-factor"
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/account/two-factor/recovery-codes")
    shown = client.get("/account/two-factor/recovery-codes").get_data(as_text=True)
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", shown)
    assert len(codes) == 10
    assert 'download="recovery-codes.txt"' in shown and "data-print" in shown
    again = client.get("/account/two-factor/recovery-codes")
    assert again.status_code == 302  # shown once only
    assert secret not in client.get("/account/two-factor").get_data(as_text=True)  # never shown again
    return secret, codes


def password_step(client, person, next_path: str = ""):
    token = csrf_token_in(client.get("/login").get_data(as_text=True))
    data = {"email": person.email, "password": person.password, "csrf_token": token}
    if next_path:
        data["next"] = next_path
    return client.post("/login", data=data)


def code_step(client, code: str):
    token = csrf_token_in(client.get("/login/code").get_data(as_text=True))
    return client.post("/login/code", data={"code": code, "csrf_token": token})


def test_signing_in_with_two_factor_takes_a_second_step(app, signed_in, personas):
    secret, codes = turn_on(signed_in("editor"))
    browser = app.test_client()
    first = password_step(browser, personas.editor, next_path="/account")
    assert first.status_code == 302 and first.headers["Location"].endswith("/login/code")
    assert browser.get("/account").status_code == 302  # the password alone is no session
    assert browser.get("/api/me").status_code == 401
    wrong = code_step(browser, "12345")
    assert wrong.status_code == 401 and "not right" in wrong.get_data(as_text=True)
    done = code_step(browser, pyotp.TOTP(secret).at(time.time() + 30))
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    assert browser.get("/api/me").get_json()["totp"] is True

    other = app.test_client()
    password_step(other, personas.editor)
    assert code_step(other, codes[0]).status_code == 302
    third = app.test_client()
    password_step(third, personas.editor)
    assert code_step(third, codes[0]).status_code == 401  # a recovery code works once


def test_the_code_step_without_a_password_step_leads_back_to_sign_in(client):
    answer = client.get("/login/code")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")


def test_turning_it_off_on_the_page_needs_a_code(signed_in):
    client = signed_in("viewer")
    _secret, codes = turn_on(client)
    refused = post_form(client, "/account/two-factor/disable", {"code": "000000"}, token_from="/account/two-factor")
    assert refused.status_code == 422
    done = post_form(client, "/account/two-factor/disable", {"code": codes[5]}, token_from="/account/two-factor")
    assert done.status_code == 302
    assert "Two-factor sign-in is off" in client.get("/account/two-factor").get_data(as_text=True)


def test_an_admin_the_policy_covers_is_led_to_the_set_up_until_done(app, instance, personas, api_token_for):
    write_settings(instance.paths.settings_file, {"require_two_factor": "admins"})  # as on /admin/settings
    client = app.test_client()
    answer = password_step(client, personas.admin)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/account/two-factor")
    for path in ("/", "/admin/users", "/account"):
        led = client.get(path)
        assert led.status_code == 302 and led.headers["Location"].endswith("/account/two-factor"), path
    assert client.get("/api/users").status_code == 403  # the session's API too
    token = api_token_for(personas.admin.email)
    assert client.get("/api/users", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert "must use two-factor" in client.get("/account/two-factor").get_data(as_text=True)
    turn_on(client)
    assert client.get("/admin/users").status_code == 200  # done: every page is open again
    # An editor is not covered by "admins".
    assert password_step(app.test_client(), personas.editor).headers["Location"].endswith("/")


def test_the_admin_resets_two_factor_from_the_users_page(signed_in, personas):
    turn_on(signed_in("editor"))
    admin = signed_in("admin")
    listing = admin.get("/admin/users").get_data(as_text=True)
    assert f"/admin/users/{personas.editor.id}/totp/reset" in listing and "two-factor" in listing
    answer = post_form(admin, f"/admin/users/{personas.editor.id}/totp/reset", {}, token_from="/admin/users")
    assert answer.status_code == 302
    with database.connection_context():
        assert not totp.totp_enabled(personas.editor.id)
    assert "Two-factor sign-in of bob@example.com is off" in admin.get("/admin/users").get_data(as_text=True)
    assert signed_in("editor")  # signs in with the password alone again


def test_the_users_own_password_change_keeps_tokens_and_says_so(signed_in, personas, api_token_for):
    secret = api_token_for(personas.editor.email)
    client = signed_in("editor")
    answer = post_form(
        client,
        "/account/password",
        {
            "current_password": personas.editor.password,
            "new_password": "a-fresh-password-77",
            "new_password_confirm": "a-fresh-password-77",
        },
        token_from="/account",
        follow_redirects=True,
    )
    assert "Your API tokens keep working" in answer.get_data(as_text=True)
    with database.connection_context():
        assert authenticate_token(secret) is not None


def test_an_admin_reset_revokes_tokens_by_default_and_may_keep_them(signed_in, personas, api_token_for):
    admin = signed_in("admin")
    path = f"/admin/users/{personas.editor.id}"
    page = admin.get(path).get_data(as_text=True)
    assert re.search(r'name="revoke_tokens" type="checkbox" value="yes"[^>]* checked', page)
    kept = api_token_for(personas.editor.email)
    answer = post_form(admin, f"{path}/password", {"password": "temporary-pass-123"}, token_from=path)
    assert answer.status_code == 302
    with database.connection_context():
        assert authenticate_token(kept) is not None  # box unticked: the tokens stay
    answer = post_form(
        admin, f"{path}/password", {"password": "temporary-pass-456", "revoke_tokens": "yes"}, token_from=path
    )
    with database.connection_context():
        assert authenticate_token(kept) is None


def test_the_api_reset_takes_revoke_tokens(client, personas, headers, api_token_for):
    kept = api_token_for(personas.viewer.email)
    path = f"/api/users/{personas.viewer.id}"
    body = {"password": "temporary-pass-789", "revoke_tokens": False}
    assert client.patch(path, json=body, headers=headers["admin"]).status_code == 200
    with database.connection_context():
        assert authenticate_token(kept) is not None
    bad = client.patch(path, json={"password": "temporary-pass-790", "revoke_tokens": "no"}, headers=headers["admin"])
    assert bad.status_code == 400
    assert client.patch(path, json={"revoke_tokens": True}, headers=headers["admin"]).status_code == 400
    assert client.patch(path, json={"password": "temporary-pass-791"}, headers=headers["admin"]).status_code == 200
    with database.connection_context():
        assert authenticate_token(kept) is None  # the default revokes


def test_the_account_page_warns_of_a_token_about_to_expire(signed_in, personas):
    from appliance.accounts.tokens import create_token

    with database.connection_context():
        create_token(personas.editor.id, "soon gone", expires_days=7, actor="test")
        create_token(personas.editor.id, "lasting", expires_days=60, actor="test")
    page = signed_in("editor").get("/account").get_data(as_text=True)
    assert 'id="tokens-expiring"' in page and "<strong>soon gone</strong>" in page
    assert "<strong>lasting</strong>" not in page
    assert page.count("expires soon") == 1
