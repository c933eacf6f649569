"""Outgoing mail through the SMTP server of the settings (host, port, STARTTLS/TLS, user, password, sender)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from appliance.config.settings import Settings
from appliance.errors import MailFailed


def mail_configured(settings: Settings) -> bool:
    """Whether SMTP is set up enough to send: a host and a sender."""
    return bool(settings.smtp_host and settings.smtp_sender)


def send_mail(settings: Settings, recipients: list[str], subject: str, body: str) -> None:
    """Send a plain-text message to ``recipients``.

    ``smtp_security`` is ``starttls`` (upgrade a plain connection), ``tls``
    (implicit TLS) or ``none``; certificates are checked against the system's
    trust store. Raises :class:`MailFailed` with a reason that never contains
    the password; raises it too when SMTP is not set up or nobody is to receive.
    """
    if not mail_configured(settings):
        raise MailFailed("SMTP is not set up (smtp_host and smtp_sender)")
    if not recipients:
        raise MailFailed("there is nobody to send the message to")
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="office-appliance")
    message.set_content(body)
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.smtp_timeout_seconds
    try:
        if settings.smtp_security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                client.login(settings.smtp_user, settings.smtp_password)
            client.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise MailFailed(f"the SMTP server {host}:{port} refused the user name or password") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailFailed(f"the SMTP server {host}:{port} does not support that: {exc}") from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise MailFailed(f"cannot send mail through {host}:{port}: {exc}") from None
