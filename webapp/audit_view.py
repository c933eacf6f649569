"""How ``/admin/audit`` shows an event to a person: readable action names and details as short lines.

Changes read like a record's history (``Title: old → new``), lists of record ids as ranges
(``4`` en dash ``6``), and an action this module does not know is shown as it is.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

EN_DASH = "\u2013"  # between the ends of a range of ids: 4 to 6

ACTIONS = {
    "record.created": "Record added",
    "record.updated": "Record changed",
    "record.deleted": "Record deleted",
    "record.restored": "Record restored",
    "records.imported": "Records imported",
    "records.import_interrupted": "Import interrupted",
    "collection.created": "Collection created",
    "collection.updated": "Collection changed",
    "collection.deleted": "Collection deleted",
    "user.created": "User added",
    "user.updated": "User changed",
    "user.role_changed": "Role changed",
    "user.enabled": "User enabled",
    "user.disabled": "User disabled",
    "user.deleted": "User deleted",
    "user.password_reset": "Password reset by an admin",
    "user.password_changed": "Password changed",
    "user.password_change_failed": "Password change refused",
    "user.signed_out_everywhere": "Signed out everywhere",
    "role.created": "Role added",
    "role.deleted": "Role removed",
    "token.created": "API token created",
    "token.revoked": "API token revoked",
    "sign_in.success": "Signed in",
    "sign_in.failed": "Sign-in failed",
    "sign_in.locked": "Sign-in locked",
    "settings.changed": "Settings changed",
    "job.updated": "Job changed",
    "job.run_requested": "Job run requested",
    "setup.completed": "First admin set up",
}
# Detail keys the target column already says, by action prefix.
_REDUNDANT = {"record.": {"collection", "id", "fields"}, "records.": {"collection"}}
_LONGEST = 120


def action_label(action: str) -> str:
    """``record.updated`` -> ``"Record changed"``; an unknown action as it is."""
    return ACTIONS.get(action, action)


def id_ranges(ids: list[int]) -> str:
    """``[4, 5, 6, 9]`` -> ``"4-6, 9"`` (with an en dash)."""
    numbers = sorted(set(ids))
    runs: list[str] = []
    start = previous = None
    for number in [*numbers, None]:
        if number is not None and previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            runs.append(str(start) if start == previous else f"{start}{EN_DASH}{previous}")
        start = previous = number
    return ", ".join(runs)


def _key(name: str) -> str:
    text = str(name).replace("_", " ")
    return text[:1].upper() + text[1:]


def _value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_value(item) for item in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{_key(k)}: {_value(v)}" for k, v in value.items()) if value else "none"
    text = str(value)
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


def describe_details(action: str, details: Any) -> list[str]:
    """The lines shown for an event's details."""
    if not isinstance(details, dict):
        return [] if details in (None, "", {}) else [_value(details)]
    skip = next((keys for prefix, keys in _REDUNDANT.items() if action.startswith(prefix)), set())
    lines: list[str] = []
    for key, value in details.items():
        if key in skip:
            continue
        if key == "changes" and isinstance(value, dict):
            lines += [
                f"{_key(field)}: {_value(pair[0])} → {_value(pair[1])}"
                if _is_pair(pair)
                else f"{_key(field)}: {_value(pair)}"
                for field, pair in value.items()
            ]
        elif key == "ids" and isinstance(value, list) and all(isinstance(i, int) for i in value):
            # Imports note their first and last id: the records in between are theirs too.
            shown = (
                id_ranges(list(range(value[0], value[1] + 1)))
                if len(value) == 2 and value[0] <= value[1]
                else id_ranges(value)
            )
            lines.append(f"Records: {shown}")
        elif key == "values" and isinstance(value, dict):
            lines += [f"{_key(name)}: {_value(v)}" for name, v in value.items()]
        elif key == "changed" and isinstance(details.get("values"), dict):
            hidden = [name for name in value if name not in details["values"]]
            if hidden:
                lines.append(f"Also changed (secret): {_value(hidden)}")
        elif key in ("label", "permissions") and _is_pair(value) and action.endswith(".updated"):
            lines.append(f"{_key(key)}: {_value(value[0])} → {_value(value[1])}")
        elif key == "renamed" and isinstance(value, dict):
            lines += [f"Renamed: {old} → {new}" for old, new in value.items()]
        elif key in ("added", "removed") and isinstance(value, list) and not value:
            continue
        else:
            lines.append(f"{_key(key)}: {_value(value)}")
    return lines


def init_app(app: Flask) -> None:
    app.add_template_filter(action_label, "action_label")
    app.add_template_filter(describe_details, "audit_details")
