"""How a setting is shown to people: its label, the words of its choices and its help, for every form.

The one table the admin settings page and the console's settings tab both
read, so a setting is called the same in both.
"""

from __future__ import annotations

from appliance.config.setting import Setting

# Labels that read better than the name turned into words.
LABELS = {
    "mcp_calls_per_minute": "AI agent tool calls per minute (per token)",
    "mcp_writes_per_day": "AI agent writes per day (per token)",
    "host": "Listen address",
    "trusted_proxy": "Trusted reverse proxy address",
    "database_url": "Database URL",
    "min_free_disk_mb": "Warn below this free disk space (MB)",
    "max_upload_mb": "Largest upload (MB)",
    "backup_schedule": "Backup schedule of a new installation",
    "backup_keep_daily": "Daily backups kept",
    "backup_keep_weekly": "Weekly backups kept",
    "webhook_allowed_private_networks": "Private networks webhooks may call",
    "backup_keep_manual_days": "Keep manual and safety backups for (days)",
    "backup_keep_min": "Fewest verified backups kept",
    "backup_offsite_dir": "Folder for offsite copies",
    "audit_retention_days": "Keep audit events for (days)",
    "job_stuck_minutes": "A job run is stuck after (minutes)",
    "rules_poll_seconds": "Rules look for changes every (seconds)",
    "rules_mail_per_hour": "Most mails one rule sends an hour",
    "smtp_host": "SMTP server",
    "smtp_user": "SMTP user name",
    "smtp_sender": "Sender address of alert mail",
    "alert_recipients": "Extra alert recipients",
    "public_url": "Public address (start of links in mail)",
    "log_max_bytes": "Rotate a log file at (bytes)",
    "max_import_rows": "Most rows in one import",
    "session_idle_minutes": "Session idle time-out (minutes)",
    "session_absolute_hours": "Session length limit (hours)",
    "token_default_days": "Token lifetime (days)",
    "require_two_factor": "Two-factor sign-in required for",
}
# Words a label writes as they are written, not capitalised.
_WORDS = {
    "sqlite": "SQLite",
    "smtp": "SMTP",
    "url": "URL",
    "tls": "TLS",
    "api": "API",
    "mb": "MB",
    "kib": "KiB",
    "ms": "ms",
}
_UNITS = {"seconds", "minutes", "hours", "days", "bytes", "mb", "kib", "ms"}
# The words shown for the fixed choices of a setting, by setting and value.
CHOICE_LABELS = {
    "log_level": {
        "DEBUG": "Debug (everything)",
        "INFO": "Info (normal)",
        "WARNING": "Warnings and errors",
        "ERROR": "Errors only",
    },
    "require_two_factor": {
        "none": "Nobody (each user may still turn it on)",
        "admins": "Admins",
        "everyone": "Everyone",
    },
    "smtp_security": {
        "starttls": "STARTTLS (usually port 587)",
        "tls": "TLS from the start (usually port 465)",
        "none": "None (unencrypted)",
    },
}
NO_RESTART = "takes effect without a restart"
# What an office admin changes: shown first as "Basic"; every other setting is "Advanced" (tuning,
# limits and throttling numbers), collapsed on the web settings page and in the console's settings tab.
BASIC = frozenset(
    {
        "host",
        "port",
        "trusted_proxy",
        "public_url",
        "max_upload_mb",
        "min_free_disk_mb",
        "session_idle_minutes",
        "require_two_factor",
        "backup_keep_daily",
        "backup_keep_weekly",
        "backup_keep_manual_days",
        "backup_keep_min",
        "backup_offsite_dir",
        "audit_retention_days",
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "smtp_user",
        "smtp_password",
        "smtp_sender",
        "alert_recipients",
        "office_time_zone",
        "time_zone",
    }
)
GROUPS = (("basic", "Basic"), ("advanced", "Advanced"))


def setting_group(name: str) -> str:
    """``"basic"`` for what an office admin changes (mail, backups, retention, addresses), else ``"advanced"``."""
    return "basic" if name in BASIC else "advanced"


def setting_label(name: str) -> str:
    """A setting's name as a person reads it: ``smtp_timeout_seconds`` -> ``"SMTP timeout (seconds)"``."""
    if name in LABELS:
        return LABELS[name]
    words = [_WORDS.get(word, word) for word in name.split("_")]
    unit = words.pop() if len(words) > 1 and name.rsplit("_", 1)[-1] in _UNITS else None
    first = words[0] if words[0] in _WORDS.values() else words[0].capitalize()
    text = " ".join([first, *words[1:]]).replace("ign in", "ign-in")
    return text + (f" ({unit})" if unit else "")


def setting_choices(setting: Setting) -> list[tuple[str, str]]:
    """``[(value, label), ...]`` for a setting with fixed choices (a drop-down), or ``[]``."""
    labels = CHOICE_LABELS.get(setting.name, {})
    return [(value, labels.get(value, value)) for value in setting.choices]


def setting_help(setting: Setting) -> str:
    """The help shown under a setting's field, saying when a change takes effect without a restart."""
    return setting.help + ("" if setting.restart else f" ({NO_RESTART})")
