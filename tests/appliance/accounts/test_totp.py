"""TOTP two-factor in the core: set-up, codes accepted once, recovery codes, throttling, the policy."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest

from appliance.accounts import second_factor, totp
from appliance.accounts.sign_in import check_password, sign_in
from appliance.accounts.throttle import ThrottleRules
from appliance.accounts.two_factor_policy import (
    must_use_two_factor,
    needs_two_factor_setup,
    pin_policy_of_existing_home,
    serialize_users_for_admins,
)
from appliance.accounts.users import get_user
from appliance.audit import list_events
from appliance.config.settings import load_settings
from appliance.errors import Conflict, NotAuthenticated, OtpRequired, Throttled, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import RecoveryCode, UserTotp

KEY = b"0123456789abcdef" * 4
RULES = ThrottleRules(account_failures=3, address_failures=50)
START = dt.datetime(2026, 3, 2, 9, 0, 5, tzinfo=dt.UTC)


def code_at(secret: str, moment: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(moment)


@pytest.fixture
def db(instance):
    with database.connection_context():
        yield


def turn_on(user_id: int, now: dt.datetime = START) -> tuple[str, list[str]]:
    setup = totp.start_setup(user_id, KEY, now=now)
    codes = totp.confirm_setup(user_id, code_at(setup.secret, now), KEY, now=now)
    return setup.secret, codes


def test_setup_gives_a_secret_and_uri_and_confirming_turns_it_on_with_ten_codes(db, personas):
    user_id = personas.editor.id
    setup = totp.start_setup(user_id, KEY, now=START)
    assert setup.otpauth_uri.startswith("otpauth://totp/Office%20Appliance:bob%40example.com?secret=")
    assert setup.secret in setup.otpauth_uri
    assert not totp.totp_enabled(user_id)  # not before the first code
    stored = UserTotp.get(UserTotp.user == user_id).secret
    assert setup.secret not in stored and stored.startswith("v1.")  # encrypted at rest
    with pytest.raises(ValidationFailed) as wrong:
        totp.confirm_setup(user_id, "000000" if code_at(setup.secret, START) != "000000" else "111111", KEY, now=START)
    assert "code" in wrong.value.fields
    codes = totp.confirm_setup(user_id, code_at(setup.secret, START), KEY, now=START)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert totp.totp_enabled(user_id) and totp.recovery_codes_left(user_id) == 10
    digests = {row.digest for row in RecoveryCode.select()}
    assert not any(code in digests or code.replace("-", "") in digests for code in codes)  # only digests stored
    assert totp.pending_setup(user_id, KEY) is None  # the secret is never shown again
    with pytest.raises(Conflict):
        totp.start_setup(user_id, KEY)
    assert [e.action for e in list_events(target=personas.editor.email) if e.action.startswith("totp.")][:2] == [
        "totp.enabled",
        "totp.setup_started",
    ]


def test_a_secret_sealed_under_another_key_cannot_be_read(db, personas):
    totp.start_setup(personas.editor.id, KEY, now=START)
    assert totp.pending_setup(personas.editor.id, b"another key" * 4) is None


def test_the_password_alone_is_not_a_sign_in_and_the_code_completes_it(db, personas):
    editor = personas.editor
    secret, _codes = turn_on(editor.id)
    user, needs = check_password(editor.email, editor.password, address="10.0.0.1", rules=RULES, now=START)
    assert needs and user.id == editor.id
    assert get_user(editor.id).last_sign_in_at is None  # the password step is not a sign-in
    with pytest.raises(OtpRequired) as missing:
        sign_in(editor.email, editor.password, address="10.0.0.1", rules=RULES, now=START, secret_key=KEY)
    assert missing.value.status == 401 and missing.value.code == "otp_required"
    later = START + dt.timedelta(seconds=30)
    user = second_factor.verify_second_factor(
        editor.id, code_at(secret, later), KEY, address="10.0.0.1", rules=RULES, now=later
    )
    assert user.last_sign_in_at is not None
    success = next(iter(list_events(action="sign_in.success", target=editor.email)))
    assert '"second_factor": "totp"' in success.details


def test_a_code_cannot_be_replayed_within_its_window(db, personas):
    editor = personas.editor
    secret, _ = turn_on(editor.id)
    later = START + dt.timedelta(seconds=60)
    code = code_at(secret, later)
    second_factor.verify_second_factor(editor.id, code, KEY, address="10.0.0.1", rules=RULES, now=later)
    with pytest.raises(NotAuthenticated):
        second_factor.verify_second_factor(
            editor.id, code, KEY, address="10.0.0.1", rules=RULES, now=later + dt.timedelta(seconds=5)
        )
    # The code used to confirm the set-up is spent too, and so is any older step.
    with pytest.raises(NotAuthenticated):
        second_factor.verify_second_factor(
            editor.id, code_at(secret, START), KEY, address="10.0.0.1", rules=RULES, now=START
        )


def test_a_code_of_the_next_or_previous_step_is_accepted_but_not_two_steps_away(db, personas):
    editor = personas.editor
    secret, _ = turn_on(editor.id)
    now = START + dt.timedelta(minutes=5)
    with pytest.raises(NotAuthenticated):
        second_factor.verify_second_factor(
            editor.id, code_at(secret, now - dt.timedelta(seconds=65)), KEY, address="a", rules=RULES, now=now
        )
    second_factor.verify_second_factor(
        editor.id, code_at(secret, now - dt.timedelta(seconds=30)), KEY, address="a", rules=RULES, now=now
    )


def test_a_recovery_code_works_once(db, personas):
    editor = personas.editor
    _secret, codes = turn_on(editor.id)
    typed = codes[3].upper().replace("-", " ")  # any case, spaces instead of the dash
    second_factor.verify_second_factor(editor.id, typed, KEY, address="a", rules=RULES, now=START)
    assert totp.recovery_codes_left(editor.id) == 9
    with pytest.raises(NotAuthenticated):
        second_factor.verify_second_factor(editor.id, codes[3], KEY, address="a", rules=RULES, now=START)
    assert next(iter(list_events(action="recovery_code.used", target=editor.email))).details == '{"left": 9}'


def test_wrong_codes_count_towards_the_lock_out_even_behind_a_right_password(db, personas):
    editor = personas.editor
    secret, _ = turn_on(editor.id)
    for _ in range(RULES.account_failures):
        # A right password each time must not wipe the failures of the codes.
        check_password(editor.email, editor.password, address="10.0.0.9", rules=RULES, now=START)
        with pytest.raises(NotAuthenticated):
            sign_in(
                editor.email, editor.password, address="10.0.0.9", rules=RULES, now=START, otp="12345x", secret_key=KEY
            )
    with pytest.raises(Throttled):
        second_factor.verify_second_factor(
            editor.id,
            code_at(secret, START + dt.timedelta(seconds=30)),
            KEY,
            address="10.0.0.9",
            rules=RULES,
            now=START + dt.timedelta(seconds=30),
        )
    failures = list(list_events(action="sign_in.otp_failed", target=editor.email))
    assert len(failures) >= RULES.account_failures
    assert list(list_events(action="sign_in.locked", target=editor.email))


def test_an_empty_code_is_refused_without_counting(db, personas):
    editor = personas.editor
    turn_on(editor.id)
    for _ in range(RULES.account_failures + 2):
        with pytest.raises(ValidationFailed):
            second_factor.verify_second_factor(editor.id, "  ", KEY, address="a", rules=RULES, now=START)
    assert not list(list_events(action="sign_in.otp_failed", target=editor.email))


def test_turning_it_off_needs_a_current_code(db, personas):
    editor = personas.editor
    secret, _ = turn_on(editor.id)
    with pytest.raises(ValidationFailed):
        second_factor.disable_totp(editor.id, "", KEY, address="a", rules=RULES, now=START)
    with pytest.raises(ValidationFailed):
        second_factor.disable_totp(editor.id, code_at(secret, START), KEY, address="a", rules=RULES, now=START)
    assert totp.totp_enabled(editor.id)  # the confirming code was spent: refused
    later = START + dt.timedelta(seconds=90)
    second_factor.disable_totp(editor.id, code_at(secret, later), KEY, address="a", rules=RULES, now=later)
    assert not totp.totp_enabled(editor.id) and totp.recovery_codes_left(editor.id) == 0
    assert list(list_events(action="totp.disabled", target=editor.email))
    _user, needs = check_password(editor.email, editor.password, address="a", rules=RULES)
    assert not needs


def test_an_admin_reset_turns_it_off_and_is_audited(db, personas):
    editor = personas.editor
    turn_on(editor.id)
    totp.reset_totp(editor.id, actor=get_user(personas.admin.id), address="10.1.1.1")
    assert not totp.totp_enabled(editor.id)
    event = next(iter(list_events(action="totp.reset", target=editor.email)))
    assert event.actor == personas.admin.email and event.details == '{"was_on": true}'


def test_the_policy_covers_admins_or_everyone(db, personas):
    admin, editor = get_user(personas.admin.id), get_user(personas.editor.id)
    assert must_use_two_factor(admin, "admins") and not must_use_two_factor(editor, "admins")
    assert must_use_two_factor(editor, "everyone") and not must_use_two_factor(admin, "none")
    assert needs_two_factor_setup(admin, "admins")
    turn_on(admin.id)
    assert not needs_two_factor_setup(admin, "admins")
    listing = {u["email"]: u for u in serialize_users_for_admins([admin, editor])}
    assert listing[admin.email]["totp"] is True and listing[editor.email]["totp"] is False
    assert listing[editor.email]["locked"] is False


def test_migration_0011_notes_a_home_that_had_users_and_the_note_pins_none_once(db, instance, personas):
    import importlib

    from playhouse.migrate import SchemaMigrator

    migration = importlib.import_module("appliance.storage.migrations.0011_two_factor")
    real_db = database.obj
    migration.down(SchemaMigrator.from_database(real_db), real_db)
    migration.up(SchemaMigrator.from_database(real_db), real_db)  # as on a home that already has users
    instance.paths.settings_file.write_text("")  # a home whose file does not name the setting
    settings = load_settings(instance.paths.settings_file)
    assert settings.require_two_factor == "admins"  # the registry's default ...
    assert pin_policy_of_existing_home(instance.paths.settings_file, settings)
    assert settings.require_two_factor == "none"  # ... but this home keeps signing in as before
    assert load_settings(instance.paths.settings_file).require_two_factor == "none"
    assert not pin_policy_of_existing_home(instance.paths.settings_file, settings)  # the note is gone


def test_migration_0011_on_a_new_home_leaves_the_default(db, instance):
    import importlib

    from playhouse.migrate import SchemaMigrator

    migration = importlib.import_module("appliance.storage.migrations.0011_two_factor")
    real_db = database.obj
    migration.down(SchemaMigrator.from_database(real_db), real_db)
    migration.up(SchemaMigrator.from_database(real_db), real_db)  # no users yet
    instance.paths.settings_file.write_text("")
    settings = load_settings(instance.paths.settings_file)
    assert not pin_policy_of_existing_home(instance.paths.settings_file, settings)
    assert settings.require_two_factor == "admins"
