"""The instance home: one folder that holds everything an installation owns.

Resolution order: ``--home DIR``, then ``APPLIANCE_HOME``, then the
platform's user data folder. Layout (DESIGN.md)::

    appliance.toml  secret.key  db/  files/  backups/  logs/  run/
"""

from __future__ import annotations

import os
import secrets
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from appliance.config.settings import Settings, load_settings, render_default_file
from appliance.durable import write_private_file
from appliance.errors import HomeError

SUBDIRS = ("db", "files", "backups", "logs", "run")


def resolve_home(explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The home folder to use: ``explicit``, else ``APPLIANCE_HOME``, else the platform default."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser().absolute()
    if environ.get("APPLIANCE_HOME"):
        return Path(environ["APPLIANCE_HOME"]).expanduser().absolute()
    return Path(platformdirs.user_data_dir("office-appliance", appauthor=False))


@dataclass(frozen=True)
class Paths:
    """Every path inside one home."""

    home: Path

    @property
    def settings_file(self) -> Path:
        return self.home / "appliance.toml"

    @property
    def secret_key(self) -> Path:
        return self.home / "secret.key"

    @property
    def db_dir(self) -> Path:
        return self.home / "db"

    @property
    def database_file(self) -> Path:
        return self.db_dir / "appliance.sqlite3"

    @property
    def files_dir(self) -> Path:
        return self.home / "files"

    @property
    def backups_dir(self) -> Path:
        return self.home / "backups"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def server_json(self) -> Path:
        return self.run_dir / "server.json"

    @property
    def control_token(self) -> Path:
        return self.run_dir / "control.token"

    @property
    def server_lock(self) -> Path:
        return self.run_dir / "server.lock"

    @property
    def metrics_file(self) -> Path:
        return self.run_dir / "metrics.bin"

    @property
    def worker_settings(self) -> Path:
        return self.run_dir / "worker-settings.json"


@dataclass
class Instance:
    """An opened home: its paths and its parsed settings."""

    paths: Paths
    settings: Settings

    @property
    def home(self) -> Path:
        return self.paths.home

    def secret_key(self) -> bytes:
        return self.paths.secret_key.read_bytes().strip()


def init_home(home: Path) -> list[str]:
    """Create the layout of a home; safe to run twice (nothing that exists is overwritten).

    Returns what was created, as short descriptions. Raises :class:`HomeError`
    when the folder cannot be created or written.
    """
    created: list[str] = []
    try:
        # Owner-only throughout: the home holds the database (password hashes), the
        # settings (an SMTP password), backups and logs.
        if not home.exists():
            home.mkdir(parents=True, mode=0o700)
            created.append(str(home))
        for name in SUBDIRS:
            sub = home / name
            if not sub.exists():
                sub.mkdir(mode=0o700)
                created.append(f"{name}/")
        paths = Paths(home)
        if not paths.settings_file.exists():
            write_private_file(paths.settings_file, render_default_file())
            created.append("appliance.toml")
        if not paths.secret_key.exists():
            write_private_file(paths.secret_key, secrets.token_hex(32).encode() + b"\n")
            created.append("secret.key")
    except PermissionError as exc:
        raise HomeError(f"cannot write the home {home}: {exc.strerror} ({exc.filename})") from None
    except OSError as exc:
        raise HomeError(f"cannot create the home {home}: {exc.strerror}") from None
    return created


def open_instance(home: Path, environ: Mapping[str, str] | None = None) -> Instance:
    """Open an initialised home and parse its settings.

    Raises :class:`HomeError` when the home was never initialised and
    :class:`SettingsError` for a bad setting.
    """
    paths = Paths(home)
    if not paths.secret_key.exists() or not paths.db_dir.is_dir():
        raise HomeError(
            f"{home} is not an appliance home yet: run `appliance init --home {shlex.quote(str(home))}` first"
        )
    return Instance(paths, load_settings(paths.settings_file, environ))


def check_writable(home: Path) -> None:
    """Raise :class:`HomeError` unless the home and its sub-folders can be written now."""
    for folder in [home, *(home / name for name in SUBDIRS)]:
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise HomeError(f"cannot write to {folder}: {exc.strerror}") from None
