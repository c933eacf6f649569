"""The cleanup job mails the admins one alert listing API tokens that expire within 14 days."""

from __future__ import annotations

import datetime as dt

from appliance.accounts.tokens import create_token
from appliance.config.settings import write_settings
from appliance.jobs.runner import run_job
from appliance.storage.db import database
from appliance.storage.models import Alert
from tests.fakes import FakeClock
from tests.mailbox import mailbox  # noqa: F401 - the fixture


def test_one_alert_lists_the_tokens_about_to_expire_and_is_not_repeated(instance, personas, mailbox):  # noqa: F811
    write_settings(instance.home / "appliance.toml", mailbox.settings())
    clock = FakeClock(dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC))
    with database.connection_context():
        create_token(personas.editor.id, "invoice script", expires_days=10, actor="test", now=clock.now())
        create_token(personas.viewer.id, "nightly export", expires_days=13, actor="test", now=clock.now())
        create_token(personas.editor.id, "far away", expires_days=90, actor="test", now=clock.now())
        first = run_job(instance, "cleanup", now=clock.now)
        assert first.outcome == "ok", first.message
        assert "2 API token(s) expire within 14 days" in first.message
        [message] = mailbox.wait_for(1)
        body = message.get_payload(decode=True).decode()
        assert "invoice script" in body and "bob@example.com" in body and "nightly export" in body
        assert "far away" not in body
        assert personas.admin.email in message["To"]

        clock.advance(days=1)
        second = run_job(instance, "cleanup", now=clock.now)
        assert "(already reported)" in second.message
        assert Alert.select().where(Alert.kind == "tokens_expiring").count() == 1
        assert len(mailbox.messages) == 1  # not mailed again for the same tokens

        create_token(personas.admin.id, "new one", expires_days=5, actor="test", now=clock.now())
        third = run_job(instance, "cleanup", now=clock.now)
        assert "3 API token(s)" in third.message and "(already reported)" not in third.message
        assert Alert.select().where(Alert.kind == "tokens_expiring").count() == 2
