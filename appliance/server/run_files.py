"""The run files of a server: how a running server tells others about itself.

While a server runs on a home it holds the OS lock on ``run/server.lock``
(:class:`HomeLock`) and keeps in ``run/``: ``server.json`` (pid, URL, host,
port, workers, start time, version: :func:`read_server_info` is the one
reader), ``control.token`` (the console's and the probes' bearer token) and
``worker-settings.json`` (the settings the parent parsed, for its workers).
All of them are removed when it stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.config.home import Paths
from appliance.durable import write_private_file
from appliance.storage.locks import FileLock, is_locked


@dataclass
class ServerRuntime:
    """What a worker's application learns about the server it runs in."""

    slot: int
    workers: int
    started_at: str
    control_token: str | None


class HomeLock(FileLock):
    """An exclusive OS lock on ``run/server.lock``: released by the OS when the process dies,
    so a stale file left by a killed server never blocks a new one (see :mod:`appliance.storage.locks`)."""


def is_home_locked(path: Path) -> bool:
    """Whether a server holds the lock of the home whose lock file is ``path``."""
    return is_locked(path)


def read_server_info(paths: Paths) -> dict[str, Any] | None:
    """The running server's ``server.json``: ``None`` when no server holds the home's lock, ``{}`` when
    one holds it but has not described itself (yet), or its file cannot be read."""
    if not is_home_locked(paths.server_lock):
        return None
    try:
        info = json.loads(paths.server_json.read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def write_server_info(paths: Paths, info: dict[str, Any]) -> None:
    """Replace ``server.json`` by ``info`` atomically (it names no secret: readable as the umask says)."""
    tmp = paths.server_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, paths.server_json)


def read_control_token(paths: Paths) -> str | None:
    """The running server's control token, or ``None`` when no server wrote one."""
    try:
        return paths.control_token.read_text().strip() or None
    except OSError:
        return None


def write_control_token(paths: Paths) -> str:
    """Write a new random control token (owner-only) and return it."""
    token = secrets.token_urlsafe(32)
    write_private_file(paths.control_token, token.encode())
    return token


def write_worker_settings(paths: Paths, values: dict[str, Any]) -> None:
    """Hand the parent's parsed settings to its workers (owner-only: they may hold the SMTP password)."""
    write_private_file(paths.worker_settings, json.dumps(values).encode())


def remove_run_files(paths: Paths) -> None:
    """Remove ``server.json``, the control token and the worker settings (those that exist)."""
    for path in (paths.server_json, paths.control_token, paths.worker_settings):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
