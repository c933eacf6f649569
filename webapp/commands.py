"""``appliance serve``: the web face's contribution to the ``appliance`` command."""

from __future__ import annotations

import sys

import click

from appliance.accounts.setup_links import VALID_FOR, create_setup_link
from appliance.cli.common import current_instance, fail, home_option
from appliance.errors import ApplianceError
from appliance.server.runner import run_server
from appliance.storage.db import database

APP_FACTORY = "webapp:create_app"


def _offer_setup_link(url: str) -> None:
    """On a new instance with no admin, print a one-time link that creates the first one."""
    with database.connection_context():
        secret = create_setup_link()
    if secret:
        minutes = int(VALID_FOR.total_seconds() // 60)
        click.echo(f"No admin yet: create the first admin at {url}setup/{secret} (works once, for {minutes} minutes)")


@click.command("serve")
@home_option
@click.option("--host", default=None, help="Address to bind (default: the 'host' setting, 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on (default: the 'port' setting; 0 picks a free one).",
)
def serve(host: str | None, port: int | None) -> None:
    """Run the server in the foreground until Ctrl+C or SIGTERM."""
    try:
        instance = current_instance()
        code = run_server(
            instance, APP_FACTORY, host=host, port=port, say=lambda line: click.echo(line), on_ready=_offer_setup_link
        )
    except ApplianceError as exc:
        fail(exc.message, exc.exit_status)  # PortInUse has its own status: the console does not retry it
    sys.exit(code)
