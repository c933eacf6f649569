#!/usr/bin/env python3
"""One-step install of Office Appliance for the current user (Linux, macOS, Windows).

Standard library only: it runs before any virtual environment exists.

    python3 installer/install.py [--home DIR] [--service]      install or upgrade
    python3 installer/install.py --uninstall                    remove what was installed

It creates a virtual environment under ``--prefix``, installs the project
into it with pip, runs ``appliance init``, and installs a desktop launcher for
the console (a ``.desktop`` file on Linux, an app bundle on macOS, a Start
menu shortcut on Windows). ``--service`` also installs a user service that
starts the server at boot or log-in (a systemd user unit, a launchd agent, a
scheduled task). Everything written is recorded in
``<prefix>/install-manifest.json``; ``--uninstall`` removes exactly that and
never the instance home (the data).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

APP_ID = "office-appliance"
APP_NAME = "Office Appliance"
MANIFEST = "install-manifest.json"
UNIT_NAME = f"{APP_ID}.service"
LAUNCHD_LABEL = "org.office-appliance.server"
TASK_NAME = "Office Appliance server"
MIN_PYTHON = (3, 11)

IS_WINDOWS = os.name == "nt"
IS_MAC = sys.platform == "darwin"


class InstallError(Exception):
    """A step failed; the message says which and what to do."""


def say(message: str) -> None:
    print(f"install: {message}", flush=True)


# --- where things go -------------------------------------------------------------


def _xdg(name: str, fallback: str) -> Path:
    value = os.environ.get(name)
    return Path(value) if value else Path.home() / fallback


def default_prefix() -> Path:
    """Where the virtual environment and the manifest live (never the data home)."""
    if IS_WINDOWS:
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / f"{APP_ID}-app"
    if IS_MAC:
        return Path.home() / "Library" / "Application Support" / f"{APP_ID}-app"
    return _xdg("XDG_DATA_HOME", ".local/share") / f"{APP_ID}-app"


def default_desktop_dir() -> Path:
    if IS_WINDOWS:
        appdata = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
        return appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs"
    if IS_MAC:
        return Path.home() / "Applications"
    return _xdg("XDG_DATA_HOME", ".local/share") / "applications"


def default_service_dir() -> Path:
    if IS_MAC:
        return Path.home() / "Library" / "LaunchAgents"
    return _xdg("XDG_CONFIG_HOME", ".config") / "systemd" / "user"


def venv_bin(venv: Path) -> Path:
    return venv / ("Scripts" if IS_WINDOWS else "bin")


def venv_python(venv: Path) -> Path:
    return venv_bin(venv) / ("python.exe" if IS_WINDOWS else "python")


def venv_appliance(venv: Path) -> Path:
    return venv_bin(venv) / ("appliance.exe" if IS_WINDOWS else "appliance")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


# --- the manifest ------------------------------------------------------------------


class Manifest:
    """What this installer wrote, saved after every step so a failed install can still be undone."""

    def __init__(self, prefix: Path, data: dict | None = None):
        self.prefix = prefix
        self.path = prefix / MANIFEST
        self.data = data or {"version": 1, "files": [], "dirs": [], "services": []}

    @classmethod
    def load(cls, prefix: Path) -> Manifest | None:
        path = prefix / MANIFEST
        if not path.exists():
            return None
        try:
            return cls(prefix, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise InstallError(f"cannot read {path}: {exc}") from None

    def save(self) -> None:
        self.prefix.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)

    def add(self, kind: str, value: object) -> None:
        if value not in self.data[kind]:
            self.data[kind].append(value)
        self.save()


# --- steps -------------------------------------------------------------------------------


def run(argv: list[str | os.PathLike[str]], what: str, **kwargs: object) -> subprocess.CompletedProcess:
    """Run a command; on failure raise :class:`InstallError` with its output."""
    shown = " ".join(shlex.quote(str(a)) for a in argv)
    try:
        result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    except OSError as exc:
        raise InstallError(f"{what} failed: cannot run {shown}: {exc.strerror}") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise InstallError(f"{what} failed (exit status {result.returncode}): {shown}\n{output}")
    return result


def create_venv(venv: Path, python: str, system_site_packages: bool) -> None:
    if venv_python(venv).exists():
        say(f"reusing the virtual environment {venv}")
        return
    say(f"creating the virtual environment {venv}")
    argv = [python, "-m", "venv", venv]
    if system_site_packages:
        argv.insert(3, "--system-site-packages")
    run(argv, "creating the virtual environment")


# Never copied into the build: checkouts, caches and developer environments.
_NOT_SOURCE_ANYWHERE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
)


def _not_source(source: Path):
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(_NOT_SOURCE_ANYWHERE(folder, names))
        if Path(folder) == source:
            skipped.add("home")  # a developer's instance home (see .gitignore): data, not code
        return skipped

    return ignore


def install_project(venv: Path, source: Path, pip_args: list[str]) -> None:
    """pip-install the project (not editable) with its dependencies.

    It is built from a clean copy of ``source``: the source folder may be
    read-only, and setuptools would otherwise leave ``build/`` there, whose
    stale files could end up in the next build.
    """
    say(f"installing {source} into {venv} (pip; this downloads the dependencies the first time)")
    with tempfile.TemporaryDirectory(prefix="office-appliance-build-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(source, copy, ignore=_not_source(source))
        run(
            [venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check", "--upgrade", *pip_args, copy],
            "installing the project",
        )
    if not venv_appliance(venv).exists():
        raise InstallError(f"pip finished but {venv_appliance(venv)} is missing")


def resolve_home(venv: Path, home: str | None) -> Path:
    """The home to use: ``--home``, else what the installed ``appliance`` resolves (APPLIANCE_HOME or default)."""
    if home:
        return Path(home).expanduser().absolute()
    result = run(
        [venv_python(venv), "-c", "from appliance.config.home import resolve_home; print(resolve_home())"],
        "finding the default home",
    )
    return Path(result.stdout.strip())


def init_home(venv: Path, home: Path) -> None:
    say(f"initialising the home {home}")
    result = run([venv_appliance(venv), "init", "--home", home], "appliance init")
    for line in result.stdout.splitlines():
        say(f"  {line}")


def _write(path: Path, text: str, manifest: Manifest, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mode is not None:
        path.chmod(mode)
    manifest.add("files", str(path))


def _quote_desktop_arg(arg: str) -> str:
    """Quote one Exec= argument as the Desktop Entry spec asks."""
    if not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`%"):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return f'"{escaped}"'.replace("%", "%%")


def install_launcher(venv: Path, home: Path, desktop_dir: Path, manifest: Manifest) -> Path:
    """The console launcher for this platform; returns its path."""
    appliance = str(venv_appliance(venv))
    if IS_WINDOWS:  # pragma: no cover - Windows only
        link = desktop_dir / f"{APP_NAME}.lnk"
        desktop_dir.mkdir(parents=True, exist_ok=True)
        pythonw = venv_bin(venv) / "pythonw.exe"
        script = (
            "$s = (New-Object -ComObject WScript.Shell).CreateShortcut($env:OA_LINK); "
            "$s.TargetPath = $env:OA_TARGET; $s.Arguments = $env:OA_ARGS; "
            "$s.WorkingDirectory = $env:OA_HOME; $s.Description = 'Office Appliance console'; $s.Save()"
        )
        env = dict(
            os.environ,
            OA_LINK=str(link),
            OA_TARGET=str(pythonw),
            OA_ARGS=f'-m appliance console --home "{home}"',
            OA_HOME=str(home),
        )
        run(["powershell", "-NoProfile", "-NonInteractive", "-Command", script], "creating the shortcut", env=env)
        manifest.add("files", str(link))
        return link
    if IS_MAC:  # pragma: no cover - macOS only
        bundle = desktop_dir / f"{APP_NAME}.app"
        contents = bundle / "Contents"
        info = {
            "CFBundleName": APP_NAME,
            "CFBundleIdentifier": "org.office-appliance.console",
            "CFBundleExecutable": APP_ID,
            "CFBundlePackageType": "APPL",
            "CFBundleShortVersionString": "1.0",
        }
        (contents / "MacOS").mkdir(parents=True, exist_ok=True)
        manifest.add("dirs", str(bundle))
        (contents / "Info.plist").write_bytes(plistlib.dumps(info))
        launcher = f"#!/bin/sh\nexec {shlex.quote(appliance)} console --home {shlex.quote(str(home))}\n"
        (contents / "MacOS" / APP_ID).write_text(launcher, encoding="utf-8")
        (contents / "MacOS" / APP_ID).chmod(0o755)
        return bundle
    entry = desktop_dir / f"{APP_ID}.desktop"
    exec_line = " ".join(_quote_desktop_arg(a) for a in (appliance, "console", "--home", str(home)))
    text = "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Version=1.0",
            f"Name={APP_NAME}",
            "Comment=Start, stop and watch the Office Appliance server",
            f"Exec={exec_line}",
            f"TryExec={appliance}",
            "Icon=network-server",
            "Terminal=false",
            "Categories=Office;Network;",
            "StartupNotify=true",
            "",
        ]
    )
    _write(entry, text, manifest, 0o755)
    return entry


def systemd_unit(venv: Path, home: Path) -> str:
    """A systemd user unit running the server in the foreground; SIGTERM stops it gracefully."""
    exec_start = " ".join(shlex.quote(a) for a in (str(venv_appliance(venv)), "serve", "--home", str(home)))
    return "\n".join(
        [
            "[Unit]",
            f"Description={APP_NAME} server",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={exec_start}",
            "Restart=on-failure",
            "RestartSec=5",
            "KillSignal=SIGTERM",
            "KillMode=mixed",
            # Waits for shutdown_grace_seconds plus the workers' own stop before SIGKILL.
            "TimeoutStopSec=30",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def launchd_plist(venv: Path, home: Path) -> bytes:
    logs = home / "logs"
    return plistlib.dumps(
        {
            "Label": LAUNCHD_LABEL,
            "ProgramArguments": [str(venv_appliance(venv)), "serve", "--home", str(home)],
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "StandardOutPath": str(logs / "service.out.log"),
            "StandardErrorPath": str(logs / "service.err.log"),
            "ExitTimeOut": 30,
        }
    )


def windows_task_command(venv: Path, home: Path) -> list[str]:
    # pythonw: no console window stays open for the life of the server.
    action = f'"{venv_bin(venv) / "pythonw.exe"}" -m appliance serve --home "{home}"'
    return ["schtasks", "/Create", "/TN", TASK_NAME, "/TR", action, "/SC", "ONLOGON", "/RL", "LIMITED", "/F"]


def systemctl_user_available() -> bool:
    """Whether a systemd user manager answers (not in containers or CI without a user session)."""
    if shutil.which("systemctl") is None:
        return False
    try:
        result = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def install_service(venv: Path, home: Path, service_dir: Path, manifest: Manifest, enable: bool) -> Path | None:
    """Write the user service for this platform and, when ``enable``, register and start it."""
    if IS_WINDOWS:  # pragma: no cover - Windows only
        argv = windows_task_command(venv, home)
        manifest.add("services", {"kind": "schtasks", "name": TASK_NAME})
        if enable:
            run(argv, "creating the scheduled task")
            say(f"scheduled task '{TASK_NAME}' starts the server when you log in")
        else:
            say("not registering the scheduled task (--no-enable); to do it: " + subprocess.list2cmdline(argv))
        return None
    if IS_MAC:  # pragma: no cover - macOS only
        plist = service_dir / f"{LAUNCHD_LABEL}.plist"
        plist.parent.mkdir(parents=True, exist_ok=True)
        plist.write_bytes(launchd_plist(venv, home))
        manifest.add("services", {"kind": "launchd", "path": str(plist), "label": LAUNCHD_LABEL})
        if enable:
            run(["launchctl", "load", "-w", plist], "loading the launch agent")
            say(f"launch agent {LAUNCHD_LABEL} starts the server when you log in")
        return plist
    unit = service_dir / UNIT_NAME
    _write(unit, systemd_unit(venv, home), manifest, 0o644)
    manifest.add("services", {"kind": "systemd", "path": str(unit), "unit": UNIT_NAME})
    if not enable:
        say(f"wrote {unit}; not enabling it (--no-enable)")
    elif systemctl_user_available():
        run(["systemctl", "--user", "daemon-reload"], "systemctl --user daemon-reload")
        run(["systemctl", "--user", "enable", "--now", UNIT_NAME], "enabling the service")
        say(f"enabled and started {UNIT_NAME}; to start it at boot before you log in: loginctl enable-linger")
    else:
        say(
            f"wrote {unit}, but no systemd user session answers here, so it is not enabled; "
            f"later run: systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}"
        )
    return unit


# --- install and uninstall --------------------------------------------------------------------


def install_desktop_libraries(venv: Path, allowed: bool) -> str:
    """Install the system libraries Qt's X11 plugin lacks (the console cannot open a window without them).

    Asks the installed appliance what is missing (``python -m appliance.cli.desktop_libs`` prints the
    apt/dnf/pacman command); runs it when ``allowed`` and it can without asking for a password (as root,
    or with ``sudo -n``), else says the exact command to run. Returns what it did, in one line.
    """
    probe = subprocess.run(
        [str(venv_python(venv)), "-m", "appliance.cli.desktop_libs"], capture_output=True, text=True, timeout=60
    )
    command = probe.stdout.strip()
    if probe.returncode == 0:
        return "desktop console: Qt's X11 libraries are present"
    if not command or command.startswith("missing:") or not allowed:
        return (
            f"desktop console: Qt's X11 libraries are missing; install them with: {command or 'your package manager'}"
        )
    argv = shlex.split(command)
    if argv[0] == "sudo":
        argv.insert(1, "-n")  # never wait for a password: an unattended install says what to run instead
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        return f"desktop console: could not install Qt's X11 libraries; run: {command}"
    return f"desktop console: installed Qt's X11 libraries ({command})"


def install(args: argparse.Namespace) -> int:
    prefix = Path(args.prefix).expanduser().absolute()
    source = Path(args.source).expanduser().absolute()
    if not (source / "pyproject.toml").exists():
        raise InstallError(f"{source} is not the Office Appliance project (no pyproject.toml); pass --source")
    if sys.version_info < MIN_PYTHON and args.python == sys.executable:
        raise InstallError(
            f"Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed; this is {sys.version.split()[0]}"
        )
    venv = prefix / "venv"
    manifest = Manifest.load(prefix) or Manifest(prefix)
    manifest.data.update(
        installed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        source=str(source),
        prefix=str(prefix),
        venv=str(venv),
    )
    manifest.save()
    create_venv(venv, args.python, args.system_site_packages)
    manifest.add("dirs", str(venv))
    install_project(venv, source, shlex.split(args.pip_args))
    home = resolve_home(venv, args.home)
    if _inside(home, prefix) or _inside(prefix, home):
        raise InstallError(
            f"the home {home} and the prefix {prefix} must not contain each other; choose another --prefix"
        )
    manifest.data["home"] = str(home)
    manifest.save()
    init_home(venv, home)
    desktop_dir = Path(args.desktop_dir).expanduser().absolute() if args.desktop_dir else default_desktop_dir()
    launcher = install_launcher(venv, home, desktop_dir, manifest)
    say(f"console launcher: {launcher}")
    say(install_desktop_libraries(venv, allowed=not args.no_system_packages))
    if args.service:
        service_dir = Path(args.service_dir).expanduser().absolute() if args.service_dir else default_service_dir()
        install_service(venv, home, service_dir, manifest, enable=not args.no_enable)
    say(f"done: {venv_appliance(venv)} --home {home} (data stays in {home})")
    say(f"uninstall with: python3 {Path(__file__).resolve()} --uninstall --prefix {prefix}")
    return 0


def _remove_service(service: dict, enable: bool) -> None:
    kind = service.get("kind")
    if kind == "systemd":
        path = Path(service["path"])
        if enable and systemctl_user_available():
            subprocess.run(["systemctl", "--user", "disable", "--now", service["unit"]], capture_output=True)
        path.unlink(missing_ok=True)
        if enable and systemctl_user_available():
            subprocess.run(["systemctl", "--user", "daemon-reload"], capture_output=True)
        say(f"removed {path}")
    elif kind == "launchd":  # pragma: no cover - macOS only
        path = Path(service["path"])
        if enable and path.exists():
            subprocess.run(["launchctl", "unload", "-w", str(path)], capture_output=True)
        path.unlink(missing_ok=True)
        say(f"removed {path}")
    elif kind == "schtasks":  # pragma: no cover - Windows only
        if enable:
            subprocess.run(["schtasks", "/Delete", "/TN", service["name"], "/F"], capture_output=True)
        say(f"removed the scheduled task '{service['name']}'")


def uninstall(args: argparse.Namespace) -> int:
    prefix = Path(args.prefix).expanduser().absolute()
    manifest = Manifest.load(prefix)
    if manifest is None:
        raise InstallError(f"nothing to uninstall: no {MANIFEST} in {prefix} (pass the --prefix used to install)")
    home = Path(manifest.data["home"]) if manifest.data.get("home") else None

    def safe(path: Path) -> bool:
        # The data is never removed, whatever the manifest says.
        if home is not None and (_inside(path, home) or _inside(home, path)):
            say(f"keeping {path}: it holds or is inside the data home")
            return False
        return True

    for service in manifest.data.get("services", []):
        _remove_service(service, enable=not args.no_enable)
    for name in manifest.data.get("files", []):
        path = Path(name)
        if safe(path) and (path.exists() or path.is_symlink()):
            path.unlink()
            say(f"removed {path}")
    for name in manifest.data.get("dirs", []):
        path = Path(name)
        if safe(path) and path.exists():
            shutil.rmtree(path)
            say(f"removed {path}")
    manifest.path.unlink()
    try:
        prefix.rmdir()
    except OSError:
        say(f"left {prefix} in place: it holds files this installer did not write")
    if home is not None:
        say(f"kept your data in {home} (delete it yourself if you really want it gone)")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="install.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default=str(default_prefix()), help="where the virtual environment goes")
    parser.add_argument("--home", help="instance home (data); default: APPLIANCE_HOME or the platform's data folder")
    parser.add_argument("--service", action="store_true", help="also install a user service starting the server")
    parser.add_argument(
        "--no-enable",
        action="store_true",
        help="write the service files but do not register, enable or start them (nor stop them on --uninstall)",
    )
    parser.add_argument("--uninstall", action="store_true", help="remove what was installed; never the home")
    parser.add_argument(
        "--no-system-packages",
        action="store_true",
        help="do not install the system libraries the desktop console needs; only say which",
    )
    parser.add_argument(
        "--source",
        default=str(Path(__file__).resolve().parent.parent),
        help="the project folder to install (default: the one holding this script)",
    )
    parser.add_argument("--python", default=sys.executable, help="the Python that creates the virtual environment")
    parser.add_argument("--desktop-dir", help="where the launcher goes (default: the platform's applications menu)")
    parser.add_argument("--service-dir", help="where the service file goes (default: the user's service folder)")
    parser.add_argument(
        "--pip-args", default="", help='extra pip install arguments, e.g. "--no-index --find-links DIR"'
    )
    parser.add_argument(
        "--system-site-packages", action="store_true", help="let the virtual environment see the system's packages"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return uninstall(args) if args.uninstall else install(args)
    except InstallError as exc:
        print(f"install: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
