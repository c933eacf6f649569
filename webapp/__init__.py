"""The Flask application of Office Appliance: pages, admin pages and the JSON API."""

from __future__ import annotations

import hmac

from flask import Flask, g, request

from appliance.config.home import Instance
from appliance.server.metrics import MetricsRecorder
from appliance.server.runner import ServerRuntime
from appliance.storage.db import database, open_database


def create_app(instance: Instance, runtime: ServerRuntime | None = None) -> Flask:
    """Build the app for ``instance``.

    ``runtime`` is given by the server runner (worker slot, control token);
    without it (tests, scripts) metrics stay in memory and the control token
    is read from the home's run folder when a server wrote one.
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=instance.secret_key(),
        MAX_CONTENT_LENGTH=None,
        JSON_SORT_KEYS=False,
    )
    app.extensions["appliance.instance"] = instance
    app.extensions["appliance.runtime"] = runtime
    if database.obj is None:
        open_database(instance)

    if runtime is not None:
        recorder = MetricsRecorder(instance.paths.metrics_file, runtime.slot)
        recorder.start_flusher()
    else:
        recorder = MetricsRecorder(None, 0)
    app.extensions["appliance.metrics"] = recorder

    from webapp import errors, health, observe, system

    errors.init_app(app)
    observe.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(system.bp)

    # Accounts and security: CSRF and headers first, then sessions, then the pages and API.
    from webapp import admin_users, api_users, auth, home, layout, pages_auth, security

    security.init_app(app)
    layout.init_app(app)
    auth.init_app(app)
    app.register_blueprint(home.bp)
    app.register_blueprint(pages_auth.bp)
    app.register_blueprint(admin_users.bp)
    app.register_blueprint(api_users.bp)

    # Data: collections, records, files, audit log.
    from webapp import api_audit, api_collections, api_files, api_records

    app.register_blueprint(api_collections.bp)
    app.register_blueprint(api_records.bp)
    app.register_blueprint(api_files.bp)
    app.register_blueprint(api_audit.bp)

    # Staff record pages: lists, record forms, a record with its history.
    from webapp import pages_records

    app.register_blueprint(pages_records.bp)

    # CSV import/export and the admin pages for collections, the audit log and settings.
    from webapp import admin_audit, admin_collections, admin_settings, api_csv, pages_csv

    app.register_blueprint(api_csv.bp)
    app.register_blueprint(pages_csv.bp)
    admin_collections.init_app(app)
    admin_audit.init_app(app)
    admin_settings.init_app(app)

    # Backups and scheduled jobs: API, admin pages, status sections.
    from webapp import admin_ops, api_backups, api_jobs

    api_backups.init_app(app)
    admin_ops.init_app(app)
    app.register_blueprint(api_backups.bp)
    app.register_blueprint(api_jobs.bp)
    app.register_blueprint(admin_ops.bp)

    @app.teardown_appcontext
    def close_database(_exc: BaseException | None) -> None:
        if not database.is_closed():
            database.close()

    return app


def current_instance() -> Instance:
    from flask import current_app

    return current_app.extensions["appliance.instance"]


def control_token_matches(token: str) -> bool:
    """Whether ``token`` is this server's control token (constant-time)."""
    from flask import current_app

    runtime: ServerRuntime | None = current_app.extensions["appliance.runtime"]
    expected = runtime.control_token if runtime else None
    if expected is None:
        try:
            expected = current_instance().paths.control_token.read_text().strip()
        except OSError:
            return False
    return bool(token) and hmac.compare_digest(token.encode(), expected.encode())


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


__all__ = ["bearer_token", "control_token_matches", "create_app", "current_instance", "g"]
