"""Liveness and readiness, with no authentication."""

from __future__ import annotations

import logging
import time

import peewee
from flask import Blueprint, jsonify

from appliance.storage.db import database, ping
from appliance.storage.migrate import pending_migrations

bp = Blueprint("health", __name__)
log = logging.getLogger("webapp.health")

# Readiness is asked often (load balancers, the console); the migration check
# lists files and reads a table, so a positive answer is kept for a moment.
_READY_CACHE_SECONDS = 5.0
_ready_until = 0.0


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    global _ready_until
    try:
        ping()
        if time.monotonic() >= _ready_until:
            pending = pending_migrations(database.obj)
            if pending:
                return jsonify(
                    status="unavailable", reason=f"{len(pending)} migration(s) pending", pending=pending
                ), 503
            _ready_until = time.monotonic() + _READY_CACHE_SECONDS
    except peewee.DatabaseError:
        # The driver's message may name hosts and users; it goes to the log, not to anyone asking.
        log.exception("readiness check: the database does not answer")
        return jsonify(status="unavailable", reason="the database does not answer"), 503
    return jsonify(status="ready")
