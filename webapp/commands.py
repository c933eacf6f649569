"""``appliance serve``: the web face's contribution to the ``appliance`` command."""

from __future__ import annotations

import sys

import click

from appliance.cli import current_instance, fail, home_option
from appliance.errors import ApplianceError
from appliance.server import run_server

APP_FACTORY = "webapp:create_app"


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
        code = run_server(instance, APP_FACTORY, host=host, port=port, say=lambda line: click.echo(line))
    except ApplianceError as exc:
        fail(exc.message)
    sys.exit(code)
