"""Mail of one-time account links: invitations (sent while the admin waits) and password resets (sent after
the answer, so that how long the answer takes tells nothing about whether the address has an account).

Links start with the ``public_url`` setting, else with the address the request came to (the web layer
passes it). Without SMTP nothing is sent: the admin is shown the link to pass on instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from appliance.clock import shown_time
from appliance.config.settings import Settings
from appliance.errors import MailFailed
from appliance.jobs.mail import mail_configured, send_mail

log = logging.getLogger("appliance.mail")

INVITE_PATH = "/invite/"
RESET_PATH = "/reset/"


def link_url(settings: Settings, request_root: str, path: str, secret: str) -> str:
    """The full address of a link: ``public_url`` (else ``request_root``) + ``path`` + ``secret``."""
    base = (settings.public_url or request_root).rstrip("/")
    return f"{base}{path}{secret}"


def mail_ready(settings: Settings) -> bool:
    """Whether links go by mail (SMTP is set up) rather than to the admin to pass on."""
    return mail_configured(settings)


def send_invitation(
    settings: Settings, email: str, name: str, url: str, expires_at: dt.datetime, inviter: str
) -> str | None:
    """Mail an invitation now; returns ``None`` when it went, else why not (the admin passes the link on)."""
    body = (
        f"Hello {name},\n\n"
        f"{inviter} invited you to the office's Office Appliance. Open this link to choose your password "
        f"and sign in:\n\n{url}\n\n"
        f"The link works once, until {shown_time(expires_at)}. If you did not expect this, ignore this mail.\n"
    )
    try:
        send_mail(settings, [email], "You are invited to Office Appliance", body)
    except MailFailed as exc:
        log.warning("invitation mail to %s failed: %s", email, exc.message)
        return exc.message
    return None


def _reset_body(name: str, url: str, expires_at: dt.datetime) -> str:
    return (
        f"Hello {name},\n\n"
        "Someone (we hope you) asked for a new password for your Office Appliance account. Open this link "
        f"to choose one:\n\n{url}\n\n"
        f"The link works once, until {shown_time(expires_at)}. Choosing a new password signs you out "
        "everywhere else. If you did not ask for it, ignore this mail: your password stays as it is.\n"
    )


def send_reset(settings: Settings, email: str, name: str, url: str, expires_at: dt.datetime) -> str | None:
    """Mail a reset link now (an admin's); returns ``None`` when it went, else why not."""
    try:
        send_mail(settings, [email], "Choose a new Office Appliance password", _reset_body(name, url, expires_at))
    except MailFailed as exc:
        log.warning("password reset mail to %s failed: %s", email, exc.message)
        return exc.message
    return None


def send_reset_later(settings: Settings, email: str, name: str, url: str, expires_at: dt.datetime) -> threading.Thread:
    """Mail a reset link from a background thread (a "forgot password" request answers first); returns the thread.

    A failure is logged; the person may ask again.
    """
    thread = threading.Thread(
        target=send_reset, args=(settings, email, name, url, expires_at), name="reset-mail", daemon=True
    )
    thread.start()
    return thread
