"""Field rules in a collection's permissions: checking them, and keeping them in step with its fields.

Under the key ``"fields"`` a collection's permissions may hold, per role, the
fields it never sees and those it may not set:
``{"viewer": {"hidden": ["salary"]}, "editor": {"read_only": ["salary"]}}``.
What they mean for a caller is :func:`appliance.collections.access.field_rules`;
this module only checks and carries them (:mod:`appliance.collections.definitions`
calls it when a definition is saved).
"""

from __future__ import annotations

from typing import Any

from appliance.accounts.roles import role_exists
from appliance.actors import ADMIN_ROLE

# The key of the permissions that holds the field rules (so no role may be called so).
FIELD_RULES_KEY = "fields"
FIELD_RULE_KINDS = ("hidden", "read_only")


def parse_field_rules(raw: Any, errors: dict[str, str], field_names: list[str]) -> dict[str, dict[str, list[str]]]:
    """``{"role": {"hidden": [...], "read_only": [...]}}`` checked against the roles and ``field_names``;
    each list in field order, empty ones and roles without rules left out. A problem is put in ``errors``
    under ``permissions.fields`` (and ``{}`` returned): an unknown role, ``admin`` (admins see and change
    everything), an unknown kind or field, a field both hidden and read-only."""
    key = f"permissions.{FIELD_RULES_KEY}"
    shape = 'Give field rules as {"role": {"hidden": ["field"], "read_only": ["field"]}}.'
    if not isinstance(raw, dict):
        errors[key] = shape
        return {}
    out: dict[str, dict[str, list[str]]] = {}
    known = set(field_names)
    for role, rules in raw.items():
        if not isinstance(role, str) or not role_exists(role):
            errors[key] = f"There is no role called {str(role)[:40]!r}."
            return {}
        if role == ADMIN_ROLE:
            errors[key] = "Admins see and change every field; give no field rules for 'admin'."
            return {}
        if not isinstance(rules, dict) or set(rules) - set(FIELD_RULE_KINDS):
            errors[key] = f"The field rules of {role!r}: {shape}"
            return {}
        cleaned: dict[str, list[str]] = {}
        for kind in FIELD_RULE_KINDS:
            names = rules.get(kind) or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                errors[key] = f"The {kind} fields of {role!r} must be a list of field names."
                return {}
            unknown = [n for n in names if n not in known]
            if unknown:
                errors[key] = f"The {kind} fields of {role!r} name no field of this collection: {unknown[0][:60]!r}."
                return {}
            if names:
                cleaned[kind] = [n for n in field_names if n in set(names)]
        both = set(cleaned.get("hidden", ())) & set(cleaned.get("read_only", ()))
        if both:
            errors[key] = f"{sorted(both)[0]!r} is both hidden and read-only for {role!r}; choose one."
            return {}
        if cleaned:
            out[role] = cleaned
    return out


def carry_field_rules(permissions: dict[str, Any], renamed: dict[str, str], removed: list[str]) -> dict[str, Any]:
    """``permissions`` with the field rules following renamed fields and forgetting removed ones."""
    rules = permissions.get(FIELD_RULES_KEY)
    if not rules:
        return permissions
    carried: dict[str, dict[str, list[str]]] = {}
    for role, kinds in rules.items():
        kept = {kind: [renamed.get(n, n) for n in names if n not in removed] for kind, names in kinds.items()}
        kept = {kind: names for kind, names in kept.items() if names}
        if kept:
            carried[role] = kept
    out = {k: v for k, v in permissions.items() if k != FIELD_RULES_KEY}
    if carried:
        out[FIELD_RULES_KEY] = carried
    return out
