"""The sign-in pages, sessions, CSRF and security headers, through the Flask test client."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from appliance.accounts.users import get_user_by_email
from appliance.clock import utcnow
from appliance.storage.models import AuditEvent, UserSession
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


def test_an_expired_session_ends_and_the_login_page_says_so(browser, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    assert browser.get("/account").status_code == 200
    UserSession.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    answer = browser.get("/account")
    assert answer.status_code == 302
    assert "ended" in browser.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_signed_out_cookie_no_longer_works_anywhere(app, personas):
    """The session is a row: signing out deletes it, so a copy of the cookie dies too."""
    browser = app.test_client()
    sign_in(browser, personas.editor.email, personas.editor.password)
    copy = app.test_client()
    copy.set_cookie("appliance_session", browser.get_cookie("appliance_session").value)
    assert copy.get("/api/me").status_code == 200
    assert browser.post("/logout", data={"csrf_token": form_token(browser, "/account")}).status_code == 302
    assert copy.get("/api/me").status_code == 401
    assert copy.get("/account").status_code == 302
    assert UserSession.select().count() == 0


def test_an_ended_session_sending_an_unsafe_api_request_gets_401_not_a_csrf_400(app, personas):
    browser = app.test_client()
    sign_in(browser, personas.admin.email, personas.admin.password)
    copy = app.test_client()
    copy.set_cookie("appliance_session", browser.get_cookie("appliance_session").value)
    body = {"email": "new@example.com", "name": "New", "role": "viewer", "password": "a-fine-long-password"}
    assert copy.post("/api/users", json=body).status_code == 400  # live session, no CSRF header
    browser.post("/logout", data={"csrf_token": form_token(browser, "/account")})
    ended = copy.post("/api/users", json=body)
    assert ended.status_code == 401 and ended.get_json()["error"]["code"] == "not_authenticated"
    assert app.test_client().patch(f"/api/users/{personas.viewer.id}", json={"name": "X"}).status_code == 401


def test_signing_in_again_ends_the_session_this_browser_had(browser, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    first = browser.get_cookie("appliance_session").value
    token = form_token(browser, "/account")  # the login page sends a signed-in browser on
    again = browser.post(
        "/login", data={"email": personas.viewer.email, "password": personas.viewer.password, "csrf_token": token}
    )
    assert again.status_code == 302
    assert UserSession.select().count() == 1
    assert UserSession.get().user_id == personas.viewer.id
    assert first != browser.get_cookie("appliance_session").value


def test_a_session_records_where_it_came_from(browser, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    row = UserSession.get()
    assert (row.user_id, row.address) == (personas.editor.id, "127.0.0.1")
    assert row.user_agent.startswith("Werkzeug")


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
    # Post/Redirect/Get: the answer redirects; the account page shows the secret once.
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/account#tokens"
    shown = browser.get("/account").get_data(as_text=True)
    secret = re.search(r'id="new-token">([^<]+)<', shown).group(1)
    assert secret.startswith("oat_")
    again = browser.get("/account").get_data(as_text=True)
    assert "my script" in again and secret not in again
    me = browser.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.get_json()["email"] == personas.editor.email


def test_refreshing_after_making_a_token_makes_no_second_token(browser, personas):
    from appliance.accounts.tokens import list_tokens

    sign_in(browser, personas.editor.email, personas.editor.password)
    token = form_token(browser, "/account")
    browser.post("/account/tokens", data={"csrf_token": token, "name": "once", "scope": "read", "expires_days": "30"})
    # What a refresh repeats is the GET the redirect led to, not the POST.
    browser.get("/account")
    browser.get("/account")
    assert [t.name for t in list_tokens(personas.editor.id)] == ["once"]
    # The address a failed form leaves in the address bar leads back to the page instead of a 405.
    assert browser.get("/account/tokens").headers["Location"] == "/account#tokens"


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
    from appliance.accounts.user_changes import set_password

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


def change_own_password(browser, current: str, new: str = "a-brand-new-password"):
    token = form_token(browser, "/account")
    return browser.post(
        "/account/password",
        data={"csrf_token": token, "current_password": current, "new_password": new, "new_password_confirm": new},
    )


def test_a_wrong_current_password_is_audited_and_throttled_per_account(app, browser, personas):
    sign_in(browser, personas.editor.email, personas.editor.password)
    for _ in range(5):
        answer = change_own_password(browser, "not-my-password-at-all")
        assert answer.status_code == 422
        assert "This is not your current password." in answer.get_data(as_text=True)
    failed = AuditEvent.select().where(
        (AuditEvent.action == "user.password_change_failed") & (AuditEvent.target == personas.editor.email)
    )
    assert failed.count() == 5
    locked = change_own_password(browser, personas.editor.password)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    # The same lock holds for signing in.
    assert sign_in(app.test_client(), personas.editor.email, personas.editor.password).status_code == 429
    assert AuditEvent.select().where(AuditEvent.action == "user.password_changed").count() == 0


def test_unknown_filters_of_the_users_page_are_refused(browser, personas):
    sign_in(browser, personas.admin.email, personas.admin.password)
    assert browser.get("/admin/users?state=disabled&role=editor").status_code == 200
    for query in ("state=bogus", "role=nosuch", "state=bogus&role=nosuch"):
        answer = browser.get(f"/admin/users?{query}")
        assert answer.status_code == 400, query
        assert "Unknown state" in answer.get_data(as_text=True) or "no role called" in answer.get_data(as_text=True)
    assert browser.get("/api/users?role=nosuch").status_code == 400


def test_an_admin_removes_a_custom_role_on_the_users_page_unless_it_is_in_use(browser, personas):
    from appliance.accounts.roles import create_role, role_exists
    from appliance.accounts.user_changes import update_user

    create_role("clerk", "Clerk", actor="test")
    update_user(personas.viewer.id, {"role": "clerk"}, actor="test")
    sign_in(browser, personas.admin.email, personas.admin.password)
    page = browser.get("/admin/users").get_data(as_text=True)
    assert 'action="/admin/roles/clerk/delete"' in page and 'action="/admin/roles/viewer/delete"' not in page
    token = form_token(browser, "/admin/users")
    refused = browser.post("/admin/roles/clerk/delete", data={"csrf_token": token})
    assert refused.status_code == 409 and "still has the role" in refused.get_data(as_text=True)
    assert browser.post("/admin/roles/editor/delete", data={"csrf_token": token}).status_code == 409
    update_user(personas.viewer.id, {"role": "viewer"}, actor="test")
    assert browser.post("/admin/roles/clerk/delete", data={"csrf_token": token}).status_code == 302
    assert not role_exists("clerk")
    assert browser.post("/admin/roles/clerk/delete", data={"csrf_token": token}).status_code == 404


def test_the_api_removes_a_custom_role_unless_it_is_built_in_or_in_use(client, personas, api_token_for):
    from appliance.accounts.roles import create_role, role_exists

    admin = {"Authorization": f"Bearer {api_token_for(personas.admin.email)}"}
    create_role("clerk", "Clerk", actor="test")
    assert client.delete("/api/roles/viewer", headers=admin).status_code == 409
    editor = {"Authorization": f"Bearer {api_token_for(personas.editor.email)}"}
    assert client.delete("/api/roles/clerk", headers=editor).status_code == 403
    assert client.delete("/api/roles/clerk", headers=admin).status_code == 204
    assert not role_exists("clerk")
    assert client.delete("/api/roles/clerk", headers=admin).get_json()["error"]["code"] == "not_found"


def test_a_patch_with_fields_and_a_password_is_all_or_nothing(client, personas, api_token_for):
    from appliance.accounts import passwords

    admin = {"Authorization": f"Bearer {api_token_for(personas.admin.email)}"}
    path = f"/api/users/{personas.viewer.id}"
    refused = client.patch(path, json={"name": "Carol C.", "password": "short"}, headers=admin)
    assert refused.status_code == 422 and refused.get_json()["error"]["fields"] == {
        "password": "Use at least 10 characters."
    }
    assert client.get(path, headers=admin).get_json()["name"] == "Viewer"
    done = client.patch(path, json={"name": "Carol C.", "password": "a-reset-long-password"}, headers=admin)
    assert done.status_code == 200 and done.get_json()["must_change_password"] is True
    user = get_user_by_email(personas.viewer.email)
    assert user.name == "Carol C." and passwords.verify_password(user.password_hash, "a-reset-long-password")
    assert client.patch(path, json={"must_change_password": False}, headers=admin).status_code == 400
    assert client.patch(path, json={"password": None}, headers=admin).status_code == 422
