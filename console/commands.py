"""``appliance console``: the desktop face's contribution to the ``appliance`` command."""

from __future__ import annotations

import sys

import click

from appliance.cli.common import current_home, home_option


@click.command("console")
@home_option
def console() -> None:
    """Open the desktop console."""
    # Imported here, not at the top: `appliance --help` loads this command, and must not load Qt.
    from console.app import run_console

    sys.exit(run_console(current_home()))
