"""Audit events: who did what to what, from where, and when.

One ``audit_event`` table for every issue's events. Record an event inside
the transaction of the change it describes, so both commit or neither does.
Actions are dotted names (``sign_in.success``, ``user.created``,
``token.revoked``); ``target`` names what was acted on (an email, ``token:12``).
Old events leave the table by retention (:func:`events_before`, :func:`delete_events`;
the ``cleanup`` job archives them to a CSV file first).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import peewee

from appliance.actors import ActorLike
from appliance.clock import as_stored, iso
from appliance.storage.db import database
from appliance.storage.models import AuditEvent

_DELETE_BATCH = 500  # ids per DELETE, under SQLite's limit of bound parameters


def _actor_fields(actor: ActorLike | str | None) -> tuple[int | None, str]:
    """``(actor_id, actor text)`` for a user (anything with ``id`` and ``email``), a label, or nobody."""
    if actor is None:
        return None, ""
    if isinstance(actor, str):
        return None, actor[:320]
    return getattr(actor, "id", None), str(getattr(actor, "email", ""))[:320]


def record_event(
    action: str,
    *,
    actor: ActorLike | str | None = None,
    target: str = "",
    address: str | None = None,
    details: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> AuditEvent:
    """Write one audit event and return it.

    ``actor`` is a user, a label such as ``"cli"`` or ``"setup"``, or ``None``
    for nobody known (a failed sign-in with an unknown email). Call it inside
    the caller's ``database.atomic()`` block.
    """
    actor_id, actor_text = _actor_fields(actor)
    return AuditEvent.create(
        at=as_stored(now),
        actor_id=actor_id,
        actor=actor_text,
        action=action,
        target=(target or "")[:400],
        address=(address or None) and address[:100],
        details=json.dumps(details or {}, default=str, sort_keys=True),
    )


def list_events(
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> peewee.ModelSelect[AuditEvent]:
    """Events matching every given filter, newest first (a query, ready for paging).

    ``actor`` matches the actor's email or label case-insensitively, ``action``
    exactly or as a prefix when it ends with ``.`` (``sign_in.``), ``target``
    exactly; ``since`` is inclusive and ``until`` exclusive.
    """
    query = AuditEvent.select()
    if actor:
        query = query.where(peewee.fn.LOWER(AuditEvent.actor) == actor.strip().lower())
    if action:
        if action.endswith("."):
            query = query.where(AuditEvent.action.startswith(action))
        else:
            query = query.where(AuditEvent.action == action)
    if target:
        query = query.where(AuditEvent.target == target)
    if since is not None:
        query = query.where(AuditEvent.at >= as_stored(since))
    if until is not None:
        query = query.where(AuditEvent.at < as_stored(until))
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def events_before(cutoff: dt.datetime) -> list[AuditEvent]:
    """Every event older than ``cutoff`` (exclusive), oldest first: those retention removes."""
    return list(AuditEvent.select().where(AuditEvent.at < as_stored(cutoff)).order_by(AuditEvent.id))


def delete_events(ids: Sequence[int]) -> int:
    """Delete the events ``ids`` (archived first by the caller) in one transaction; returns how many went."""
    deleted = 0
    with database.atomic():
        for start in range(0, len(ids), _DELETE_BATCH):
            deleted += AuditEvent.delete().where(AuditEvent.id.in_(ids[start : start + _DELETE_BATCH])).execute()
    return deleted


def serialize_event(event: AuditEvent) -> dict[str, Any]:
    """The audit item of API.md: ``id, actor, action, target, at, address, details``."""
    try:
        details = json.loads(event.details or "{}")
    except ValueError:
        details = {}
    return {
        "id": event.id,
        "actor": event.actor or None,
        "action": event.action,
        "target": event.target,
        "at": iso(event.at),
        "address": event.address,
        "details": details,
    }
