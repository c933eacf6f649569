"""The settings registry: every setting declared once, documented, parsed strictly."""

from __future__ import annotations

import tomllib

import pytest

from appliance.config.registry import registry
from appliance.config.settings import load_settings, render_default_file, write_settings
from appliance.errors import SettingsError


def test_every_setting_is_documented_and_its_default_passes_its_own_check():
    for name, setting in registry().items():
        assert setting.help.strip(), f"setting {name} has no help text"
        assert isinstance(setting.default, setting.type), name
        if setting.check is not None:
            assert setting.check(setting.default) is None, name


def test_the_default_file_mentions_every_setting_and_parses_once_uncommented(tmp_path):
    text = render_default_file()
    uncommented = "\n".join(line[2:] for line in text.splitlines() if line.startswith("# ") and " = " in line)
    data = tomllib.loads(uncommented)
    assert set(data) == set(registry())
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    assert load_settings(path, {}).port == registry()["port"].default


def test_file_values_are_read_and_environment_overrides_them(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("port = 9000\n[server]\nworkers = 3\n")
    settings = load_settings(path, {"APPLIANCE_PORT": "9100"})
    assert settings.port == 9100
    assert settings.workers == 3
    assert settings.sources["port"] == "environment APPLIANCE_PORT"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"APPLIANCE_PORT": "eighty"},
            "setting 'port' from environment APPLIANCE_PORT: 'eighty' is not a whole number; expected a whole number from 1 to 65535",
        ),
        ({"APPLIANCE_PORT": "70000"}, "'70000' is out of range; expected a whole number from 1 to 65535"),
        ({"APPLIANCE_MIGRATE_ON_START": "maybe"}, "'maybe' is not a boolean; expected true or false"),
        ({"APPLIANCE_LOG_LEVEL": "LOUD"}, "expected one of DEBUG, INFO, WARNING, ERROR"),
        ({"APPLIANCE_PROT": "80"}, "unknown setting 'prot' (did you mean APPLIANCE_PORT?)"),
    ],
)
def test_a_bad_environment_value_is_refused_naming_setting_value_and_what_is_accepted(environ, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings(None, environ)
    assert expected in caught.value.message


def test_a_toml_value_of_the_wrong_type_is_refused_rather_than_coerced(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text('port = "8080"\n')
    with pytest.raises(SettingsError, match="'8080' is not a whole number"):
        load_settings(path, {})


def test_a_boolean_is_not_accepted_as_a_number(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("workers = true\n")
    with pytest.raises(SettingsError, match="workers"):
        load_settings(path, {})


def test_an_unknown_key_in_the_file_is_refused_with_a_suggestion(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("prot = 80\n")
    with pytest.raises(SettingsError, match="did you mean 'port'"):
        load_settings(path, {})


def test_a_broken_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("port = = 1\n")
    with pytest.raises(SettingsError, match="is not valid TOML"):
        load_settings(path, {})


def test_write_settings_validates_and_leaves_the_file_alone_on_a_bad_value(tmp_path):
    path = tmp_path / "appliance.toml"
    write_settings(path, {"port": 9001})
    assert load_settings(path, {}).port == 9001
    before = path.read_text()
    with pytest.raises(SettingsError):
        write_settings(path, {"port": 9002, "workers": -1})
    assert path.read_text() == before


def test_secret_settings_are_masked_in_the_public_view():
    settings = load_settings(None, {"DATABASE_URL": "postgresql://u:hunter2@db/x"})
    assert settings.database_url.endswith("@db/x")
    assert settings.public()["database_url"] == "***"


@pytest.mark.parametrize("raw", ["8_080", "+\uff18\uff10", "0x50", "80.0", ""])
def test_an_environment_integer_must_be_plain_ascii_digits(raw):
    with pytest.raises(SettingsError, match="is not a whole number"):
        load_settings(None, {"APPLIANCE_PORT": raw})


@pytest.mark.parametrize("raw", ["inf", "nan", "1e999"])
def test_a_number_must_be_finite(raw):
    with pytest.raises(SettingsError, match="shutdown_grace_seconds"):
        load_settings(None, {"APPLIANCE_SHUTDOWN_GRACE_SECONDS": raw})


def test_an_unknown_section_and_a_setting_given_twice_are_refused(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("[servre]\nport = 80\n")
    with pytest.raises(SettingsError, match=r"unknown section \[servre\]"):
        load_settings(path, {})
    path.write_text("port = 80\n[server]\nport = 81\n")
    with pytest.raises(SettingsError, match="'port' is given twice"):
        load_settings(path, {})


def test_the_settings_file_stays_private_when_rewritten(tmp_path):
    import stat

    path = tmp_path / "appliance.toml"
    write_settings(path, {"port": 9001})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("text", ["\uff18\uff10\uff18\uff10", "\u0668\u0660\u0668\u0660", "8_080", "²", "0x50"])
def test_the_form_parser_takes_only_ascii_digits(text):
    from appliance.config.values import parse_text

    with pytest.raises(SettingsError) as caught:
        parse_text(registry()["smtp_port"], text)
    assert caught.value.extra["why"] == "not a whole number"


def test_the_form_parser_reads_each_type_and_says_why_it_refuses():
    from appliance.config.values import form_message, parse_text

    settings = registry()
    assert parse_text(settings["smtp_port"], " 2525 ") == 2525
    assert parse_text(settings["smtp_timeout_seconds"], "2.5") == 2.5
    assert parse_text(settings["migrate_on_start"], "Off") is False
    assert parse_text(settings["smtp_host"], " mail.example.com ") == "mail.example.com"
    assert parse_text(settings["smtp_password"], " spaced ") == " spaced "  # a secret is taken as typed
    for setting, text, why in (
        (settings["migrate_on_start"], "maybe", "not a boolean"),
        (settings["smtp_timeout_seconds"], "nan", "not a finite number"),
        (settings["smtp_timeout_seconds"], "1e999", "not a finite number"),
        (settings["smtp_port"], "99999", "out of range"),
        (settings["smtp_security"], "starttls ", None),
        (settings["smtp_security"], "ssl", "not one of the choices"),
    ):
        if why is None:
            assert parse_text(setting, text) == text.strip()
            continue
        with pytest.raises(SettingsError) as caught:
            parse_text(setting, text)
        assert form_message(setting, caught.value) == f"Enter {setting.describe_accepted()} ({why})."


def test_a_setting_is_declared_once():
    from appliance.config.registry import DECLARED, register

    assert len({s.name for s in DECLARED}) == len(DECLARED) == len(registry())
    with pytest.raises(ValueError, match="declared twice"):
        register(registry()["port"])
