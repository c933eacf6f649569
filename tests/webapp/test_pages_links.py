"""Invitations and "forgot password" through the pages, with mail going to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from appliance.accounts.invitations import invite_user
from appliance.accounts.password_resets import ANSWER
from appliance.accounts.users import find_user_by_email
from appliance.config.settings import write_settings
from appliance.storage.db import database
from appliance.storage.models import AuditEvent
from tests.conftest import TEST_PASSWORD_HASHING, csrf_token_in, post_form
from tests.fakes import FakeClock
from tests.mailbox import Mailbox, free_port, mailbox  # noqa: F401 - fixture
from tests.waiting import eventually

NEW_PASSWORD = "a-brand-new-passphrase"


def body_of(message) -> str:
    """The text of a received mail, decoded (quoted-printable soft line breaks undone)."""
    return message.get_payload(decode=True).decode("utf-8")


@pytest.fixture
def home(home, mailbox):  # noqa: F811 - the shared home, with mail through the test's SMTP server
    write_settings(home / "appliance.toml", {**TEST_PASSWORD_HASHING, **mailbox.settings()})
    return home


def link_in(message, path: str) -> str:
    match = re.search(rf"http://localhost{path}(\S+)", body_of(message))
    assert match, f"no {path} link in the mail: {body_of(message)}"
    return f"{path}{match.group(1)}"


def set_password(client, path: str, password: str, confirm: str | None = None):
    return post_form(client, path, {"password": password, "password_confirm": password if confirm is None else confirm})


def test_an_invitation_is_mailed_and_the_invitee_sets_their_password_and_is_signed_in(signed_in, app, mailbox):  # noqa: F811
    admin = signed_in("admin")
    answer = post_form(admin, "/admin/users/invite", {"email": "erin@example.com", "name": "Erin", "role": "editor"})
    assert answer.status_code == 302
    assert "Invitation mailed to erin@example.com" in admin.get(answer.location).get_data(as_text=True)
    [message] = mailbox.wait_for(1)
    assert message["To"] == "erin@example.com" and "invited" in message["Subject"]
    assert "Admin invited you" in body_of(message)  # who invited them
    path = link_in(message, "/invite/")

    visitor = app.test_client()
    page = visitor.get(path)
    assert page.status_code == 200 and "erin@example.com" in page.get_data(as_text=True)
    refused = set_password(visitor, path, "short", "short")
    assert refused.status_code == 422
    assert 'id="f-password-note" class="invalid-feedback">Use at least 10 characters.' in refused.get_data(as_text=True)
    differ = set_password(visitor, path, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert differ.status_code == 422 and "The two passwords differ." in differ.get_data(as_text=True)

    done = set_password(visitor, path, NEW_PASSWORD)
    assert done.status_code == 302
    assert visitor.get("/api/me").get_json()["email"] == "erin@example.com"  # signed in
    again = visitor.get(path)
    assert again.status_code == 410 and "has been used already" in again.get_data(as_text=True)
    with database.connection_context():
        assert {"user.invited", "invitation.used"} <= {e.action for e in AuditEvent.select()}


def test_an_expired_invitation_says_so(app, personas):
    clock = FakeClock()
    with database.connection_context():
        made = invite_user("erin@example.com", "Erin", "editor", actor="test", now=clock.advance(hours=-73))
    page = app.test_client().get(f"/invite/{made.secret}")
    assert page.status_code == 410 and "This invitation link has expired." in page.get_data(as_text=True)
    assert app.test_client().get("/invite/not-a-real-link").status_code == 410


def test_the_sign_in_page_leads_to_forgot_password(client):
    assert 'href="/forgot"' in client.get("/login").get_data(as_text=True)


def forgot(client, email: str):
    return post_form(client, "/forgot", {"email": email})


def test_forgot_password_answers_the_same_for_a_known_and_an_unknown_address_and_only_the_known_gets_mail(
    app,
    personas,
    mailbox,  # noqa: F811
):
    known = forgot(app.test_client(), personas.editor.email)
    unknown = forgot(app.test_client(), "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert ANSWER in known.get_data(as_text=True)
    assert known.get_data(as_text=True) == unknown.get_data(as_text=True)
    [message] = mailbox.wait_for(1)
    assert message["To"] == personas.editor.email
    # The unknown address never gets one: a second known request's mail arrives, and still nothing for nobody@.
    forgot(app.test_client(), personas.viewer.email)
    assert [m["To"] for m in mailbox.wait_for(2)] == [personas.editor.email, personas.viewer.email]

    path = link_in(message, "/reset/")
    other = app.test_client()  # the editor signed in elsewhere: that session ends
    post_form(other, "/login", {"email": personas.editor.email, "password": personas.editor.password})
    assert other.get("/api/me").status_code == 200
    browser = app.test_client()
    done = set_password(browser, path, NEW_PASSWORD)
    assert done.status_code == 302
    assert browser.get("/api/me").get_json()["email"] == personas.editor.email
    assert other.get("/api/me").status_code == 401
    late = post_form(
        app.test_client(), path, {"password": "another-passphrase-2", "password_confirm": "x"}, token_from="/login"
    )
    assert late.status_code == 410 and "has been used already" in late.get_data(as_text=True)


def test_forgot_password_is_throttled_after_three_requests_for_one_address(app, personas):
    for _ in range(3):
        assert forgot(app.test_client(), "nobody@example.com").status_code == 200
    refused = forgot(app.test_client(), "nobody@example.com")
    assert refused.status_code == 429 and "Too many requests" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0


class _SlowHandler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(2)
        from email import message_from_bytes

        self.box.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def test_a_slow_mail_server_does_not_slow_the_answer_for_a_known_address(tmp_path, personas, instance):
    """The answer never waits for the mail, so its time tells nothing about whether the address has an account."""
    from aiosmtpd.controller import Controller

    from webapp import create_app

    box = Mailbox("127.0.0.1", free_port())
    controller = Controller(_SlowHandler(box), hostname=box.host, port=box.port)
    controller.start()
    try:
        write_settings(instance.home / "appliance.toml", box.settings())
        instance.settings.values.update(box.settings())
        client = create_app(instance).test_client()
        token = csrf_token_in(client.get("/forgot").get_data(as_text=True))
        started = time.monotonic()
        answer = client.post("/forgot", data={"email": personas.editor.email, "csrf_token": token})
        took = time.monotonic() - started
        assert answer.status_code == 200 and ANSWER in answer.get_data(as_text=True)
        assert took < 1.5, f"the answer waited for the mail ({took:.2f} s)"
        assert box.messages == []
        eventually(lambda: box.messages or None, timeout=10, message="the mail never arrived")
    finally:
        controller.stop()


def test_an_admin_makes_a_reset_link_that_is_mailed(signed_in, personas, mailbox):  # noqa: F811
    admin = signed_in("admin")
    answer = post_form(admin, f"/admin/users/{personas.viewer.id}/reset-link", {}, token_from="/admin/users")
    assert answer.status_code == 302
    assert "A reset link is mailed" in admin.get(answer.location).get_data(as_text=True)
    [message] = mailbox.wait_for(1)
    assert message["To"] == personas.viewer.email and "/reset/" in body_of(message)
    with database.connection_context():
        assert find_user_by_email(personas.viewer.email).password_hash  # the password stays until the link is used


def test_a_reset_link_never_signs_in_past_a_second_factor(app, personas):
    import pyotp

    from appliance.accounts import password_resets, totp

    key = app.config["SECRET_KEY"]
    key = key if isinstance(key, bytes) else str(key).encode()
    with database.connection_context():
        user = find_user_by_email(personas.editor.email)
        setup = totp.start_setup(user.id, key)
        totp.confirm_setup(user.id, pyotp.TOTP(setup.secret).now(), key)
        made = password_resets.request_password_reset(personas.editor.email)
    visitor = app.test_client()
    done = set_password(visitor, f"/reset/{made.secret}", NEW_PASSWORD)
    assert done.status_code == 302 and done.location.endswith("/login")
    assert visitor.get("/api/me").status_code == 401  # the mailbox is not the phone: not signed in
    signed = post_form(visitor, "/login", {"email": personas.editor.email, "password": NEW_PASSWORD})
    assert signed.status_code == 302 and "/login/code" in signed.location  # the code is still asked


def test_an_invited_admin_is_led_to_set_up_two_factor_when_the_policy_asks(app, home):
    write_settings(home / "appliance.toml", {"require_two_factor": "admins"})
    from appliance.server.live_settings import refresh_runtime_settings

    refresh_runtime_settings(app.extensions["appliance.instance"], force=True)
    with database.connection_context():
        made = invite_user("ivy@example.com", "Ivy", "admin", actor="test")
    visitor = app.test_client()
    done = set_password(visitor, f"/invite/{made.secret}", NEW_PASSWORD)
    assert done.status_code == 302 and "/account/two-factor" in done.location
