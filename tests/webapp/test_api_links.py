"""One-time account links in the JSON API, with mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re

import pytest

from appliance.config.settings import write_settings
from tests.conftest import TEST_PASSWORD_HASHING, post_form
from tests.mailbox import mailbox  # noqa: F401 - fixture

NEW_PASSWORD = "a-brand-new-passphrase"


def body_of(message) -> str:
    """The text of a received mail, decoded (quoted-printable soft line breaks undone)."""
    return message.get_payload(decode=True).decode("utf-8")


@pytest.fixture
def home(home, mailbox):  # noqa: F811 - the shared home, with mail through the test's SMTP server
    write_settings(home / "appliance.toml", {**TEST_PASSWORD_HASHING, **mailbox.settings()})
    return home


def test_an_api_invitation_is_mailed_and_its_link_is_not_in_the_answer(client, headers, mailbox):  # noqa: F811
    answer = client.post(
        "/api/users/invite",
        json={"email": "erin@example.com", "name": "Erin", "role": "viewer"},
        headers=headers["admin"],
    )
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["email"] == "erin@example.com" and body["role"] == "viewer" and body["active"] is True
    assert body["invitation"]["mailed"] is True and body["invitation"]["expires_at"].endswith("Z")
    assert "invite_url" not in body and "password_hash" not in body
    [message] = mailbox.wait_for(1)
    path = re.search(r"http://localhost(/invite/\S+)", body_of(message)).group(1)

    page = client.get(path)
    assert page.status_code == 200
    done = post_form(client, path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert done.status_code == 302
    token = client.post("/api/auth/token", json={"email": "erin@example.com", "password": NEW_PASSWORD})
    assert token.status_code == 201

    # Inviting again an address that has become an account is a conflict.
    again = client.post(
        "/api/users/invite",
        json={"email": "erin@example.com", "name": "Erin", "role": "viewer"},
        headers=headers["admin"],
    )
    assert again.status_code == 409 and again.get_json()["error"]["fields"]["email"]


def test_reinviting_answers_200_and_only_the_new_link_works(client, headers, mailbox):  # noqa: F811
    body = {"email": "erin@example.com", "name": "Erin", "role": "viewer"}
    assert client.post("/api/users/invite", json=body, headers=headers["admin"]).status_code == 201
    again = client.post("/api/users/invite", json={**body, "role": "editor"}, headers=headers["admin"])
    assert again.status_code == 200 and again.get_json()["invitation"]["again"] is True
    assert again.get_json()["role"] == "editor"
    first, second = (re.search(r"(/invite/\S+)", body_of(m)).group(1) for m in mailbox.wait_for(2))
    assert client.get(first).status_code == 410
    assert client.get(second).status_code == 200


@pytest.mark.parametrize(("who", "status"), [("editor", 403), ("viewer", 403), ("disabled", 401), ("outsider", 401)])
def test_only_admins_may_invite(client, headers, who, status):
    answer = client.post(
        "/api/users/invite", json={"email": "erin@example.com", "name": "E", "role": "viewer"}, headers=headers[who]
    )
    assert answer.status_code == status


def test_bad_invitations_get_the_error_shape(client, headers):
    bad = client.post("/api/users/invite", json={"email": "x", "name": "", "role": "boss"}, headers=headers["admin"])
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"email", "name", "role"}
    unknown = client.post(
        "/api/users/invite", json={"email": "e@example.com", "password": "x"}, headers=headers["admin"]
    )
    assert unknown.status_code == 400 and unknown.get_json()["error"]["code"] == "bad_request"
    assert client.post("/api/users/invite", data="nope", headers=headers["admin"]).status_code == 400


def test_api_forgot_answers_202_alike_for_known_and_unknown_and_mails_only_the_known(client, personas, mailbox):  # noqa: F811
    known = client.post("/api/auth/forgot", json={"email": personas.viewer.email})
    unknown = client.post("/api/auth/forgot", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    [message] = mailbox.wait_for(1)
    assert message["To"] == personas.viewer.email
    for _ in range(2):
        client.post("/api/auth/forgot", json={"email": "nobody@example.com"})
    throttled = client.post("/api/auth/forgot", json={"email": "nobody@example.com"})
    assert throttled.status_code == 429 and throttled.get_json()["error"]["code"] == "throttled"
    assert client.post("/api/auth/forgot", json={"email": "not an email"}).status_code == 422
    assert client.post("/api/auth/forgot", json={"mail": "x"}).status_code == 400


def test_an_admin_reset_link_goes_by_mail(client, headers, personas, mailbox):  # noqa: F811
    answer = client.post(f"/api/users/{personas.viewer.id}/reset-link", headers=headers["admin"])
    assert answer.status_code == 201
    assert answer.get_json()["mailed"] is True and "reset_url" not in answer.get_json()
    [message] = mailbox.wait_for(1)
    assert message["To"] == personas.viewer.email
    assert client.post(f"/api/users/{personas.disabled.id}/reset-link", headers=headers["admin"]).status_code == 409
    assert client.post("/api/users/999/reset-link", headers=headers["admin"]).status_code == 404
    assert client.post(f"/api/users/{personas.viewer.id}/reset-link", headers=headers["editor"]).status_code == 403
