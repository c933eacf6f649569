"""The Flask application of Office Appliance: pages, admin pages and the JSON API."""

from __future__ import annotations

from flask import Flask

from appliance.config.home import Instance
from appliance.server.metrics import MetricsRecorder
from appliance.server.run_files import ServerRuntime
from appliance.storage.db import database, open_database
from webapp import (
    admin_audit,
    admin_collections,
    admin_ops,
    admin_settings,
    admin_users,
    api_audit,
    api_backups,
    api_collections,
    api_csv,
    api_files,
    api_jobs,
    api_records,
    api_users,
    auth,
    errors,
    health,
    home,
    layout,
    observe,
    pages_auth,
    pages_csv,
    pages_records,
    security,
    system,
)


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

    errors.init_app(app)
    observe.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(system.bp)

    # Accounts and security: CSRF and headers first, then sessions, then the pages and API.
    security.init_app(app)
    layout.init_app(app)
    auth.init_app(app)
    app.register_blueprint(home.bp)
    app.register_blueprint(pages_auth.bp)
    app.register_blueprint(admin_users.bp)
    app.register_blueprint(api_users.bp)

    # Data: collections, records, files, audit log.
    app.register_blueprint(api_collections.bp)
    app.register_blueprint(api_records.bp)
    app.register_blueprint(api_files.bp)
    app.register_blueprint(api_audit.bp)

    # Staff record pages: lists, record forms, a record with its history.
    app.register_blueprint(pages_records.bp)

    # CSV import/export and the admin pages for collections, the audit log and settings.
    app.register_blueprint(api_csv.bp)
    app.register_blueprint(pages_csv.bp)
    admin_collections.init_app(app)
    admin_audit.init_app(app)
    admin_settings.init_app(app)

    # Backups and scheduled jobs: API, admin pages, status sections.
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


__all__ = ["create_app"]
