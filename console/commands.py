"""``appliance console``: the desktop face's contribution to the ``appliance`` command."""

from __future__ import annotations

import shutil
import subprocess
import sys

import click

from appliance.cli.common import current_home, fail, home_option
from appliance.cli.desktop_libs import desktop_problem


def _tell_the_desktop(message: str) -> None:
    """Show ``message`` where a person started the console from a launcher (no terminal to read): a desktop
    notification, or a plain X11 message box. Best effort; never raises."""
    if sys.stderr.isatty():
        return
    for argv in (
        ["notify-send", "--app-name=Office Appliance", "Office Appliance cannot start", message],
        ["zenity", "--error", "--title=Office Appliance", f"--text={message}"],
        ["xmessage", "-center", f"Office Appliance: {message}"],
    ):
        if shutil.which(argv[0]):
            try:
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            except OSError:
                continue
            return


@click.command("console")
@home_option
def console() -> None:
    """Open the desktop console."""
    # Before Qt is loaded: without its X11 libraries Qt aborts the process (exit 134) with a message that
    # names none of them; this says which are missing and how to install them, in one line.
    problem = desktop_problem()
    if problem:
        _tell_the_desktop(problem)
        fail(problem)
    # Imported here, not at the top: `appliance --help` loads this command, and must not load Qt.
    from console.app import run_console

    sys.exit(run_console(current_home()))
