"""installer/install.py on Linux: a real virtual environment in a temporary prefix, then --uninstall.

The install is real (pip resolves and installs every dependency into the new
virtual environment; pip's configured wheel cache/index makes it take seconds
to tens of seconds). Service files are written but never enabled here
(``--no-enable``): CI has no systemd user session.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, clean_env

INSTALLER = REPO / "installer" / "install.py"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CI install test runs on Linux")


def run_installer(*args: str, tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = clean_env(XDG_DATA_HOME=str(tmp_path / "xdg-data"), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"))
    return subprocess.run(
        [sys.executable, str(INSTALLER), *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp_path
    )


def test_install_then_uninstall_removes_the_program_and_keeps_the_home(tmp_path: Path) -> None:
    prefix, home = tmp_path / "prefix", tmp_path / "data home"
    applications = tmp_path / "xdg-data" / "applications"
    units = tmp_path / "xdg-config" / "systemd" / "user"

    result = run_installer("--prefix", str(prefix), "--home", str(home), "--service", "--no-enable", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    appliance = prefix / "venv" / "bin" / "appliance"
    version = subprocess.run([str(appliance), "--version"], capture_output=True, text=True, env=clean_env())
    assert version.returncode == 0 and "appliance" in version.stdout
    # A real (not editable) install: the code runs from the prefix, not from the checkout.
    where = subprocess.run(
        [str(prefix / "venv" / "bin" / "python"), "-c", "import appliance; print(appliance.__file__)"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert where.stdout.strip().startswith(str(prefix / "venv")), where.stdout + where.stderr
    assert not (REPO / "build").exists(), "the installer must not leave build/ in the source folder"

    assert (home / "secret.key").exists() and (home / "db" / "appliance.sqlite3").exists()
    secret = (home / "secret.key").read_bytes()
    doctor = subprocess.run(
        [str(appliance), "doctor", "--home", str(home)],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert "] migrations: the schema is up to date" in doctor.stdout, doctor.stdout

    desktop = (applications / "office-appliance.desktop").read_text()
    [exec_line] = [line for line in desktop.splitlines() if line.startswith("Exec=")]
    assert shlex.split(exec_line.removeprefix("Exec=")) == [str(appliance), "console", "--home", str(home)]
    assert "Type=Application" in desktop

    unit = (units / "office-appliance.service").read_text()
    [exec_start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert shlex.split(exec_start.removeprefix("ExecStart=")) == [str(appliance), "serve", "--home", str(home)]
    for line in ("Restart=on-failure", "KillSignal=SIGTERM", "WantedBy=default.target"):
        assert line in unit.splitlines()
    assert "not enabling it (--no-enable)" in result.stdout

    manifest = json.loads((prefix / "install-manifest.json").read_text())
    assert manifest["home"] == str(home)

    result = run_installer("--uninstall", "--prefix", str(prefix), "--no-enable", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not prefix.exists()
    assert not (applications / "office-appliance.desktop").exists()
    assert not (units / "office-appliance.service").exists()
    assert (home / "secret.key").read_bytes() == secret
    assert (home / "db" / "appliance.sqlite3").exists()
    assert f"kept your data in {home}" in result.stdout


def test_uninstall_without_an_install_says_so_and_fails(tmp_path: Path) -> None:
    result = run_installer("--uninstall", "--prefix", str(tmp_path / "nothing"), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "nothing to uninstall" in result.stderr


def test_install_refuses_a_source_that_is_not_the_project(tmp_path: Path) -> None:
    result = run_installer("--prefix", str(tmp_path / "p"), "--source", str(tmp_path), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "is not the Office Appliance project" in result.stderr
    assert not (tmp_path / "p").exists()


def test_install_sh_finds_a_python_and_passes_the_arguments_on(tmp_path: Path) -> None:
    result = subprocess.run(
        ["sh", str(REPO / "installer" / "install.sh"), "--help"], capture_output=True, text=True, env=clean_env()
    )
    assert result.returncode == 0, result.stderr
    assert "--uninstall" in result.stdout and "--service" in result.stdout
