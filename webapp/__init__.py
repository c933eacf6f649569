"""The Flask application of Office Appliance: pages, admin pages and the JSON API."""

from __future__ import annotations

from flask import Flask

from appliance.config.home import Instance
from appliance.server.metrics import MetricsRecorder
from appliance.server.run_files import ServerRuntime
from appliance.storage.db import database, open_database
from webapp import (
    account_agents,
    admin_agents,
    admin_audit,
    admin_collections,
    admin_invites,
    admin_ops,
    admin_rules,
    admin_settings,
    admin_users,
    admin_webhooks,
    api_agents,
    api_audit,
    api_backups,
    api_collections,
    api_csv,
    api_files,
    api_jobs,
    api_links,
    api_records,
    api_rules,
    api_two_factor,
    api_users,
    api_webhooks,
    auth,
    errors,
    health,
    home,
    layout,
    mcp_endpoint,
    observe,
    pages_auth,
    pages_csv,
    pages_links,
    pages_records,
    pages_two_factor,
    security,
    strict_input,
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
    strict_input.init_app(app)  # before any route: ids in paths, JSON and multipart bodies read strictly
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
    pages_two_factor.init_app(app)
    app.register_blueprint(api_two_factor.bp)
    app.register_blueprint(admin_users.bp)
    app.register_blueprint(api_users.bp)
    # One-time account links: invitations and password resets (pages, admin pages, API).
    app.register_blueprint(pages_links.bp)
    admin_invites.init_app(app)
    app.register_blueprint(api_links.bp)

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

    # Webhooks: API, admin pages, status section (deliveries run in the server's parent process).
    api_webhooks.init_app(app)
    admin_webhooks.init_app(app)
    app.register_blueprint(api_webhooks.bp)
    app.register_blueprint(admin_webhooks.bp)

    # Automation rules: API and admin pages (rules run in the server's parent process).
    admin_rules.init_app(app)
    app.register_blueprint(api_rules.bp)
    app.register_blueprint(admin_rules.bp)

    # AI agents: writes held for an admin's approval (page and API).
    admin_agents.init_app(app)
    account_agents.init_app(app)
    app.register_blueprint(api_agents.bp)

    # AI agents: /mcp is answered in front of Flask (see webapp/mcp_endpoint.py).
    mcp_endpoint.init_app(app)

    @app.teardown_appcontext
    def close_database(_exc: BaseException | None) -> None:
        if not database.is_closed():
            database.close()

    return app


__all__ = ["create_app"]
