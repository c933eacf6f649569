"""Settings that may change while the server runs (``restart=False`` in the registry), changed from the admin pages.

They are written to ``appliance.toml`` with :func:`appliance.config.settings.write_settings`,
the same file the console's settings tab writes, so there is one truth and a
restart keeps the change. Every worker process notices a changed file on its
next request (:func:`refresh_runtime_settings`, at most one ``stat`` a second)
and takes the new values of these settings; settings that need a restart keep
the value they started with. The scheduler's jobs read the file at each run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from appliance.actors import ActorLike
from appliance.audit import record_event
from appliance.config.home import Instance
from appliance.config.registry import registry
from appliance.config.setting import Setting
from appliance.config.settings import load_settings, write_settings
from appliance.config.values import form_message, parse_text
from appliance.errors import SettingsError, ValidationFailed
from appliance.storage.db import database

_CHECK_EVERY_SECONDS = 1.0
log = logging.getLogger("appliance.settings")


def editable_settings() -> list[Setting]:
    """The settings that take effect without a restart, in declaration order."""
    return [s for s in registry().values() if not s.restart]


def change_runtime_settings(
    instance: Instance, submitted: Mapping[str, str], *, actor: ActorLike | str | None, address: str | None = None
) -> list[str]:
    """Write the changed values of editable settings in ``submitted`` (form texts by name); returns their names.

    Every value is checked first: :class:`ValidationFailed` names each bad
    one (and a setting that cannot be changed here), and then nothing is
    written. An empty secret keeps its value. A setting fixed by an
    environment variable is refused: the file would not win. Audited as
    ``settings.changed`` with the names (never the values of secrets).
    """
    current = load_settings(instance.paths.settings_file)
    editable = {s.name: s for s in editable_settings()}
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    for name, text in submitted.items():
        setting = editable.get(name)
        if setting is None:
            errors[name] = "This setting cannot be changed here." if name in registry() else "Unknown setting."
            continue
        if setting.secret and not text:
            continue
        try:
            value = parse_text(setting, text)
        except SettingsError as exc:
            errors[name] = form_message(setting, exc)
            continue
        if value == current.values[name]:
            continue
        if current.sources.get(name, "").startswith("environment"):
            errors[name] = f"Set by {current.sources[name]}; change it there."
            continue
        changes[name] = value
    if errors:
        raise ValidationFailed(errors)
    if changes:
        write_settings(instance.paths.settings_file, changes)
        with database.atomic():
            record_event(
                "settings.changed",
                actor=actor,
                target="settings",
                address=address,
                details={
                    "changed": sorted(changes),
                    "values": {k: v for k, v in changes.items() if not registry()[k].secret},
                },
            )
        refresh_runtime_settings(instance, force=True)
    return sorted(changes)


_seen: dict[str, tuple[float, float]] = {}


def refresh_runtime_settings(instance: Instance, *, force: bool = False) -> bool:
    """Take the file's new values of the editable settings into ``instance.settings``; whether anything changed.

    Cheap enough for every request: it looks at the file's modification time
    at most once a second, and reads it only when that changed. An unreadable
    file is logged and the values in use are kept.
    """
    path = instance.paths.settings_file
    key = str(path)
    now = time.monotonic()
    checked, mtime = _seen.get(key, (0.0, -1.0))
    if not force and now - checked < _CHECK_EVERY_SECONDS:
        return False
    try:
        current_mtime = os.stat(path).st_mtime
    except OSError:
        return False
    _seen[key] = (now, current_mtime)
    if not force and current_mtime == mtime:
        return False
    try:
        fresh = load_settings(path)
    except SettingsError as exc:
        log.warning("settings file unreadable, keeping the values in use: %s", exc.message)
        return False
    changed = False
    for setting in editable_settings():
        if instance.settings.values.get(setting.name) != fresh.values[setting.name]:
            instance.settings.values[setting.name] = fresh.values[setting.name]
            instance.settings.sources[setting.name] = fresh.sources[setting.name]
            changed = True
            if setting.name == "log_level":
                logging.getLogger().setLevel(fresh.values["log_level"])
    return changed
