"""One setting's declaration: the :class:`Setting` type and the value checks settings are declared with.

A check takes a parsed value and returns why it cannot be used (a few words,
``"out of range"``) or ``None``; :func:`all_of` runs several in turn. The
declarations themselves are in :mod:`appliance.config.registry`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email

ENV_PREFIX = "APPLIANCE_"
# The longest span a setting counted in days may have: a hundred years.
MAX_DAYS = 36500

Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Setting:
    """One setting: its name, type (``str``, ``int``, ``bool``, ``float``), default and help.

    ``check`` validates a parsed value and returns an error text or ``None``;
    ``choices``, when given, are the only values accepted (forms offer them as
    a drop-down); ``accepts`` tells a person what is accepted. ``restart`` says
    whether a change needs a server restart to take effect. ``secret`` keeps
    the value out of logs, ``doctor`` output and the status API.
    """

    name: str
    type: type
    default: Any
    help: str
    accepts: str = ""
    check: Check | None = None
    restart: bool = True
    secret: bool = False
    section: str = "server"
    choices: tuple[str, ...] = ()

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def describe_accepted(self) -> str:
        """What is accepted, as a person reads it (``"a whole number from 1 to 65535"``)."""
        if self.accepts:
            return self.accepts
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return {
            int: "a whole number",
            bool: "true or false",
            float: "a number",
            str: "text",
        }[self.type]

    def problem(self, value: Any) -> str | None:
        """Why a value of the right type cannot be used (its choices, then its check), or ``None``."""
        if self.choices and value not in self.choices:
            return "not one of the choices"
        return self.check(value) if self.check is not None else None


def all_of(*checks: Check) -> Check:
    """A check that runs ``checks`` in turn and answers the first problem."""

    def check(value: Any) -> str | None:
        for one in checks:
            problem = one(value)
            if problem is not None:
                return problem
        return None

    return check


def port_problem(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "out of range"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "negative"


def positive(value: float) -> str | None:
    return None if value > 0 else "not positive"


def at_least(low: float) -> Check:
    """A check refusing values below ``low``."""
    return lambda value: None if value >= low else f"below {low}"


def within(low: int, high: int) -> Check:
    """A check refusing values outside ``low`` … ``high``."""
    return lambda value: None if low <= value <= high else "out of range"


def days_problem(value: int) -> str | None:
    return None if value <= MAX_DAYS else f"more than {MAX_DAYS} days"


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def host_problem(value: str) -> str | None:
    """An IP address or a DNS host name (``smtp.example.com``); empty is left to the setting."""
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


def email_problem(value: str) -> str | None:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"not an email address ({exc})"
    return None


def optional_email_problem(value: str) -> str | None:
    """An email address, or empty."""
    return email_problem(value) if value else None


def email_list_problem(value: str) -> str | None:
    """Comma-separated email addresses (empty for none)."""
    for part in (p.strip() for p in value.split(",")):
        if not part:
            if value.strip():
                return "an empty address between commas"
            continue
        problem = email_problem(part)
        if problem:
            return f"{part!r} is {problem}"
    return None


def absolute_path_problem(value: str) -> str | None:
    if value and not (os.path.isabs(value) or Path(value).is_absolute()):
        return "not an absolute path"
    return None


def base_url_problem(value: str) -> str | None:
    """An http(s) URL with a host and nothing after its path (empty for none)."""
    if not value:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http:// or https:// address with a host name"
    if parts.query or parts.fragment:
        return "an address with ?query or #fragment"
    return None
