"""``/admin/settings``: admins change the settings that need no restart; the running app sees them at once."""

from __future__ import annotations

import tomllib

import pytest

from appliance.audit import list_events
from tests.conftest import post_form


def save(client, **values):
    return post_form(client, "/admin/settings", values)


@pytest.mark.parametrize("who", ["editor", "viewer"])
def test_only_admins_may_open_the_settings(signed_in, who):
    assert signed_in(who).get("/admin/settings").status_code == 403


def test_the_page_offers_only_settings_that_need_no_restart(signed_in):
    page = signed_in("admin").get("/admin/settings").get_data(as_text=True)
    assert 'name="backup_keep_daily"' in page and 'name="smtp_host"' in page
    assert 'name="port"' not in page and "<code>port</code>" in page  # listed read-only
    assert 'name="smtp_password" type="password"' in page


@pytest.fixture
def root_level():
    import logging

    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def test_a_valid_change_is_written_audited_and_seen_by_the_running_app(signed_in, instance, app, root_level):
    import logging

    admin = signed_in("admin")
    answer = save(admin, backup_keep_daily="3", log_level="DEBUG", smtp_password="s3cret")
    assert answer.status_code == 302
    written = tomllib.loads(instance.paths.settings_file.read_text())
    assert (
        written["backup_keep_daily"] == 3 and written["log_level"] == "DEBUG" and written["smtp_password"] == "s3cret"
    )
    assert app.extensions["appliance.instance"].settings.backup_keep_daily == 3
    assert logging.getLogger().level == logging.DEBUG
    event = next(iter(list_events(action="settings.changed")))
    assert "s3cret" not in event.details and "smtp_password" in event.details
    # An empty password field keeps the password.
    save(admin, smtp_host="mail.example.com", smtp_password="")
    assert tomllib.loads(instance.paths.settings_file.read_text())["smtp_password"] == "s3cret"


def test_bad_values_are_shown_beside_their_fields_and_nothing_is_written(signed_in, instance):
    before = instance.paths.settings_file.read_text()
    answer = save(signed_in("admin"), backup_keep_daily="-1", smtp_port="many", log_level="LOUD")
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert page.count("invalid-feedback") >= 3 and 'value="many"' in page
    assert instance.paths.settings_file.read_text() == before


def test_a_change_made_by_another_process_reaches_this_worker(signed_in, instance, app):
    import os

    from appliance.config.settings import write_settings
    from appliance.server.live_settings import refresh_runtime_settings

    write_settings(instance.paths.settings_file, {"job_stuck_minutes": 7})
    os.utime(instance.paths.settings_file, (1, 1))  # a modification time this worker has not seen
    assert refresh_runtime_settings(app.extensions["appliance.instance"], force=True)
    assert app.extensions["appliance.instance"].settings.job_stuck_minutes == 7


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("alert_recipients", "ops@example.com, not-an-address", "not-an-address"),
        ("smtp_sender", "nobody", "email address"),
        ("smtp_host", "smtp example com", "host name"),
        ("backup_offsite_dir", "relative/folder", "absolute"),
        ("audit_retention_days", "99999", "36500"),
        ("smtp_timeout_seconds", "nan", "finite"),
        ("smtp_timeout_seconds", "inf", "finite"),
        ("smtp_port", "\uff18\uff10\uff18\uff10", "not a whole number"),  # full-width digits: ASCII only
        ("backup_keep_daily", "\u0663", "not a whole number"),  # an Arabic-Indic 3
    ],
)
def test_values_of_the_right_type_but_unusable_are_refused_saying_why(signed_in, instance, field, value, says):
    before = instance.paths.settings_file.read_text()
    answer = save(signed_in("admin"), **{field: value})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    feedback = page.split(f'id="s-{field}"', 1)[1].split("form-text", 1)[0]
    assert "invalid-feedback" in feedback and says in feedback
    assert instance.paths.settings_file.read_text() == before


def test_good_values_for_the_checked_settings_are_saved(signed_in, instance, tmp_path):
    answer = save(
        signed_in("admin"),
        alert_recipients="ops@example.com, boss@example.org",
        smtp_host="smtp.example.com",
        smtp_sender="appliance@example.com",
        backup_offsite_dir=str(tmp_path / "nas"),
        audit_retention_days="36500",
    )
    assert answer.status_code == 302
    saved = tomllib.loads(instance.paths.settings_file.read_text())
    assert saved["alert_recipients"] == "ops@example.com, boss@example.org" and saved["audit_retention_days"] == 36500


def test_a_forged_change_of_a_setting_fixed_by_the_environment_is_an_error(signed_in, instance, monkeypatch):
    monkeypatch.setenv("APPLIANCE_SMTP_HOST", "mail.example.com")
    admin = signed_in("admin")
    before = instance.paths.settings_file.read_text()
    answer = save(admin, smtp_host="evil.example.com")
    assert answer.status_code == 422
    assert "APPLIANCE_SMTP_HOST" in answer.get_data(as_text=True)
    assert instance.paths.settings_file.read_text() == before
    # The read-only box sends the environment's value back: that is no change, and no error.
    assert save(admin, smtp_host="mail.example.com").status_code == 302


def test_the_restart_list_shows_what_the_running_server_uses(signed_in, instance):
    instance.paths.server_json.parent.mkdir(parents=True, exist_ok=True)
    instance.paths.server_json.write_text('{"pid": 1, "port": 54321, "host": "127.0.0.1", "workers": 2}')
    page = signed_in("admin").get("/admin/settings").get_data(as_text=True)
    cell = page.split('id="running-port">', 1)[1].split("</td>", 1)[0]
    assert "54321" in cell and "differs" in cell
