"""One exception hierarchy for the whole appliance.

Services raise these; the web layer turns them into the error shape of API.md
in one place (``webapp/errors.py``), the CLI into a one-line reason.
"""

from __future__ import annotations

from typing import Any


class ApplianceError(Exception):
    """Base of every error the appliance raises on purpose.

    ``code`` is the stable machine-readable name, ``status`` the HTTP status
    that fits it, ``exit_status`` the status a command that fails with it exits
    with, ``fields`` maps field names to messages for field errors.
    """

    code = "error"
    status = 500
    exit_status = 1

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, **extra: object):
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})
        self.extra = extra

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The error shape of API.md: ``{"error": {"code", "message", "fields"?...}}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        body.update(self.extra)
        return {"error": body}


class BadRequest(ApplianceError):
    code = "bad_request"
    status = 400


class NotAuthenticated(ApplianceError):
    code = "not_authenticated"
    status = 401


class PermissionDenied(ApplianceError):
    code = "permission_denied"
    status = 403


class NotFound(ApplianceError):
    code = "not_found"
    status = 404


class Conflict(ApplianceError):
    code = "conflict"
    status = 409


class Busy(Conflict):
    code = "busy"


class TooLarge(ApplianceError):
    code = "too_large"
    status = 413


class ValidationFailed(ApplianceError):
    code = "validation_failed"
    status = 422

    def __init__(self, fields: dict[str, str], message: str | None = None, **extra: object):
        if message is None:
            count = len(fields)
            message = "1 field is invalid" if count == 1 else f"{count} fields are invalid"
        super().__init__(message, fields=fields, **extra)


class Throttled(ApplianceError):
    code = "throttled"
    status = 429


class ServiceUnavailable(ApplianceError):
    code = "unavailable"
    status = 503


class SettingsError(ApplianceError):
    """A setting has a value that cannot be used; start-up stops."""

    code = "bad_setting"
    status = 500


class HomeError(ApplianceError):
    """The instance home is missing, not initialised or not writable."""

    code = "bad_home"
    status = 500


class MigrationRequired(ApplianceError):
    """The database has pending migrations and must not be served as it is."""

    code = "migration_required"
    status = 503


class StartupRefused(ApplianceError):
    """The server will not start (port in use, home locked, ...)."""

    code = "startup_refused"
    status = 500


class PortInUse(StartupRefused):
    """The port to listen on is held by another program. It will not free itself, so ``appliance serve``
    exits with its own status (3) for it, which tells a supervisor (the console) not to retry."""

    code = "port_in_use"
    exit_status = 3


class RestoreFailed(ApplianceError):
    """A restore stopped before its commit point (disk full, a migration failed): nothing was changed."""

    code = "restore_failed"
    status = 500


class BackupFailed(ApplianceError):
    """A backup could not be written (disk full, unreadable database ...)."""

    code = "backup_failed"
    status = 500


class NotEnoughSpace(BackupFailed):
    """The disk has no room for a scratch copy (verification, restore): the archive is not at fault."""


class MailFailed(ServiceUnavailable):
    """The SMTP server could not be reached or refused the message."""

    code = "mail_failed"


class DemoDataMissing(ApplianceError):
    """The product's ``data/`` folder cannot be found (a broken installation)."""

    code = "demo_data_missing"
    status = 500


class OtpRequired(NotAuthenticated):
    """The password was right, but the account has two-factor sign-in on and no code came with it."""

    code = "otp_required"


class LinkNotUsable(ApplianceError):
    """A one-time account link (invitation, password reset) that is unknown, used, replaced or expired;
    the message says which, plainly, and ``reason`` names it."""

    code = "link_not_usable"
    status = 410
