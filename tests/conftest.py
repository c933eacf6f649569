"""Shared fixtures: a real home in a temporary folder, the Flask app over it, and a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from appliance.db import database, open_database
from appliance.home import Instance, init_home, open_instance
from appliance.migrate import apply_migrations

REPO = Path(__file__).resolve().parent.parent
APPLIANCE = [sys.executable, "-m", "appliance"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no APPLIANCE_* leaking in from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("APPLIANCE_") or key == "DATABASE_URL":
            monkeypatch.delenv(key)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised, migrated instance home in a temporary folder."""
    path = tmp_path / "home"
    init_home(path)
    db = open_database(open_instance(path))
    with db.connection_context():
        apply_migrations(db)
    return path


@pytest.fixture
def instance(home: Path) -> Iterator[Instance]:
    """The opened instance, with the process's database proxy pointing at its database."""
    inst = open_instance(home)
    db = open_database(inst)
    yield inst
    if not db.is_closed():
        db.close()
    database.initialize(None)


@pytest.fixture
def app(instance: Instance):
    from webapp import create_app

    flask_app = create_app(instance)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


def run_cli(
    *args: str,
    home: Path | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
):
    """Run ``appliance ARGS`` in a child process; returns the CompletedProcess (text)."""
    argv = [*APPLIANCE, *args]
    if home is not None:
        argv += ["--home", str(home)]
    return subprocess.run(
        argv, input=input, capture_output=True, text=True, env=env or clean_env(), timeout=timeout, cwd=REPO
    )


@dataclass
class LiveServer:
    """A real ``appliance serve`` child process on a free loopback port."""

    home: Path
    process: subprocess.Popen
    url: str
    info: dict

    @property
    def control_token(self) -> str:
        return (self.home / "run" / "control.token").read_text().strip()

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path.lstrip("/"), timeout=10, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path.lstrip("/"), timeout=10, **kwargs)

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        return self.process.stdout.read() if self.process.stdout else ""


def start_server(
    home: Path,
    *,
    workers: int = 2,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    wait: float = 30,
) -> LiveServer:
    """Start ``appliance serve --port 0`` on ``home`` and wait until it answers /readyz."""
    environment = clean_env(APPLIANCE_WORKERS=str(workers), **(env or {}))
    process = subprocess.Popen(
        [*APPLIANCE, "serve", "--home", str(home), "--port", "0", *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        cwd=REPO,
    )
    server_json = home / "run" / "server.json"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stdout.read()}")
        if server_json.exists():
            try:
                info = json.loads(server_json.read_text())
            except ValueError:
                info = None
            if info and info.get("pid") == process.pid:
                try:
                    if requests.get(info["url"] + "readyz", timeout=2).status_code == 200:
                        return LiveServer(home, process, info["url"], info)
                except requests.ConnectionError:
                    pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not become ready: {process.stdout.read()}")


@pytest.fixture
def live_server(home: Path) -> Iterator[LiveServer]:
    """A real server with two workers on a free loopback port, over the ``home`` fixture."""
    server = start_server(home)
    yield server
    server.stop()
