"""Every setting, declared exactly once: name, type, default, help, what is accepted and its checks.

The order here is the order of the settings file, the pages and the console.
:func:`registry` answers them by name; :func:`register` refuses a name given
twice or a default that fails its own checks, at import time.
"""

from __future__ import annotations

from collections.abc import Mapping

from appliance.config.server_settings import SERVER_SETTINGS
from appliance.config.service_settings import SERVICE_SETTINGS
from appliance.config.setting import Setting

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


# The order here is the order of the settings file, the pages and the console.
DECLARED: tuple[Setting, ...] = (*SERVER_SETTINGS, *SERVICE_SETTINGS)

for _setting in DECLARED:
    register(_setting)
