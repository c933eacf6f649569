"""Two-factor in the JSON API: /api/me/totp, /api/auth/token with "otp", /api/me, an admin's reset."""

from __future__ import annotations

import time

import pyotp
import pytest

from appliance.audit import list_events

STEP = 30


def next_step_code(secret: str) -> str:
    """The code of the next 30-second step: accepted (one step of clock drift is), and after the step
    the confirming code spent, so no test waits for the clock."""
    return pyotp.TOTP(secret).at(time.time() + STEP)


def token_answer(client, person, **extra):
    return client.post("/api/auth/token", json={"email": person.email, "password": person.password, **extra})


@pytest.fixture
def editor_with_totp(client, personas, headers):
    """Bob the editor with two-factor on through the API; returns (secret, recovery codes)."""
    started = client.post("/api/me/totp", headers=headers["editor"])
    assert started.status_code == 200, started.get_json()
    body = started.get_json()
    assert set(body) == {"secret", "otpauth_uri"} and body["secret"] in body["otpauth_uri"]
    confirmed = client.post(
        "/api/me/totp/confirm", json={"code": pyotp.TOTP(body["secret"]).now()}, headers=headers["editor"]
    )
    assert confirmed.status_code == 200, confirmed.get_json()
    codes = confirmed.get_json()["recovery_codes"]
    assert len(codes) == 10
    return body["secret"], codes


def test_me_says_whether_two_factor_is_on(client, personas, headers, editor_with_totp):
    assert client.get("/api/me", headers=headers["editor"]).get_json()["totp"] is True
    assert client.get("/api/me", headers=headers["viewer"]).get_json()["totp"] is False


def test_a_token_needs_the_code_when_two_factor_is_on(client, personas, editor_with_totp):
    secret, codes = editor_with_totp
    editor = personas.editor
    missing = token_answer(client, editor)
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "otp_required"
    wrong = token_answer(client, editor, otp="000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "not_authenticated"
    assert token_answer(client, editor, otp=codes[0]).status_code == 201
    again = token_answer(client, editor, otp=codes[0])
    assert again.status_code == 401  # a recovery code works once
    code = next_step_code(secret)
    made = token_answer(client, editor, otp=code)
    assert made.status_code == 201 and made.get_json()["token"].startswith("oat_")
    assert token_answer(client, editor, otp=code).status_code == 401  # no replay within its window
    assert list(list_events(action="sign_in.otp_failed", target=editor.email))


def test_wrong_codes_lock_the_account_like_wrong_passwords(client, personas, instance, editor_with_totp):
    editor = personas.editor
    for _ in range(instance.settings.sign_in_max_failures):
        assert token_answer(client, editor, otp="12345").status_code == 401
    locked = token_answer(client, editor, otp="123456")
    assert locked.status_code == 429 and "Retry-After" in locked.headers


def test_turning_it_off_needs_a_code_from_the_app_or_a_recovery_code(client, personas, headers, editor_with_totp):
    _secret, codes = editor_with_totp
    assert client.delete("/api/me/totp", json={}, headers=headers["editor"]).status_code == 422
    assert client.delete("/api/me/totp", json={"code": "abc"}, headers=headers["editor"]).status_code == 422
    assert client.delete("/api/me/totp", json={"code": 5, "x": 1}, headers=headers["editor"]).status_code == 400
    assert client.get("/api/me", headers=headers["editor"]).get_json()["totp"] is True  # nothing changed
    assert client.delete("/api/me/totp", json={"code": codes[1]}, headers=headers["editor"]).status_code == 204
    assert client.get("/api/me", headers=headers["editor"]).get_json()["totp"] is False
    assert token_answer(client, personas.editor).status_code == 201
    assert client.delete("/api/me/totp", json={"code": codes[2]}, headers=headers["editor"]).status_code == 409


def test_setting_up_twice_is_a_conflict_and_bad_input_is_refused(client, personas, headers, editor_with_totp):
    assert client.post("/api/me/totp", headers=headers["editor"]).status_code == 409
    assert client.post("/api/me/totp/confirm", json={"code": "123456"}, headers=headers["viewer"]).status_code == 422
    assert client.post("/api/me/totp/confirm", data="x", headers=headers["viewer"]).status_code == 400
    assert client.post("/api/me/totp").status_code == 401


def test_an_admin_resets_a_users_two_factor(client, personas, headers, editor_with_totp):
    editor = personas.editor
    for who in ("editor", "viewer"):
        assert client.post(f"/api/users/{editor.id}/totp/reset", headers=headers[who]).status_code == 403
    assert client.post(f"/api/users/{editor.id}/totp/reset").status_code == 401
    assert client.post("/api/users/999999/totp/reset", headers=headers["admin"]).status_code == 404
    answer = client.post(f"/api/users/{editor.id}/totp/reset", headers=headers["admin"])
    assert answer.status_code == 200 and answer.get_json() == {"id": editor.id, "email": editor.email, "totp": False}
    assert token_answer(client, editor).status_code == 201  # the password alone works again
    events = list(list_events(action="totp.reset", target=editor.email))
    assert [(e.actor, e.details) for e in events] == [(personas.admin.email, '{"was_on": true}')]


def test_the_users_listing_shows_two_factor_and_lock_outs(client, personas, headers, editor_with_totp):
    for _ in range(5):
        client.post("/api/auth/token", json={"email": personas.viewer.email, "password": "wrong-password-x"})
    items = {u["email"]: u for u in client.get("/api/users", headers=headers["admin"]).get_json()["items"]}
    assert items[personas.editor.email]["totp"] is True and items[personas.admin.email]["totp"] is False
    assert items[personas.viewer.email]["locked"] is True and items[personas.editor.email]["locked"] is False
