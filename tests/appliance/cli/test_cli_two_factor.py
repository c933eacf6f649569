"""``appliance users reset-2fa EMAIL``: an admin at the machine turns a user's two-factor off."""

from __future__ import annotations

import json

import pyotp

from appliance.accounts import totp
from appliance.audit import list_events
from appliance.storage.db import database
from tests.conftest import run_cli

KEY = b"k" * 32


def test_users_reset_2fa_turns_two_factor_off_and_is_audited(instance, personas):
    editor = personas.editor
    with database.connection_context():
        setup = totp.start_setup(editor.id, KEY)
        totp.confirm_setup(editor.id, pyotp.TOTP(setup.secret).now(), KEY)
        assert totp.totp_enabled(editor.id)

    answer = run_cli("users", "reset-2fa", editor.email.upper(), "--json", home=instance.home)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["totp"] is False
    with database.connection_context():
        assert not totp.totp_enabled(editor.id) and totp.recovery_codes_left(editor.id) == 0
        events = list(list_events(action="totp.reset", target=editor.email))
    assert [(e.actor, e.details) for e in events] == [("cli", '{"was_on": true}')]
    plain = run_cli("users", "reset-2fa", editor.email, home=instance.home)
    assert plain.returncode == 0 and f"two-factor sign-in of {editor.email} is off" in plain.stdout
    unknown = run_cli("users", "reset-2fa", "nobody@example.com", home=instance.home)
    assert unknown.returncode == 1 and "nobody@example.com" in unknown.stderr
