"""The settings file in a backup: what goes into an archive, and what a restore brings back.

Every archive holds the home's ``appliance.toml`` as written (an empty one
when the home has none); the manifest lists it with its checksum and names
the secret settings it sets (``settings.secrets``: names only). A restore keeps
the current settings unless asked for the archived ones; then the archived
file must parse with this version's registry, or the restore is refused before
anything changes. From an archive of another instance (accepted as foreign)
the secret settings are left out, and the current values of those kept, unless
the secrets are asked for too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from appliance.config.home import Paths
from appliance.config.registry import registry
from appliance.config.settings import check_settings_text
from appliance.errors import BadRequest, SettingsError

# The verification's signature states of an archive written by this instance.
OWN_SIGNATURES = ("own", "unsigned (own folder)")


def secret_names() -> set[str]:
    """The names of the settings the registry marks secret."""
    return {name for name, setting in registry().items() if setting.secret}


def archived_settings(paths: Paths) -> tuple[bytes, list[str]]:
    """The home's settings file as it goes into an archive, and the secret settings it sets.

    A file this version cannot parse is archived as it is (the server that
    runs reads it at start, so this is rare); its secret names are then every
    secret the registry knows, so a restore elsewhere still asks before using any.
    """
    path = paths.settings_file
    data = path.read_bytes() if path.exists() else b""
    try:
        names = set(check_settings_text(data.decode("utf-8"), str(path)))
        secrets = sorted(names & secret_names())
    except (SettingsError, UnicodeDecodeError):
        secrets = sorted(secret_names())
    return data, secrets


@dataclass
class SettingsToRestore:
    """The settings file a restore writes, and the secret settings it left out of the archive's."""

    data: bytes
    left_out: list[str] = field(default_factory=list)


def settings_to_restore(
    unpacked: Path, paths: Paths, archive_name: str, *, foreign: bool, with_secrets: bool
) -> SettingsToRestore:
    """The settings file to write from the archive unpacked at ``unpacked`` (its ``appliance.toml``).

    Raises :class:`BadRequest` when the archive holds no settings file (an
    archive from before settings were kept) or one that does not parse with
    this version's registry, naming the reason. From a ``foreign`` archive
    without ``with_secrets``, the secret settings it sets are left out and the
    current file's values of those are kept.
    """
    member = unpacked / "appliance.toml"
    if not member.is_file():
        raise BadRequest(
            f"the archive {archive_name} holds no settings file (it was made before backups kept the settings); "
            "restore it without --with-settings"
        )
    data = member.read_bytes()
    where = f"the settings file in {archive_name}"
    try:
        found = check_settings_text(data.decode("utf-8"), where)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{where} is not valid TOML: {exc}; nothing was changed") from None
    except SettingsError as exc:
        raise BadRequest(f"the settings cannot be restored: {exc.message}; nothing was changed") from None
    secrets = secret_names()
    left_out = sorted(set(found) & secrets) if foreign and not with_secrets else []
    if not left_out:
        return SettingsToRestore(data)
    kept: dict[str, Any] = {name: raw for name, (raw, _value) in found.items() if name not in secrets}
    kept |= _current_secrets(paths)
    return SettingsToRestore(tomli_w.dumps(kept).encode(), left_out)


def _current_secrets(paths: Paths) -> dict[str, Any]:
    """The secret settings the current settings file sets, as written (none when it does not parse)."""
    path = paths.settings_file
    if not path.exists():
        return {}
    try:
        found = check_settings_text(path.read_text(encoding="utf-8"), str(path))
    except (SettingsError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    return {name: raw for name, (raw, _value) in found.items() if name in secret_names()}
