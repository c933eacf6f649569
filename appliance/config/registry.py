"""Every setting, declared exactly once: name, type, default, help, what is accepted and its checks.

The order here is the order of the settings file, the pages and the console.
:func:`registry` answers them by name; :func:`register` refuses a name given
twice or a default that fails its own checks, at import time.
"""

from __future__ import annotations

from collections.abc import Mapping

from appliance.config.schedules import schedule_problem
from appliance.config.setting import (
    Setting,
    absolute_path_problem,
    all_of,
    at_least,
    days_problem,
    email_list_problem,
    host_problem,
    non_negative,
    optional_email_problem,
    port_problem,
    positive,
    within,
)

_REGISTRY: dict[str, Setting] = {}


def register(setting: Setting) -> Setting:
    """Add a setting to the registry; a name may be declared only once, and its default must pass its checks."""
    if setting.name in _REGISTRY:
        raise ValueError(f"setting {setting.name!r} is declared twice")
    if setting.problem(setting.default) is not None:
        raise ValueError(f"the default of setting {setting.name!r} does not pass its own check")
    _REGISTRY[setting.name] = setting
    return setting


def registry() -> Mapping[str, Setting]:
    """Every declared setting by name, in declaration order."""
    return dict(_REGISTRY)


DECLARED: tuple[Setting, ...] = (
    Setting(
        "host",
        str,
        "127.0.0.1",
        "Address the server binds to. 127.0.0.1 serves this machine only; 0.0.0.0 opens it to the network.",
        "an IP address or host name",
        host_problem,
    ),
    Setting("port", int, 8765, "TCP port the server listens on.", "a whole number from 1 to 65535", port_problem),
    Setting(
        "workers",
        int,
        0,
        "Worker processes serving HTTP on the shared socket; 0 means one per CPU core.",
        "a whole number from 0 to 64",
        within(0, 64),
    ),
    Setting("threads", int, 8, "Request threads in each worker process.", "a whole number from 1", positive),
    Setting(
        "connection_limit",
        int,
        # 500, not 200: bench/bench_healthz.py showed 56 of 256 keep-alive connections to one worker
        # starved for the whole run at 200 (one worker is all Windows gets); idle connections are cheap
        # in Waitress, and 500 stays well under the common 1024 open-files limit.
        500,
        "Open connections one worker accepts before it stops accepting more (they wait in the listen backlog).",
        "a whole number from 1",
        positive,
    ),
    Setting("backlog", int, 1024, "Listen backlog of the shared socket.", "a whole number from 1", positive),
    Setting(
        "shutdown_grace_seconds",
        float,
        8.0,
        "On SIGTERM, how long in-flight requests may take to finish before workers are stopped.",
        "a number, 0 or more",
        non_negative,
    ),
    Setting(
        "trusted_proxy",
        str,
        "",
        "Address of the reverse proxy whose X-Forwarded-* headers are honoured; empty trusts none.",
    ),
    Setting(
        "database_url",
        str,
        "",
        "Database to use instead of the embedded SQLite file, e.g. postgresql://user:pass@host/db. "
        "DATABASE_URL in the environment is honoured too.",
        secret=True,
        section="database",
    ),
    Setting(
        "sqlite_busy_timeout_ms",
        int,
        5000,
        "How long a SQLite write waits for the lock before giving up.",
        "a whole number from 1",
        positive,
        section="database",
    ),
    Setting(
        "migrate_on_start",
        bool,
        True,
        "Apply pending migrations when the server starts; when false the server refuses to serve "
        "an un-migrated database and asks for `appliance migrate`.",
        section="database",
    ),
    Setting(
        "log_level",
        str,
        "INFO",
        "Least severe level written to the app log.",
        "one of DEBUG, INFO, WARNING, ERROR",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        restart=False,
        section="logs",
    ),
    Setting(
        "log_max_bytes",
        int,
        10 * 1024 * 1024,
        "Size at which a log file is rotated.",
        "a whole number of bytes from 1",
        positive,
        section="logs",
    ),
    Setting(
        "log_backups",
        int,
        5,
        "Rotated log files kept per log.",
        "a whole number, 0 or more",
        non_negative,
        section="logs",
    ),
    Setting(
        "min_free_disk_mb",
        int,
        500,
        "`appliance doctor` warns when the home's disk has less free space than this.",
        "a whole number, 0 or more",
        non_negative,
        restart=False,
        section="logs",
    ),
    Setting(
        "max_upload_mb",
        int,
        25,
        "Largest request body an upload may have, in megabytes; bigger ones are refused with 413 before "
        "they are read. A file field's own max_size can only be smaller.",
        "a whole number from 1",
        positive,
        section="data",
    ),
    Setting(
        "max_import_rows",
        int,
        100000,
        "Most data rows one CSV import may have (the API's and the import page's); a longer file is refused "
        "when it is read, before any row is checked. Split bigger files.",
        "a whole number from 1",
        positive,
        restart=False,
        section="data",
    ),
    Setting(
        "session_idle_minutes",
        int,
        60,
        "A browser session ends after this many minutes without a request.",
        "a whole number of minutes from 1",
        positive,
        section="accounts",
    ),
    Setting(
        "session_absolute_hours",
        int,
        12,
        "A browser session ends this many hours after sign-in, however busy.",
        "a whole number of hours from 1",
        positive,
        section="accounts",
    ),
    Setting(
        "sign_in_max_failures",
        int,
        5,
        "Failed sign-ins for one account, within the window, that lock the account.",
        "a whole number from 1",
        positive,
        section="accounts",
    ),
    Setting(
        "sign_in_address_max_failures",
        int,
        20,
        "Failed sign-ins from one client address, within the window, that block that address.",
        "a whole number from 1",
        positive,
        section="accounts",
    ),
    Setting(
        "sign_in_window_minutes",
        int,
        15,
        "The window over which failed sign-ins are counted.",
        "a whole number of minutes from 1",
        positive,
        section="accounts",
    ),
    Setting(
        "sign_in_lockout_minutes",
        int,
        15,
        "How long a locked account (or blocked address) is refused.",
        "a whole number of minutes from 1",
        positive,
        section="accounts",
    ),
    Setting(
        "token_default_days",
        int,
        90,
        "Days an API token stays valid when its creator names no expiry.",
        "a whole number of days from 1",
        all_of(positive, days_problem),
        section="accounts",
    ),
    Setting(
        "argon2_time_cost",
        int,
        3,
        "Argon2id passes for password hashes; a change re-hashes each password at its next sign-in.",
        "a whole number from 1",
        positive,
        section="accounts",
    ),
    Setting(
        "argon2_memory_kib",
        int,
        65536,
        "Argon2id memory per password hash, in KiB; a change re-hashes each password at its next sign-in.",
        "a whole number of KiB, 8192 or more",
        at_least(8192),
        section="accounts",
    ),
    Setting(
        "argon2_parallelism",
        int,
        4,
        "Argon2id lanes per password hash.",
        "a whole number from 1",
        positive,
        section="accounts",
    ),
    Setting(
        "backup_schedule",
        str,
        "0 2 * * *",
        "The backup schedule a new installation starts with (it seeds the 'backup' job when that job is "
        "first created); changing it later changes nothing: change the job's schedule on /admin/jobs, "
        "with the API or in the console.",
        "'daily 02:00', 'weekdays 07:30', 'weekly sunday 04:45', 'every 6 hours' or a cron expression",
        schedule_problem,
        restart=False,
        section="backups",
    ),
    Setting(
        "backup_keep_daily",
        int,
        7,
        "Daily backups kept: the newest backup of each of this many most recent days.",
        "a whole number, 0 or more",
        non_negative,
        restart=False,
        section="backups",
    ),
    Setting(
        "backup_keep_weekly",
        int,
        4,
        "Weekly backups kept: the newest backup of each of this many most recent weeks.",
        "a whole number, 0 or more",
        non_negative,
        restart=False,
        section="backups",
    ),
    Setting(
        "backup_offsite_dir",
        str,
        "",
        "A folder (NAS mount, USB disk) that receives a checked copy of every verified backup; empty for none.",
        "an absolute folder path, or empty",
        absolute_path_problem,
        restart=False,
        section="backups",
    ),
    Setting(
        "audit_retention_days",
        int,
        365,
        "Audit events older than this are archived to a CSV file in backups/audit-archive and removed; 0 keeps them all.",
        "a whole number of days, 0 or more",
        all_of(non_negative, days_problem),
        restart=False,
        section="backups",
    ),
    Setting(
        "job_stuck_minutes",
        int,
        120,
        "A job run still going after this many minutes is reported as stuck (alert and status).",
        "a whole number of minutes from 1",
        positive,
        restart=False,
        section="jobs",
    ),
    Setting(
        "scheduler_sync_seconds",
        float,
        2.0,
        "How often the scheduler re-reads job definitions and run-now requests from the database.",
        "a number from 0.2",
        at_least(0.2),
        section="jobs",
    ),
    Setting(
        "smtp_host",
        str,
        "",
        "SMTP server for alert mail; empty sends no mail.",
        "a host name or IP address, or empty",
        host_problem,
        restart=False,
        section="mail",
    ),
    Setting(
        "smtp_port",
        int,
        587,
        "SMTP server port.",
        "a whole number from 1 to 65535",
        port_problem,
        restart=False,
        section="mail",
    ),
    Setting(
        "smtp_security",
        str,
        "starttls",
        "How to secure the SMTP connection: starttls, tls (implicit TLS, usually port 465) or none.",
        "one of starttls, tls, none",
        choices=("starttls", "tls", "none"),
        restart=False,
        section="mail",
    ),
    Setting("smtp_user", str, "", "SMTP user name; empty to send without signing in.", restart=False, section="mail"),
    Setting("smtp_password", str, "", "SMTP password.", restart=False, secret=True, section="mail"),
    Setting(
        "smtp_sender",
        str,
        "",
        "The From address of alert mail.",
        "an email address, or empty",
        optional_email_problem,
        restart=False,
        section="mail",
    ),
    Setting(
        "smtp_timeout_seconds",
        float,
        15.0,
        "How long to wait for the SMTP server.",
        "a number above 0",
        positive,
        restart=False,
        section="mail",
    ),
    Setting(
        "alert_recipients",
        str,
        "",
        "Extra addresses (comma-separated) that receive alerts besides the active admins.",
        "email addresses separated by commas, or empty",
        email_list_problem,
        restart=False,
        section="mail",
    ),
)

for _setting in DECLARED:
    register(_setting)
