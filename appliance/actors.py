"""Who acts: the one actor type every service takes, the system actor, and the admin role.

A service takes any object with an ``id``, a ``role`` and an ``email``: a
signed-in :class:`~appliance.storage.models.User` works as it is, and so does
an :class:`Actor` made for the command line or the control token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ADMIN_ROLE = "admin"


class ActorLike(Protocol):
    """What a service needs to know of whoever acts."""

    @property
    def id(self) -> int | None: ...

    @property
    def role(self) -> str: ...

    @property
    def email(self) -> str: ...


@dataclass(frozen=True)
class Actor:
    """Who acts: a user's ``id``, ``role`` and ``email``. The control token acts as :data:`SYSTEM`."""

    id: int | None
    role: str
    email: str = ""


SYSTEM = Actor(None, ADMIN_ROLE, "control")


def is_admin(actor: object) -> bool:
    """Whether ``actor`` acts with the admin role."""
    return getattr(actor, "role", None) == ADMIN_ROLE
