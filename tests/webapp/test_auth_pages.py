"""The sign-in pages, sessions, CSRF and security headers, through the Flask test client."""

from __future__ import annotations

import re

import pytest

from appliance.audit import AuditEvent
from appliance.users import get_user_by_email
from tests.conftest import csrf_token_in


@pytest.fixture
def browser(app):
    """A test client that keeps cookies, like a browser."""
    return app.test_client()


def form_token(client, path: str = "/login") -> str:
    return csrf_token_in(client.get(path).get_data(as_text=True))


def sign_in(client, email: str, password: str, **extra):
    token = form_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token, **extra})


def test_pages_redirect_to_login_when_nobody_is_signed_in(browser):
    for path in ("/", "/account", "/admin/users"):
        answer = browser.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/login?next=")


def test_login_page_works_without_javascript_and_carries_its_csrf_token(browser):
    page = browser.get("/login").get_data(as_text=True)
    assert '<form method="post"' in page
    assert 'name="csrf_token"' in page
    assert "<script" not in page
    assert 'style="' not in page


def test_every_response_carries_the_security_headers(browser, personas):
    for path in ("/login", "/healthz", "/api/me", "/static/app.css", "/nowhere"):
        answer = browser.get(path)
        answer.close()
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"


def test_bootstrap_is_served_by_the_app_itself(browser):
    page = browser.get("/login").get_data(as_text=True)
    href = re.search(r'<link rel="stylesheet" href="([^"]*bootstrap[^"]*)"', page).group(1)
    assert href.startswith("/bootstrap/static/")
    answer = browser.get(href)
    answer.close()
    assert answer.status_code == 200


def test_sign_in_sets_an_httponly_lax_cookie_and_lands_on_the_next_page(browser, personas):
    answer = sign_in(browser, personas.editor.email.upper(), personas.editor.password, next="/account")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/account"
    cookie = next(v for k, v in answer.headers.items() if k == "Set-Cookie" and "appliance_session" in v)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "bob@example.com" in browser.get("/account").get_data(as_text=True)


def test_cookie_is_secure_when_the_request_came_over_https(browser, personas):
    token = csrf_token_in(browser.get("/login", base_url="https://localhost").get_data(as_text=True))
    answer = browser.post(
        "/login",
        data={"email": personas.editor.email, "password": personas.editor.password, "csrf_token": token},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
    )
    assert answer.status_code == 302
    assert "Secure" in answer.headers["Set-Cookie"]


def test_next_never_leads_off_the_site(browser, personas):
    answer = sign_in(browser, personas.editor.email, personas.editor.password, next="//evil.example/x")
    assert answer.headers["Location"] == "/"


def test_a_wrong_password_and_an_unknown_email_get_the_same_page(browser, personas):
    wrong_password = sign_in(browser, personas.editor.email, "not-the-password-at-all")
    unknown_email = sign_in(browser, "nobody@example.com", "not-the-password-at-all")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert "Email or password is incorrect." in wrong_password.get_data(as_text=True)
    strip = lambda a: re.sub(r'value="[^"]*"', "", a.get_data(as_text=True))  # noqa: E731
    assert strip(wrong_password) == strip(unknown_email)


def test_a_refused_sign_in_keeps_the_email_but_never_the_password(browser, personas):
    page = sign_in(browser, personas.editor.email, "a-wrong-password-typed").get_data(as_text=True)
    assert f'value="{personas.editor.email}"' in page
    assert "a-wrong-password-typed" not in page


def test_a_disabled_user_cannot_sign_in(browser, personas):
    answer = sign_in(browser, personas.disabled.email, personas.disabled.password)
    assert answer.status_code == 401


def test_a_form_without_its_csrf_token_is_refused(browser, personas):
    browser.get("/login")
    answer = browser.post("/login", data={"email": personas.editor.email, "password": personas.editor.password})
    assert answer.status_code == 400
    assert "CSRF" in answer.get_data(as_text=True)


def test_a_cookie_api_write_without_the_csrf_header_is_refused(browser, personas):
    sign_in(browser, personas.admin.email, personas.admin.password)
    body = {"email": "new@example.com", "name": "New", "role": "viewer", "password": "a-fine-long-password"}
    refused = browser.post("/api/users", json=body)
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "bad_request"
    token = form_token(browser, "/account")
    accepted = browser.post("/api/users", json=body, headers={"X-CSRFToken": token})
    assert accepted.status_code == 201


