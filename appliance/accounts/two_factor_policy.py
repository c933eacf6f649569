"""Who must sign in with two factors (the ``require_two_factor`` setting), and each user's sign-in state
as admins see it (two-factor on, locked out).

``require_two_factor`` is ``none``, ``admins`` (the default of a new home)
or ``everyone``. A home created before two-factor existed keeps signing in
as before: migration 0011 notes such a home in ``runtime_setting``, and
:func:`pin_policy_of_existing_home` (run when the web app starts) writes
``require_two_factor = "none"`` into its settings file once, where the admin
sees it and may change it. API tokens are separate credentials: the policy
never stops a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import peewee

from appliance.accounts.throttle import locked_accounts
from appliance.accounts.totp import totp_enabled, users_with_totp
from appliance.accounts.users import serialize_user
from appliance.actors import ADMIN_ROLE
from appliance.config.settings import Settings, write_settings
from appliance.storage.db import database
from appliance.storage.models import User

SETTING = "require_two_factor"
NONE, ADMINS, EVERYONE = "none", "admins", "everyone"


def must_use_two_factor(user: User, policy: str) -> bool:
    """Whether the policy requires two-factor of ``user``."""
    return policy == EVERYONE or (policy == ADMINS and user.role == ADMIN_ROLE)


def needs_two_factor_setup(user: User, policy: str) -> bool:
    """Whether ``user`` must set two-factor up before using the pages (required, and not on yet)."""
    return must_use_two_factor(user, policy) and not totp_enabled(user.id)


def _runtime_table() -> peewee.Table:
    return peewee.Table("runtime_setting").bind(database)


def pin_policy_of_existing_home(settings_file: Path, settings: Settings) -> bool:
    """For a home that had users before two-factor existed (noted by migration 0011) and whose
    settings name no ``require_two_factor``: write ``none`` to the file and into ``settings``;
    whether it did. Safe to run in every worker (the note is removed once the file holds the value)."""
    table = _runtime_table()
    row = table.select(table.c.value).where(table.c.key == SETTING).first()
    if row is None:
        return False
    if settings.sources.get(SETTING, "default") == "default":
        write_settings(settings_file, {SETTING: row["value"]})
        settings.values[SETTING] = row["value"]
        settings.sources[SETTING] = str(settings_file)
        pinned = True
    else:
        pinned = False  # the admin chose already: the file or the environment wins
    table.delete().where(table.c.key == SETTING).execute()
    return pinned


def serialize_users_for_admins(users: Iterable[User]) -> list[dict[str, Any]]:
    """Users as the admin listing shows them: :func:`serialize_user` plus ``totp`` (two-factor on) and
    ``locked`` (a live sign-in lock-out), in two queries for the whole page."""
    people = list(users)
    with_totp = users_with_totp(user.id for user in people)
    locked = locked_accounts(user.email for user in people)
    return [{**serialize_user(u), "totp": u.id in with_totp, "locked": u.email in locked} for u in people]
