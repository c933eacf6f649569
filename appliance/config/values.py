"""A setting's value from what people and files give: the one parser for typed TOML values and for text.

:func:`parse_value` takes a TOML value, which must already have the
setting's type (``port = "80"`` is refused). :func:`parse_text` is the one
parser of text, for an environment variable and for a form (the admin
settings page, the console's settings tab): booleans are the words of
:mod:`appliance.text`, numbers ASCII digits only (``int()`` would also take
``"8_080"``, full-width or Arabic-Indic digits). Both raise
:class:`SettingsError` naming the setting, with the reason in ``extra["why"]``;
:func:`form_message` turns it into what a form shows beside the field.
"""

from __future__ import annotations

import math
import re
from typing import Any

from appliance.config.setting import Setting
from appliance.errors import SettingsError
from appliance.text import bool_from_word

_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NOT_FINITE = {"nan", "inf", "infinity"}
FORM = "the form"


def refusal(setting: Setting, raw: Any, source: str, why: str) -> SettingsError:
    """The error for ``raw`` (from ``source``), which is ``why``; it names what is accepted."""
    return SettingsError(
        f"setting '{setting.name}' from {source}: {raw!r} is {why}; expected {setting.describe_accepted()}",
        setting=setting.name,
        why=why,
    )


def _checked(setting: Setting, value: Any, raw: Any, source: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise refusal(setting, raw, source, "not a finite number")
    why = setting.problem(value)
    if why is not None:
        raise refusal(setting, raw, source, why)
    return value


def parse_value(setting: Setting, raw: Any, source: str) -> Any:
    """A TOML value (or one already of the setting's type) as the setting's value, checked.

    Raises :class:`SettingsError` for a value of another type (a boolean is
    no number) or one the setting's checks refuse.
    """
    kind = setting.type
    value: Any
    if kind is bool:
        if not isinstance(raw, bool):
            raise refusal(setting, raw, source, "not a boolean")
        value = raw
    elif kind is int:
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise refusal(setting, raw, source, "not a whole number")
        value = raw
    elif kind is float:
        if not isinstance(raw, (int, float)) or isinstance(raw, bool):
            raise refusal(setting, raw, source, "not a number")
        value = float(raw)
    else:
        if not isinstance(raw, str):
            raise refusal(setting, raw, source, "not text")
        value = raw
    return _checked(setting, value, raw, source)


def parse_text(setting: Setting, text: str, source: str = FORM) -> Any:
    """Text (an environment variable, a form's field) as the setting's value, checked.

    Spaces around are ignored, except in a secret, which is taken as typed.
    Booleans are ``true``/``false``/``1``/``0``/``yes``/``no``/``on``/``off``;
    whole numbers and numbers are ASCII digits. Raises :class:`SettingsError`.
    """
    kind = setting.type
    stripped = text.strip()
    value: Any
    if kind is bool:
        value = bool_from_word(stripped)
        if value is None:
            raise refusal(setting, text, source, "not a boolean")
    elif kind is int:
        if not _INTEGER.fullmatch(stripped):
            raise refusal(setting, text, source, "not a whole number")
        value = int(stripped, 10)
    elif kind is float:
        if stripped.lower().lstrip("+-") in _NOT_FINITE:
            raise refusal(setting, text, source, "not a finite number")
        if not _NUMBER.fullmatch(stripped):
            raise refusal(setting, text, source, "not a number")
        value = float(stripped)
    else:
        value = text if setting.secret else stripped
    return _checked(setting, value, text, source)


def form_message(setting: Setting, error: SettingsError) -> str:
    """What a form shows beside a refused field: what to enter, and why the value was refused."""
    why = error.extra.get("why")
    return f"Enter {setting.describe_accepted()}" + (f" ({why})." if why else ".")
