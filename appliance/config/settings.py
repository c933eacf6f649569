"""The settings registry: every setting declared once, parsed strictly.

Values come from ``<home>/appliance.toml`` and are overridden by
``APPLIANCE_<NAME>`` environment variables (upper case). A value that cannot
be used raises :class:`SettingsError` naming the setting, the value, where it
came from and what is accepted; start-up stops there.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import SettingsError

ENV_PREFIX = "APPLIANCE_"


@dataclass(frozen=True)
class Setting:
    """One setting: its name, type (``str``, ``int``, ``bool``, ``float``), default and help.

    ``check`` validates a parsed value and returns an error text or ``None``;
    ``accepts`` tells a person what is accepted. ``restart`` says whether a
    change needs a server restart to take effect. ``secret`` keeps the value
    out of logs, ``doctor`` output and the status API.
    """

    name: str
    type: type
    default: Any
    help: str
    accepts: str = ""
    check: Callable[[Any], str | None] | None = None
    restart: bool = True
    secret: bool = False
    section: str = "server"

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def describe_accepted(self) -> str:
        if self.accepts:
            return self.accepts
        return {
            int: "a whole number",
            bool: "true or false",
            float: "a number",
            str: "text",
        }[self.type]


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "out of range"


def _non_negative(value: int | float) -> str | None:
    return None if value >= 0 else "negative"


def _positive(value: int | float) -> str | None:
    return None if value > 0 else "not positive"


def _choice(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else "not one of the choices"

    check.choices = choices  # type: ignore[attr-defined]  # forms (the console) offer them as a drop-down
    return check


def _schedule_problem(value: str) -> str | None:
    from appliance.config.schedules import schedule_problem

    return schedule_problem(value)


_REGISTRY: dict[str, Setting] = {}


def register(setting: Setting) -> Setting:
    """Add a setting to the registry; a name may be declared only once."""
    if setting.name in _REGISTRY:
        raise ValueError(f"setting {setting.name!r} is declared twice")
    if setting.check is not None and setting.check(setting.default) is not None:
        raise ValueError(f"the default of setting {setting.name!r} does not pass its own check")
    _REGISTRY[setting.name] = setting
    return setting


def registry() -> Mapping[str, Setting]:
    """Every declared setting by name, in declaration order."""
    return dict(_REGISTRY)


for _setting in (
    Setting(
        "host",
        str,
        "127.0.0.1",
        "Address the server binds to. 127.0.0.1 serves this machine only; 0.0.0.0 opens it to the network.",
    ),
    Setting("port", int, 8765, "TCP port the server listens on.", "a whole number from 1 to 65535", _port),
    Setting(
        "workers",
        int,
        0,
        "Worker processes serving HTTP on the shared socket; 0 means one per CPU core.",
        "a whole number from 0 to 64",
        lambda value: None if 0 <= value <= 64 else "out of range",
    ),
    Setting("threads", int, 8, "Request threads in each worker process.", "a whole number from 1", _positive),
    Setting(
        "connection_limit",
        int,
        # 500, not 200: bench/bench_healthz.py showed 56 of 256 keep-alive connections to one worker
        # starved for the whole run at 200 (one worker is all Windows gets); idle connections are cheap
        # in Waitress, and 500 stays well under the common 1024 open-files limit.
        500,
        "Open connections one worker accepts before it stops accepting more (they wait in the listen backlog).",
        "a whole number from 1",
        _positive,
    ),
    Setting("backlog", int, 1024, "Listen backlog of the shared socket.", "a whole number from 1", _positive),
    Setting(
        "shutdown_grace_seconds",
        float,
        8.0,
        "On SIGTERM, how long in-flight requests may take to finish before workers are stopped.",
        "a number, 0 or more",
        _non_negative,
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
        _positive,
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
        _choice("DEBUG", "INFO", "WARNING", "ERROR"),
        restart=False,
        section="logs",
    ),
    Setting(
        "log_max_bytes",
        int,
        10 * 1024 * 1024,
        "Size at which a log file is rotated.",
        "a whole number of bytes from 1",
        _positive,
        section="logs",
    ),
    Setting(
        "log_backups",
        int,
        5,
        "Rotated log files kept per log.",
        "a whole number, 0 or more",
        _non_negative,
        section="logs",
    ),
    Setting(
        "min_free_disk_mb",
        int,
        500,
        "`appliance doctor` warns when the home's disk has less free space than this.",
        "a whole number, 0 or more",
        _non_negative,
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
        _positive,
        section="data",
    ),
    Setting(
        "max_import_rows",
        int,
        100000,
        "Most data rows one CSV import may have (the API's and the import page's); a longer file is refused "
        "when it is read, before any row is checked. Split bigger files.",
        "a whole number from 1",
        _positive,
        restart=False,
        section="data",
    ),
    Setting(
        "session_idle_minutes",
        int,
        60,
        "A browser session ends after this many minutes without a request.",
        "a whole number of minutes from 1",
        _positive,
        section="accounts",
    ),
    Setting(
        "session_absolute_hours",
        int,
        12,
        "A browser session ends this many hours after sign-in, however busy.",
        "a whole number of hours from 1",
        _positive,
        section="accounts",
    ),
    Setting(
        "sign_in_max_failures",
        int,
        5,
        "Failed sign-ins for one account, within the window, that lock the account.",
        "a whole number from 1",
        _positive,
        section="accounts",
    ),
    Setting(
        "sign_in_address_max_failures",
        int,
        20,
        "Failed sign-ins from one client address, within the window, that block that address.",
        "a whole number from 1",
        _positive,
        section="accounts",
    ),
    Setting(
        "sign_in_window_minutes",
        int,
        15,
        "The window over which failed sign-ins are counted.",
        "a whole number of minutes from 1",
        _positive,
        section="accounts",
    ),
    Setting(
        "sign_in_lockout_minutes",
        int,
        15,
        "How long a locked account (or blocked address) is refused.",
        "a whole number of minutes from 1",
        _positive,
        section="accounts",
    ),
    Setting(
        "token_default_days",
        int,
        90,
        "Days an API token stays valid when its creator names no expiry.",
        "a whole number of days from 1",
        _positive,
        section="accounts",
    ),
    Setting(
        "argon2_time_cost",
        int,
        3,
        "Argon2id passes for password hashes; a change re-hashes each password at its next sign-in.",
        "a whole number from 1",
        _positive,
        section="accounts",
    ),
    Setting(
        "argon2_memory_kib",
        int,
        65536,
        "Argon2id memory per password hash, in KiB; a change re-hashes each password at its next sign-in.",
        "a whole number of KiB, 8192 or more",
        lambda value: None if value >= 8192 else "below 8192",
        section="accounts",
    ),
    Setting(
        "argon2_parallelism",
        int,
        4,
        "Argon2id lanes per password hash.",
        "a whole number from 1",
        _positive,
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
        lambda value: _schedule_problem(value),
        restart=False,
        section="backups",
    ),
    Setting(
        "backup_keep_daily",
        int,
        7,
        "Daily backups kept: the newest backup of each of this many most recent days.",
        "a whole number, 0 or more",
        _non_negative,
        restart=False,
        section="backups",
    ),
    Setting(
        "backup_keep_weekly",
        int,
        4,
        "Weekly backups kept: the newest backup of each of this many most recent weeks.",
        "a whole number, 0 or more",
        _non_negative,
        restart=False,
        section="backups",
    ),
    Setting(
        "backup_offsite_dir",
        str,
        "",
        "A folder (NAS mount, USB disk) that receives a checked copy of every verified backup; empty for none.",
        restart=False,
        section="backups",
    ),
    Setting(
        "audit_retention_days",
        int,
        365,
        "Audit events older than this are archived to a CSV file in backups/audit-archive and removed; 0 keeps them all.",
        "a whole number of days, 0 or more",
        _non_negative,
        restart=False,
        section="backups",
    ),
    Setting(
        "job_stuck_minutes",
        int,
        120,
        "A job run still going after this many minutes is reported as stuck (alert and status).",
        "a whole number of minutes from 1",
        _positive,
        restart=False,
        section="jobs",
    ),
    Setting(
        "scheduler_sync_seconds",
        float,
        2.0,
        "How often the scheduler re-reads job definitions and run-now requests from the database.",
        "a number from 0.2",
        lambda value: None if value >= 0.2 else "below 0.2",
        section="jobs",
    ),
    Setting("smtp_host", str, "", "SMTP server for alert mail; empty sends no mail.", restart=False, section="mail"),
    Setting(
        "smtp_port",
        int,
        587,
        "SMTP server port.",
        "a whole number from 1 to 65535",
        _port,
        restart=False,
        section="mail",
    ),
    Setting(
        "smtp_security",
        str,
        "starttls",
        "How to secure the SMTP connection: starttls, tls (implicit TLS, usually port 465) or none.",
        "one of starttls, tls, none",
        _choice("starttls", "tls", "none"),
        restart=False,
        section="mail",
    ),
    Setting("smtp_user", str, "", "SMTP user name; empty to send without signing in.", restart=False, section="mail"),
    Setting("smtp_password", str, "", "SMTP password.", restart=False, secret=True, section="mail"),
    Setting("smtp_sender", str, "", "The From address of alert mail.", restart=False, section="mail"),
    Setting(
        "smtp_timeout_seconds",
        float,
        15.0,
        "How long to wait for the SMTP server.",
        "a number above 0",
        _positive,
        restart=False,
        section="mail",
    ),
    Setting(
        "alert_recipients",
        str,
        "",
        "Extra addresses (comma-separated) that receive alerts besides the active admins.",
        restart=False,
        section="mail",
    ),
):
    register(_setting)


# --- value checks beyond the type (what the admin settings page and the file must respect) ---------
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
MAX_DAYS = 36500


def _host_problem(value: str) -> str | None:
    """An IP address or a DNS host name (``smtp.example.com``); empty is left to the setting."""
    import ipaddress

    if not value:
        return None
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        return "not a host name or IP address"
    return None


def _email_problem(value: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"not an email address ({exc})"
    return None


def _email_list_problem(value: str) -> str | None:
    """Comma-separated email addresses (empty for none)."""
    for part in (p.strip() for p in value.split(",")):
        if not part:
            if value.strip():
                return "an empty address between commas"
            continue
        problem = _email_problem(part)
        if problem:
            return f"{part!r} is {problem}"
    return None


def _absolute_path_problem(value: str) -> str | None:
    if value and not (os.path.isabs(value) or Path(value).is_absolute()):
        return "not an absolute path"
    return None


def _finite_problem(value: float) -> str | None:
    return None if math.isfinite(value) else "not a finite number"


def _days_problem(value: int) -> str | None:
    return None if value <= MAX_DAYS else f"more than {MAX_DAYS} days"


def _both(first: Callable[[Any], str | None] | None, second: Callable[[Any], str | None]) -> Callable:
    def check(value: Any) -> str | None:
        return (first(value) if first else None) or second(value)

    if first is not None and hasattr(first, "choices"):
        check.choices = first.choices  # type: ignore[attr-defined]
    return check


for _name, _extra, _accepts in (
    ("host", _host_problem, "an IP address or host name"),
    ("smtp_host", _host_problem, "a host name or IP address, or empty"),
    ("smtp_sender", lambda v: _email_problem(v) if v else None, "an email address, or empty"),
    ("alert_recipients", _email_list_problem, "email addresses separated by commas, or empty"),
    ("backup_offsite_dir", _absolute_path_problem, "an absolute folder path, or empty"),
    ("token_default_days", _days_problem, ""),
    ("audit_retention_days", _days_problem, ""),
    *((s.name, _finite_problem, "") for s in list(_REGISTRY.values()) if s.type is float),
):
    if _name in _REGISTRY:
        _old = _REGISTRY[_name]
        _new = Setting(
            **{
                **_old.__dict__,
                "check": _both(_old.check, _extra),
                "accepts": _old.accepts or _accepts,
            }
        )
        if _new.check(_new.default) is not None:
            raise ValueError(f"the default of setting {_name!r} does not pass its own check")
        _REGISTRY[_name] = _new


@dataclass
class Settings:
    """Parsed setting values, read as attributes: ``settings.port``."""

    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def public(self) -> dict[str, Any]:
        """Values safe to show: secrets are replaced by ``"***"`` when set."""
        out = {}
        for name, value in self.values.items():
            setting = _REGISTRY.get(name)
            out[name] = "***" if setting and setting.secret and value else value
        return out


# ASCII digits only: int() would also take "8_080" and other scripts' digits.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _refuse(setting: Setting, raw: Any, source: str, why: str) -> SettingsError:
    return SettingsError(
        f"setting '{setting.name}' from {source}: {raw!r} is {why}; expected {setting.describe_accepted()}",
        setting=setting.name,
    )


def parse_value(setting: Setting, raw: Any, source: str) -> Any:
    """Turn ``raw`` (a TOML value, or a string from the environment) into the setting's type.

    Raises :class:`SettingsError` when it cannot: TOML values must already
    have the right type (``port = "80"`` is refused), environment strings are
    parsed (``true``/``false``/``1``/``0``/``yes``/``no``/``on``/``off`` for
    booleans).
    """
    from_env = isinstance(raw, str) and source.startswith("environment")
    kind = setting.type
    value: Any
    if kind is bool:
        if isinstance(raw, bool):
            value = raw
        elif from_env and raw.strip().lower() in _TRUE | _FALSE:
            value = raw.strip().lower() in _TRUE
        else:
            raise _refuse(setting, raw, source, "not a boolean")
    elif kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif from_env and _INTEGER.fullmatch(raw.strip()):
            value = int(raw.strip(), 10)
        else:
            raise _refuse(setting, raw, source, "not a whole number")
    elif kind is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
        elif from_env and _NUMBER.fullmatch(raw.strip()):
            value = float(raw.strip())
        else:
            raise _refuse(setting, raw, source, "not a number")
        if not math.isfinite(value):
            raise _refuse(setting, raw, source, "not a finite number")
    else:
        if not isinstance(raw, str):
            raise _refuse(setting, raw, source, "not text")
        value = raw
    if setting.check is not None:
        why = setting.check(value)
        if why is not None:
            raise _refuse(setting, raw, source, why)
    return value


def _flatten(data: Mapping[str, Any], where: str = "the settings file") -> dict[str, Any]:
    """Settings may sit at the top of the file or inside a [section] table named as in the registry.

    Raises :class:`SettingsError` for an unknown section or a setting given twice.
    """
    sections = {setting.section for setting in _REGISTRY.values()}
    flat: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if key in flat:
            raise SettingsError(f"{where}: setting '{key}' is given twice", setting=key)
        flat[key] = value

    for key, value in data.items():
        if isinstance(value, dict):
            if key not in sections:
                raise SettingsError(
                    f"{where}: unknown section [{key}]; sections are {', '.join(sorted(sections))}", setting=key
                )
            for inner, inner_value in value.items():
                put(inner, inner_value)
        else:
            put(key, value)
    return flat


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the registry's settings from ``path`` (may be missing) and the environment.

    Raises :class:`SettingsError` for a file that is not valid TOML, an
    unknown setting name, or a value that cannot be used.
    """
    environ = os.environ if environ is None else environ
    values = {name: setting.default for name, setting in _REGISTRY.items()}
    sources = {name: "default" for name in _REGISTRY}
    if path is not None and path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path} is not valid TOML: {exc}") from None
        for key, raw in _flatten(data, str(path)).items():
            setting = _REGISTRY.get(key)
            if setting is None:
                close = difflib.get_close_matches(key, _REGISTRY, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise SettingsError(f"{path}: unknown setting '{key}'{hint}", setting=key)
            values[key] = parse_value(setting, raw, str(path))
            sources[key] = str(path)
    for name, setting in _REGISTRY.items():
        if setting.env_name in environ:
            values[name] = parse_value(setting, environ[setting.env_name], f"environment {setting.env_name}")
            sources[name] = f"environment {setting.env_name}"
    if not values.get("database_url") and environ.get("DATABASE_URL"):
        values["database_url"] = environ["DATABASE_URL"]
        sources["database_url"] = "environment DATABASE_URL"
    for key in environ:
        if (
            key.startswith(ENV_PREFIX)
            and key not in {s.env_name for s in _REGISTRY.values()}
            and key != "APPLIANCE_HOME"
        ):
            name = key[len(ENV_PREFIX) :].lower()
            close = difflib.get_close_matches(name, _REGISTRY, n=1)
            hint = f" (did you mean {ENV_PREFIX}{close[0].upper()}?)" if close else ""
            raise SettingsError(f"environment {key}: unknown setting '{name}'{hint}", setting=name)
    return Settings(values, sources)


def render_default_file() -> str:
    """The text of a new ``appliance.toml``: every setting commented out with its help and default."""
    import tomli_w

    lines = [
        "# Office Appliance settings. Uncomment a line to change it.",
        "# Environment variables APPLIANCE_<NAME> override this file.",
        "",
    ]
    section = None
    for setting in _REGISTRY.values():
        if setting.section != section:
            section = setting.section
            lines.append(f"# --- {section} ---")
        lines.append(f"# {setting.help}")
        if setting.accepts:
            lines.append(f"# Accepts {setting.accepts}.")
        lines.append("# " + tomli_w.dumps({setting.name: setting.default}).strip())
        lines.append("")
    return "\n".join(lines)


def write_settings(path: Path, changes: Mapping[str, Any]) -> None:
    """Set ``changes`` in the settings file, validating each; the file is replaced atomically.

    Raises :class:`SettingsError` for an unknown name or a bad value; then the
    file is left as it was.
    """
    import tomli_w

    current: dict[str, Any] = {}
    if path.exists():
        current = _flatten(tomllib.loads(path.read_text(encoding="utf-8")))
    for name, raw in changes.items():
        setting = _REGISTRY.get(name)
        if setting is None:
            raise SettingsError(f"unknown setting '{name}'", setting=name)
        current[name] = parse_value(setting, raw, "the new value")
    tmp = path.with_suffix(".toml.tmp")
    # Owner-only: the file may hold the SMTP password or a database URL with its password.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(tomli_w.dumps(current))
    os.replace(tmp, path)


# --- how forms show a setting (the admin settings page; the console may use them too) ------------
# Labels that read better than the name turned into words.
_LABELS = {
    "host": "Listen address",
    "trusted_proxy": "Trusted reverse proxy address",
    "database_url": "Database URL",
    "min_free_disk_mb": "Warn below this free disk space (MB)",
    "max_upload_mb": "Largest upload (MB)",
    "backup_schedule": "Backup schedule of a new installation",
    "backup_keep_daily": "Daily backups kept",
    "backup_keep_weekly": "Weekly backups kept",
    "backup_offsite_dir": "Folder for offsite copies",
    "audit_retention_days": "Keep audit events for (days)",
    "job_stuck_minutes": "A job run is stuck after (minutes)",
    "smtp_host": "SMTP server",
    "smtp_user": "SMTP user name",
    "smtp_sender": "Sender address of alert mail",
    "alert_recipients": "Extra alert recipients",
    "log_max_bytes": "Rotate a log file at (bytes)",
    "max_import_rows": "Most rows in one import",
    "session_idle_minutes": "Session idle time-out (minutes)",
    "session_absolute_hours": "Session length limit (hours)",
    "token_default_days": "Token lifetime (days)",
}
_LABEL_WORDS = {
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
_CHOICE_LABELS = {
    "log_level": {
        "DEBUG": "Debug (everything)",
        "INFO": "Info (normal)",
        "WARNING": "Warnings and errors",
        "ERROR": "Errors only",
    },
    "smtp_security": {
        "starttls": "STARTTLS (usually port 587)",
        "tls": "TLS from the start (usually port 465)",
        "none": "None (unencrypted)",
    },
}


def setting_label(name: str) -> str:
    """A setting's name as a person reads it: ``smtp_timeout_seconds`` -> ``"SMTP timeout (seconds)"``."""
    if name in _LABELS:
        return _LABELS[name]
    words = [_LABEL_WORDS.get(word, word) for word in name.split("_")]
    unit = words.pop() if len(words) > 1 and name.rsplit("_", 1)[-1] in _UNITS else None
    first = words[0] if words[0] in _LABEL_WORDS.values() else words[0].capitalize()
    text = " ".join([first, *words[1:]]).replace("ign in", "ign-in")
    return text + (f" ({unit})" if unit else "")


def setting_choices(setting: Setting) -> list[tuple[str, str]]:
    """``[(value, label), ...]`` for a setting with fixed choices (a drop-down), or ``[]``."""
    values = getattr(setting.check, "choices", ()) or ()
    labels = _CHOICE_LABELS.get(setting.name, {})
    return [(value, labels.get(value, value)) for value in values]
