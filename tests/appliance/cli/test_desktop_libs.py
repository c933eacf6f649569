"""The desktop console says which system libraries Qt lacks, instead of Qt's abort (issue 16, item 6).

The missing library is made real, not faked: in a private mount namespace an overlay hides
``libxcb-cursor.so.0`` from the loader, as on a desktop that never installed ``libxcb-cursor0``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli.desktop_libs import (
    desktop_problem,
    install_command,
    missing_libraries,
    needs_xcb,
    plugin_files,
)
from appliance.cli.doctor import check_desktop
from tests.conftest import APPLIANCE, clean_env

LIB_DIR = Path("/usr/lib/x86_64-linux-gnu")
HIDDEN = "libxcb-cursor.so.0"


def _can_hide_a_library() -> bool:
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("unshare") is not None
        and (LIB_DIR / HIDDEN).exists()
        and bool(plugin_files())
    )


def _run_without_the_library(tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` (a shell line) in a mount namespace where ``libxcb-cursor.so.0`` does not exist."""
    upper, work = tmp_path / "up", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    os.mknod(upper / HIDDEN, 0o600 | 0o020000, os.makedev(0, 0))  # an overlay whiteout: the file is gone
    script = f"mount -t overlay overlay -o lowerdir={LIB_DIR},upperdir={upper},workdir={work} {LIB_DIR} && {command}"
    env = clean_env(DISPLAY=":99")
    env.pop("QT_QPA_PLATFORM", None)
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=120)


needs_root_namespace = pytest.mark.skipif(
    not _can_hide_a_library(), reason="needs root, unshare and Debian's libxcb-cursor0"
)


@needs_root_namespace
def test_qt_itself_aborts_without_the_library(tmp_path):
    # What a person got before the check: Qt's abort, naming no library.
    line = f"{sys.executable} -c 'from PySide6.QtWidgets import QApplication; QApplication([])'"
    result = _run_without_the_library(tmp_path, line)
    assert result.returncode in (134, -6), result.stderr[-500:]


@needs_root_namespace
def test_the_console_names_the_missing_library_and_the_command_that_installs_it(tmp_path, home):
    result = _run_without_the_library(tmp_path, f"{' '.join(APPLIANCE)} console --home {home}")
    assert result.returncode == 1, result.stderr[-500:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "libxcb-cursor.so.0" in lines[0] and "apt-get install -y libxcb-cursor0" in lines[0]


@needs_root_namespace
def test_doctor_warns_about_the_missing_library(tmp_path, home):
    result = _run_without_the_library(tmp_path, f"{' '.join(APPLIANCE)} doctor --home {home} --json")
    import json

    checks = {c["name"]: c for c in json.loads(result.stdout)}
    desktop = checks["desktop console"]
    assert desktop["status"] == "warn" and "libxcb-cursor.so.0" in desktop["message"]
    assert desktop["fix"].endswith("apt-get install -y libxcb-cursor0")


def test_nothing_is_missing_where_the_libraries_are_installed():
    if not plugin_files() or shutil.which("ldd") is None:
        pytest.skip("no PySide6 xcb plugin or no ldd here")
    assert missing_libraries() == []
    assert check_desktop()[0].status == "ok"


def test_a_library_the_loader_cannot_find_is_reported_by_its_soname(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or shutil.which("ldd") is None:
        pytest.skip("no C compiler or ldd here")
    (tmp_path / "dep.c").write_text("int dep(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text("int dep(void); int plugin(void) { return dep(); }\n")
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", "libgonexcb.so.0", "-Wl,-soname,libgonexcb.so.0", "dep.c"],
        cwd=tmp_path,
        check=True,
    )
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", "plugin.so", "plugin.c", "-L.", "-l:libgonexcb.so.0"], cwd=tmp_path, check=True
    )
    (tmp_path / "libgonexcb.so.0").unlink()
    plugin = tmp_path / "plugin.so"
    assert missing_libraries([plugin]) == ["libgonexcb.so.0"]
    problem = desktop_problem({"DISPLAY": ":0"}, files=[plugin])
    assert problem is not None and "libgonexcb.so.0" in problem and "install the packages" in problem
    assert desktop_problem({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, files=[plugin]) is None


def test_install_commands_name_each_package_managers_packages():
    root = [] if os.geteuid() == 0 else ["sudo"]
    libs = ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    assert install_command(libs, "apt") == [*root, "apt-get", "install", "-y", "libxcb-cursor0", "libxcb-icccm4"]
    assert install_command(libs, "dnf") == [*root, "dnf", "install", "-y", "xcb-util-cursor", "xcb-util-wm"]
    assert install_command(["libunknown.so.9"], "apt") is None


def test_only_an_x11_session_needs_the_xcb_plugin():
    assert needs_xcb({"DISPLAY": ":0"}) is sys.platform.startswith("linux")
    assert not needs_xcb({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"})
    assert not needs_xcb({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"})
    assert not needs_xcb({})