def test_a_bearer_token_request_needs_no_csrf_token(client, personas, api_token_for):
    token = api_token_for(personas.admin.email)
    body = {"email": "new@example.com", "name": "New", "role": "viewer", "password": "a-fine-long-password"}
    answer = client.post("/api/users", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201


def test_logout_needs_a_post_and_ends_the_session(browser, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    assert browser.get("/logout").status_code == 200  # a confirmation page, not a sign-out
    assert browser.get("/account").status_code == 200
    token = form_token(browser, "/account")
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    assert browser.get("/account").status_code == 302


def test_the_idle_time_out_ends_a_session(browser, app, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    with browser.session_transaction() as session:
        session["seen_at"] -= 61 * 60
    answer = browser.get("/account")
    assert answer.status_code == 302
    assert "ended" in browser.get(answer.headers["Location"]).get_data(as_text=True)


def test_the_absolute_time_out_ends_a_busy_session(browser, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    with browser.session_transaction() as session:
        session["signed_in_at"] -= 12 * 3600 + 1
    assert browser.get("/account").status_code == 302


def test_changing_the_password_keeps_this_browser_and_ends_the_others(app, personas):
    this, other = app.test_client(), app.test_client()
    sign_in(this, personas.editor.email, personas.editor.password)
    sign_in(other, personas.editor.email, personas.editor.password)
    token = form_token(this, "/account")
    answer = this.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": personas.editor.password,
            "new_password": "a-brand-new-password",
            "new_password_confirm": "a-brand-new-password",
        },
    )
    assert answer.status_code == 302
    assert this.get("/account").status_code == 200
    assert other.get("/account").status_code == 302


def test_a_refused_password_change_says_which_rule_failed_beside_the_field(browser, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    token = form_token(browser, "/account")
    answer = browser.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": personas.editor.password,
            "new_password": "password123",
            "new_password_confirm": "password123",
        },
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert re.search(r'id="f-new_password-note" class="invalid-feedback">This password is too common', page)
    assert "password123" not in page


def test_a_token_made_on_the_account_page_is_shown_once(browser, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    token = form_token(browser, "/account")
    answer = browser.post(
        "/account/tokens", data={"csrf_token": token, "name": "my script", "scope": "read", "expires_days": "30"}
    )
    assert answer.status_code == 201
    secret = re.search(r'id="new-token">([^<]+)<', answer.get_data(as_text=True)).group(1)
    assert secret.startswith("oat_")
    again = browser.get("/account").get_data(as_text=True)
    assert "my script" in again and secret not in again
    me = browser.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.get_json()["email"] == personas.editor.email


def test_a_bad_token_form_keeps_what_was_typed(browser, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    token = form_token(browser, "/account")
    answer = browser.post(
        "/account/tokens", data={"csrf_token": token, "name": "nightly export", "scope": "write", "expires_days": "x"}
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert 'value="nightly export"' in page
    assert "Use a whole number of days" in page


def test_a_reset_password_must_be_changed_before_anything_else(app, instance, personas):
    from appliance.users import set_password

    set_password(personas.editor.id, "temporary-pass-123", must_change=True, actor="test")
    browser = app.test_client()
    answer = sign_in(browser, personas.editor.email, "temporary-pass-123")
    assert answer.headers["Location"] == "/account"
    assert browser.get("/").headers["Location"] == "/account"
    assert browser.get("/api/me").status_code == 403
    token = form_token(browser, "/account")
    browser.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": "temporary-pass-123",
            "new_password": "my-own-new-password",
            "new_password_confirm": "my-own-new-password",
        },
    )
    assert browser.get("/").status_code == 200
    assert not get_user_by_email(personas.editor.email).must_change_password


def test_sign_in_successes_and_failures_are_audited(browser, personas):
    sign_in(browser, personas.editor.email, "wrong-password-here")
    sign_in(browser, personas.editor.email, personas.editor.password)
    actions = [e.action for e in AuditEvent.select().where(AuditEvent.target == personas.editor.email)]
    assert "sign_in.failed" in actions and "sign_in.success" in actions


def test_an_empty_sign_in_form_shows_its_errors_beside_the_fields(browser):
    answer = sign_in(browser, "", "")
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert 'id="f-email-note" class="invalid-feedback">Enter your email address.' in page
    assert 'id="f-password-note" class="invalid-feedback">Enter your password.' in page


def test_a_token_request_with_bad_token_fields_signs_nobody_in(client, personas):
    answer = client.post(
        "/api/auth/token", json={"email": personas.editor.email, "password": personas.editor.password, "scope": "all"}
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["fields"] == {"scope": "Choose read or write."}
    assert AuditEvent.select().where(AuditEvent.action == "sign_in.success").count() == 0


def test_the_token_endpoint_takes_json_only(client, personas):
    answer = client.post("/api/auth/token", data={"email": personas.editor.email, "password": personas.editor.password})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "bad_request"
