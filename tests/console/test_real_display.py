"""The console opens a real window on a real X server (Xvfb), not only offscreen (issue 16, item 6).

Offscreen Qt needs none of the X11 libraries, so the rest of the console suite cannot see a desktop
where Qt aborts; this test runs ``appliance console`` as a person's launcher does, on a display.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pytest

from tests.conftest import APPLIANCE, clean_env
from tests.waiting import eventually

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xwininfo")),
    reason="needs Debian's xvfb and x11-utils (make test installs them)",
)


@pytest.fixture
def display():
    """A fresh Xvfb on a free display number (``-displayfd`` lets the server choose); yields ``":N"``."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as chosen:
        number = chosen.readline().strip()
    try:
        assert number.isdigit(), "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=10)


def _window_titles(display: str) -> str:
    result = subprocess.run(
        ["xwininfo", "-root", "-tree"],
        capture_output=True,
        text=True,
        env={**os.environ, "DISPLAY": display},
        timeout=10,
    )
    return result.stdout


def test_the_console_opens_its_window_on_a_real_x_display(display, home):
    env = clean_env(DISPLAY=display)
    env.pop("QT_QPA_PLATFORM", None)  # the suite runs Qt offscreen; this one must use the real xcb plugin
    console = subprocess.Popen(
        [*APPLIANCE, "console", "--home", str(home)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # A new home has no admin: the console opens with its first-run wizard.
        eventually(
            lambda: console.poll() is not None or "Set up Office Appliance" in _window_titles(display),
            timeout=60,
            message="the console's window never appeared on the display",
        )
        exited = console.poll()
    finally:
        console.terminate()
        try:
            _, errors = console.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            console.kill()
            _, errors = console.communicate(timeout=10)
    assert exited is None, f"the console exited with {exited}: {errors[-800:]}"
