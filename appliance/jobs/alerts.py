"""Alerts: a failed job, a run that did not happen, a backup that failed verification, an
unreachable offsite folder. Each is stored (the status API and the admin pages show them) and
mailed to the active admins (and ``alert_recipients``) when SMTP is set up.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from appliance.actors import ADMIN_ROLE
from appliance.clock import as_stored, iso
from appliance.config.settings import Settings
from appliance.errors import MailFailed
from appliance.jobs.mail import mail_configured, send_mail
from appliance.storage.db import database
from appliance.storage.models import Alert, User

log = logging.getLogger("appliance.alerts")


def alert_recipients(settings: Settings) -> list[str]:
    """Emails of the active admins, then the extra ``alert_recipients`` of the settings, without repeats."""
    admins = User.select(User.email).where((User.role == ADMIN_ROLE) & User.active).order_by(User.id)
    found: list[str] = [str(user.email) for user in admins]
    found.extend(part.strip() for part in settings.alert_recipients.split(",") if part.strip())
    seen: set[str] = set()
    unique = []
    for address in found:
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append(address)
    return unique


def raise_alert(
    settings: Settings,
    kind: str,
    subject: str,
    message: str,
    *,
    job: str | None = None,
    key: str | None = None,
    now: dt.datetime | None = None,
) -> Alert:
    """Store an alert and mail it; returns it.

    ``key`` makes it happen once: a second alert with the same key returns
    the first (a missed run is reported once, not at every check); ``is_new``
    on the answer tells which. A mail
    failure is stored on the alert (``mail_error``) and logged, never raised.
    """
    if key:
        existing = Alert.get_or_none(Alert.key == key)
        if existing is not None:
            existing.is_new = False
            return existing
    with database.atomic():
        alert = Alert.create(at=as_stored(now), kind=kind, subject=subject[:200], message=message, job=job, key=key)
    log.error("alert: %s", subject, extra={"alert_kind": kind, "job": job})
    if not mail_configured(settings):
        alert.mail_error = "SMTP is not set up"
    else:
        try:
            recipients = alert_recipients(settings)
            send_mail(settings, recipients, f"[Office Appliance] {subject}", f"{message}\n\nAt {iso(alert.at)}.\n")
            alert.emailed = True
        except MailFailed as exc:
            alert.mail_error = exc.message
            log.warning("alert mail not sent: %s", exc.message)
    with database.atomic():
        alert.save()
    alert.is_new = True
    return alert


def list_alerts(*, limit: int = 20, open_only: bool = False) -> list[Alert]:
    """The newest alerts first; ``open_only`` leaves out those an admin acknowledged."""
    query = Alert.select().order_by(Alert.at.desc(), Alert.id.desc())
    if open_only:
        query = query.where(Alert.acknowledged_at.is_null())
    return list(query.limit(limit))


def acknowledge_alerts(now: dt.datetime | None = None) -> int:
    """Mark every open alert as seen; returns how many."""
    with database.atomic():
        return int(Alert.update(acknowledged_at=as_stored(now)).where(Alert.acknowledged_at.is_null()).execute())


def serialize_alert(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "at": iso(alert.at),
        "kind": alert.kind,
        "subject": alert.subject,
        "message": alert.message,
        "job": alert.job,
        "emailed": alert.emailed,
        "mail_error": alert.mail_error,
        "acknowledged": alert.acknowledged_at is not None,
    }
