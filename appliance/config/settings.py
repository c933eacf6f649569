"""The settings file and the environment: load the registry's settings, write changes, render a new file.

Values come from ``<home>/appliance.toml`` and are overridden by
``APPLIANCE_<NAME>`` environment variables (upper case). A value that cannot
be used raises :class:`SettingsError` naming the setting, the value, where it
came from and what is accepted; start-up stops there. The settings themselves
are declared in :mod:`appliance.config.registry`.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from appliance.config.registry import registry
from appliance.config.setting import ENV_PREFIX
from appliance.config.values import parse_text, parse_value
from appliance.durable import write_private_file
from appliance.errors import SettingsError


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
        declared = registry()
        out = {}
        for name, value in self.values.items():
            setting = declared.get(name)
            out[name] = "***" if setting and setting.secret and value else value
        return out


def _flatten(data: Mapping[str, Any], where: str = "the settings file") -> dict[str, Any]:
    """Settings may sit at the top of the file or inside a [section] table named as in the registry.

    Raises :class:`SettingsError` for an unknown section or a setting given twice.
    """
    sections = {setting.section for setting in registry().values()}
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
    declared = registry()
    values = {name: setting.default for name, setting in declared.items()}
    sources = {name: "default" for name in declared}
    if path is not None and path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SettingsError(f"{path} is not valid TOML: {exc}") from None
        for key, (_raw, value) in check_settings_text(text, str(path)).items():
            values[key] = value
            sources[key] = str(path)
    for name, setting in declared.items():
        if setting.env_name in environ:
            source = f"environment {setting.env_name}"
            values[name] = parse_text(setting, environ[setting.env_name], source)
            sources[name] = source
    if not values.get("database_url") and environ.get("DATABASE_URL"):
        values["database_url"] = environ["DATABASE_URL"]
        sources["database_url"] = "environment DATABASE_URL"
    env_names = {s.env_name for s in declared.values()}
    for key in environ:
        if key.startswith(ENV_PREFIX) and key not in env_names and key != "APPLIANCE_HOME":
            name = key[len(ENV_PREFIX) :].lower()
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" (did you mean {ENV_PREFIX}{close[0].upper()}?)" if close else ""
            raise SettingsError(f"environment {key}: unknown setting '{name}'{hint}", setting=name)
    return Settings(values, sources)


def check_settings_text(text: str, where: str) -> dict[str, tuple[Any, Any]]:
    """Parse the text of a settings file against the registry: ``name -> (value as written, parsed value)``.

    Raises :class:`SettingsError` (naming ``where``) for text that is not valid
    TOML, an unknown section or setting name, or a value that cannot be used.
    """
    declared = registry()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{where} is not valid TOML: {exc}") from None
    found: dict[str, tuple[Any, Any]] = {}
    for key, raw in _flatten(data, where).items():
        setting = declared.get(key)
        if setting is None:
            close = difflib.get_close_matches(key, declared, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SettingsError(f"{where}: unknown setting '{key}'{hint}", setting=key)
        found[key] = (raw, parse_value(setting, raw, where))
    return found


def render_default_file() -> str:
    """The text of a new ``appliance.toml``: every setting commented out with its help and default."""
    lines = [
        "# Office Appliance settings. Uncomment a line to change it.",
        "# Environment variables APPLIANCE_<NAME> override this file.",
        "",
    ]
    section = None
    for setting in registry().values():
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
    file is left as it was. The file is owner-only: it may hold the SMTP
    password or a database URL with its password.
    """
    declared = registry()
    current: dict[str, Any] = {}
    if path.exists():
        current = _flatten(tomllib.loads(path.read_text(encoding="utf-8")))
    for name, raw in changes.items():
        setting = declared.get(name)
        if setting is None:
            raise SettingsError(f"unknown setting '{name}'", setting=name)
        current[name] = parse_value(setting, raw, "the new value")
    write_private_file(path, tomli_w.dumps(current))
