"""Without SMTP: the admin is shown the one-time link to pass on (never a password), and "forgot password"
says to ask an admin."""

from __future__ import annotations

import re

from tests.conftest import post_form

NEW_PASSWORD = "a-brand-new-passphrase"


def shown_link(html: str) -> str:
    match = re.search(r'id="account-link">http://localhost(/(?:invite|reset)/[^<\s]+)<', html)
    assert match, "the page shows no link"
    return match.group(1)


def test_the_admin_sees_the_invitation_link_once_and_the_invitee_uses_it(signed_in, app):
    admin = signed_in("admin")
    form = admin.get("/admin/users/invite").get_data(as_text=True)
    assert "Mail is not set up" in form
    answer = post_form(admin, "/admin/users/invite", {"email": "erin@example.com", "name": "Erin", "role": "viewer"})
    assert answer.status_code == 303
    page = admin.get(answer.location).get_data(as_text=True)
    path = shown_link(page)
    assert "pass this link on" in page and "password" not in path
    # Shown once: a refresh leads back to the user's page.
    assert admin.get(answer.location).status_code == 302
    assert "invited" in admin.get("/admin/users").get_data(as_text=True)

    visitor = app.test_client()
    assert post_form(visitor, path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}).status_code == 302
    assert visitor.get("/api/me").get_json()["email"] == "erin@example.com"


def test_a_refused_invitation_form_shows_its_errors_beside_the_fields(signed_in):
    admin = signed_in("admin")
    answer = post_form(admin, "/admin/users/invite", {"email": "bob@example.com", "name": "", "role": "viewer"})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'id="invite-name-note" class="invalid-feedback">Enter a name.' in html
    taken = post_form(admin, "/admin/users/invite", {"email": "bob@example.com", "name": "Bob", "role": "viewer"})
    assert taken.status_code == 409 and "already has an account" in taken.get_data(as_text=True)


def test_the_admin_makes_a_reset_link_instead_of_a_password(signed_in, app, personas):
    admin = signed_in("admin")
    answer = post_form(admin, f"/admin/users/{personas.viewer.id}/reset-link", {}, token_from="/admin/users")
    assert answer.status_code == 303
    path = shown_link(admin.get(answer.location).get_data(as_text=True))
    assert path.startswith("/reset/")
    visitor = app.test_client()
    assert "carol@example.com" in visitor.get(path).get_data(as_text=True)
    assert post_form(visitor, path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}).status_code == 302
    assert visitor.get("/api/me").get_json()["email"] == personas.viewer.email


def test_forgot_password_without_mail_says_to_ask_an_admin(client):
    page = client.get("/forgot")
    assert page.status_code == 200 and "Ask an admin" in page.get_data(as_text=True)
    answer = client.post("/api/auth/forgot", json={"email": "carol@example.com"})
    assert answer.status_code == 503 and "ask an admin" in answer.get_json()["error"]["message"]


def test_the_api_gives_the_admin_the_invite_url_without_mail(client, headers):
    answer = client.post(
        "/api/users/invite",
        json={"email": "erin@example.com", "name": "Erin", "role": "viewer"},
        headers=headers["admin"],
    )
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["invite_url"].startswith("http://localhost/invite/")
    assert body["invitation"]["mailed"] is False and body["invitation"]["mail_error"] == "SMTP is not set up"
    assert client.get(body["invite_url"].removeprefix("http://localhost")).status_code == 200
    reset = client.post(f"/api/users/{body['id']}/reset-link", headers=headers["admin"])
    assert reset.status_code == 201 and reset.get_json()["reset_url"].startswith("http://localhost/reset/")
