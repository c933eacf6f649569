"""The automation rules' loop as a service of the server's parent process, never a request thread.

The automations area decides and does; this module (in the jobs area, which
owns mail and what runs beside the scheduler) gives it the live settings and
the mail sender (:func:`appliance.jobs.mail.send_mail`), and calls
:func:`appliance.automations.engine.poll_once` every ``rules_poll_seconds``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from appliance.automations.engine import poll_once
from appliance.config.home import Instance
from appliance.jobs.definitions import current_settings
from appliance.jobs.mail import send_mail
from appliance.storage.db import database

log = logging.getLogger("appliance.rules")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RuleRunner:
    """Runs the rules; ``start()``/``stop()`` for the server runner, ``step()`` for tests."""

    def __init__(self, instance: Instance, *, now: Callable[[], dt.datetime] = _utcnow):
        self.instance = instance
        self.now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _mail(self, recipients: list[str], subject: str, body: str) -> None:
        send_mail(current_settings(self.instance), recipients, subject, body)

    def step(self) -> list[str]:
        """One pass: new record events, then the time rules that are due. Returns what happened."""
        settings = current_settings(self.instance)
        return poll_once(settings, self._mail, now=self.now())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with database.connection_context():
                    for line in self.step():
                        log.info(line)
            except Exception:
                log.exception("automation rules: a step failed; retrying at the next one")
            self._stop.wait(float(current_settings(self.instance).rules_poll_seconds))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="automation-rules", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the step in progress (each action is bounded: mail and webhook calls time out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
