"""Mail through a real SMTP server, and alerts mailed to the admins."""

from __future__ import annotations

import pytest

from appliance.config.settings import load_settings, write_settings
from appliance.errors import MailFailed
from appliance.jobs.alerts import raise_alert
from appliance.jobs.mail import send_mail
from appliance.storage.db import database
from appliance.storage.models import Alert
from tests.mailbox import certificate, free_port, mailbox, tls_mailbox  # noqa: F401 - fixtures


def settings_with(home, **values):
    write_settings(home / "appliance.toml", values)
    return load_settings(home / "appliance.toml")


def test_mail_reaches_a_real_smtp_server_with_sign_in(home, mailbox):  # noqa: F811
    settings = settings_with(home, **mailbox.settings(smtp_user="mailer", smtp_password="s3cret"))
    send_mail(settings, ["alice@example.com"], "Hello", "The body.")
    [message] = mailbox.wait_for(1)
    assert message["Subject"] == "Hello"
    assert message["From"] == "appliance@example.com"
    assert message["To"] == "alice@example.com"
    assert message.get_payload().strip() == "The body."
    assert mailbox.logins == [("mailer", "s3cret")]


def test_a_wrong_smtp_password_is_a_clear_failure_that_does_not_show_the_password(home, mailbox):  # noqa: F811
    settings = settings_with(home, **mailbox.settings(smtp_user="mailer", smtp_password="wrong-one"))
    with pytest.raises(MailFailed, match="refused the user name or password") as caught:
        send_mail(settings, ["alice@example.com"], "Hello", "x")
    assert "wrong-one" not in caught.value.message
    assert mailbox.messages == []


def test_an_unreachable_smtp_server_is_a_clear_failure(home):
    settings = settings_with(
        home, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none", smtp_sender="a@example.com"
    )
    with pytest.raises(MailFailed, match="cannot send mail"):
        send_mail(settings, ["alice@example.com"], "Hello", "x")


def test_starttls_against_a_server_without_it_is_refused_rather_than_sent_in_clear(home, mailbox):  # noqa: F811
    settings = settings_with(home, **mailbox.settings(smtp_security="starttls"))
    with pytest.raises(MailFailed, match=r"STARTTLS|starttls|support"):
        send_mail(settings, ["alice@example.com"], "Hello", "x")
    assert mailbox.messages == []


def test_an_alert_is_stored_and_mailed_to_the_active_admins_once_per_key(instance, personas, mailbox):  # noqa: F811
    settings = settings_with(instance.home, **mailbox.settings(alert_recipients="ops@example.com"))
    with database.connection_context():
        first = raise_alert(settings, "job_failed", "Job backup failed", "disk full", job="backup", key="k1")
        again = raise_alert(settings, "job_failed", "Job backup failed", "disk full", job="backup", key="k1")
        assert again.id == first.id and again.is_new is False
        assert Alert.select().count() == 1
        assert Alert.get_by_id(first.id).emailed is True
    [message] = mailbox.wait_for(1)
    assert "Job backup failed" in message["Subject"]
    # The active admin and the extra address; not the editor, viewer or disabled user.
    assert sorted(a.strip() for a in message["To"].split(",")) == ["alice@example.com", "ops@example.com"]


def test_an_alert_without_smtp_is_still_stored_and_says_why_no_mail_went(instance):
    with database.connection_context():
        alert = raise_alert(instance.settings, "job_failed", "Job x failed", "boom")
        assert Alert.get_by_id(alert.id).mail_error == "SMTP is not set up"


def test_mail_goes_over_starttls_or_implicit_tls_with_a_checked_certificate(home, tls_mailbox):  # noqa: F811
    box, security = tls_mailbox
    settings = settings_with(home, **box.settings(smtp_security=security))
    send_mail(settings, ["alice@example.com"], "Over TLS", "secret body")
    [message] = box.wait_for(1)
    assert message["Subject"] == "Over TLS"
