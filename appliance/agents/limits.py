"""What an AI agent's token may spend, and the one-time handles that confirm a delete.

Both live in the database, so every worker process sees the same counts and
handles (a token's calls may land on any worker). A call is counted in a
``mcp_call`` row inside a write transaction that first counts the token's
recent rows, so two workers cannot both let the last allowed call through.
A confirm handle is stored as its SHA-256 digest, bound to the token and a
digest of the call's arguments; using it deletes its row, so it works once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.clock import as_stored
from appliance.errors import Throttled
from appliance.storage.db import write_transaction
from appliance.storage.models import McpCall, McpConfirmation

MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)
CONFIRM_VALID_FOR = dt.timedelta(minutes=5)
CONFIRM_PREFIX = "del_"


@dataclass(frozen=True)
class Limits:
    """A token's allowance: tool calls per rolling minute, record writes per rolling day."""

    calls_per_minute: int
    writes_per_day: int


def _retry_after(oldest: dt.datetime, window: dt.timedelta, now: dt.datetime) -> int:
    return max(1, math.ceil((oldest + window - now).total_seconds()))


def count_call(token_id: int, *, write: bool, limits: Limits, now: dt.datetime | None = None) -> None:
    """Count one call of the token (a record write when ``write``).

    Raises :class:`Throttled` with ``retry_after_seconds`` (when the oldest
    counted call leaves the window) when the token made ``calls_per_minute``
    calls in the last minute, or, for a write, ``writes_per_day`` writes in the
    last day; a refused call is not counted.
    """
    now = as_stored(now)
    with write_transaction():
        recent = McpCall.select(McpCall.at).where((McpCall.token_id == token_id) & (McpCall.at > now - MINUTE))
        if recent.count() >= limits.calls_per_minute:
            oldest = min(row.at for row in recent)
            seconds = _retry_after(oldest, MINUTE, now)
            raise Throttled(
                f"This token made {limits.calls_per_minute} calls in the last minute; retry in {seconds} seconds.",
                retry_after_seconds=seconds,
            )
        if write:
            writes = McpCall.select(McpCall.at).where(
                (McpCall.token_id == token_id) & McpCall.write & (McpCall.at > now - DAY)
            )
            if writes.count() >= limits.writes_per_day:
                oldest = min(row.at for row in writes)
                seconds = _retry_after(oldest, DAY, now)
                raise Throttled(
                    f"This token made {limits.writes_per_day} writes in the last day; retry in {seconds} seconds.",
                    retry_after_seconds=seconds,
                )
        McpCall.create(token_id=token_id, at=now, write=write)
        # Rows older than the longest window count for nothing any more.
        McpCall.delete().where((McpCall.token_id == token_id) & (McpCall.at <= now - DAY)).execute()


def _arguments_digest(arguments: Mapping[str, Any]) -> str:
    text = json.dumps(dict(arguments), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _handle_digest(handle: str) -> str:
    return hashlib.sha256(handle.encode("utf-8", "surrogatepass")).hexdigest()


def issue_confirmation(
    token_id: int, arguments: Mapping[str, Any], now: dt.datetime | None = None
) -> tuple[str, dt.datetime]:
    """A new one-time handle for the call ``arguments`` of the token; returns ``(handle, expires_at)``."""
    now = as_stored(now)
    handle = CONFIRM_PREFIX + secrets.token_urlsafe(24)
    expires_at = now + CONFIRM_VALID_FOR
    with write_transaction():
        McpConfirmation.delete().where(McpConfirmation.expires_at <= now).execute()
        McpConfirmation.create(
            digest=_handle_digest(handle),
            token_id=token_id,
            arguments=_arguments_digest(arguments),
            created_at=now,
            expires_at=expires_at,
        )
    return handle, expires_at


def use_confirmation(token_id: int, handle: Any, arguments: Mapping[str, Any], now: dt.datetime | None = None) -> bool:
    """Spend ``handle``: whether it was issued to this token for these same ``arguments``, unused and unexpired.

    A handle that is spent, expired, another token's or another call's is
    refused (``False``); one that matches is gone after this call.
    """
    if not isinstance(handle, str) or not handle.startswith(CONFIRM_PREFIX) or len(handle) > 200:
        return False
    now = as_stored(now)
    with write_transaction():
        spent = (
            McpConfirmation.delete()
            .where(
                (McpConfirmation.digest == _handle_digest(handle))
                & (McpConfirmation.token_id == token_id)
                & (McpConfirmation.arguments == _arguments_digest(arguments))
                & (McpConfirmation.expires_at > now)
            )
            .execute()
        )
    return bool(spent)
