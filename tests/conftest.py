"""Shared fixtures: a real home in a temporary folder, the Flask app over it, and a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from appliance.config.home import Instance, init_home, open_instance
from appliance.config.settings import write_settings
from appliance.storage.db import database, open_database
from appliance.storage.migrate import apply_migrations
from tests.waiting import eventually

REPO = Path(__file__).resolve().parent.parent
TEST_PASSWORD_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}
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
    # Cheap password hashing in tests (the defaults cost ~0.1-0.5 s a hash on a busy 2-core machine).
    write_settings(path / "appliance.toml", TEST_PASSWORD_HASHING)
    # Personas sign in with a password only unless a test turns two-factor on (a new home requires it of admins).
    write_settings(path / "appliance.toml", {"require_two_factor": "none"})
    db = open_database(open_instance(path))
    with db.connection_context():
        apply_migrations(db)
    return path


@pytest.fixture
def instance(home: Path) -> Iterator[Instance]:
    """The opened instance, with the process's database proxy pointing at its database."""
    from appliance.accounts.passwords import configure_from_settings

    inst = open_instance(home)
    db = open_database(inst)
    configure_from_settings(inst.settings)  # the cheap test hashing of the home's settings
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
        """SIGTERM the server, wait for it, and keep what it printed; returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None and not self.process.stdout.closed:
            self._output = self.process.stdout.read()
            self.process.stdout.close()
        return self.process.returncode

    def output(self) -> str:
        """What the server printed (after :meth:`stop`)."""
        return getattr(self, "_output", "")


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

    def ready() -> LiveServer | None:
        if process.poll() is not None:
            output = process.communicate()[0]
            raise RuntimeError(f"server exited with {process.returncode}: {output}")
        try:
            info = json.loads(server_json.read_text())
        except (OSError, ValueError):  # not written yet, or half written
            return None
        if not info or info.get("pid") != process.pid:
            return None
        if requests.get(info["url"] + "readyz", timeout=2).status_code != 200:
            return None
        return LiveServer(home, process, info["url"], info)

    try:
        # A loaded machine may refuse or answer the readiness probe late: that counts as not yet.
        return eventually(ready, timeout=wait, interval=0.1, ignoring=(requests.ConnectionError, requests.Timeout))
    except AssertionError:
        process.kill()
        output = process.communicate()[0]
        raise RuntimeError(f"server did not become ready: {output}") from None


@pytest.fixture
def live_server(home: Path) -> Iterator[LiveServer]:
    """A real server with two workers on a free loopback port, over the ``home`` fixture."""
    server = start_server(home)
    yield server
    server.stop()


# --- accounts: named personas and ways to act as them ----------------------------------------

# The names of the personas of the ``personas`` fixture (``personas[EDITOR]``), for access tables.
ADMIN, EDITOR, VIEWER, DISABLED, OUTSIDER = "admin", "editor", "viewer", "disabled", "outsider"
EVERYONE = (ADMIN, EDITOR, VIEWER, DISABLED, OUTSIDER)


def by_role(admin: int, staff: int, nobody: int) -> dict[str, int]:
    """An access-table row's expected status for each persona: the admin's, the staff's (editor and
    viewer) and nobody's (the disabled account and the outsider)."""
    return {ADMIN: admin, EDITOR: staff, VIEWER: staff, DISABLED: nobody, OUTSIDER: nobody}


@dataclass
class Persona:
    """Someone in the access tests: an account (``id`` None for the outsider, who has none)."""

    name: str
    email: str
    password: str
    role: str | None
    id: int | None = None
    active: bool = True


@dataclass
class Personas:
    admin: Persona
    editor: Persona
    viewer: Persona
    disabled: Persona
    outsider: Persona

    def __iter__(self):
        return iter((self.admin, self.editor, self.viewer, self.disabled, self.outsider))

    def __getitem__(self, name: str) -> Persona:
        return getattr(self, name)


@pytest.fixture
def personas(instance: Instance) -> Personas:
    """Alice the admin, Bob the editor, Carol the viewer, Dave (an editor, disabled) and Oscar the
    outsider (no account), created in the ``home`` database through the users service."""
    from appliance.accounts.user_changes import create_user, disable_user

    people = Personas(
        admin=Persona(ADMIN, "alice@example.com", "alice-admin-pass-1", "admin"),
        editor=Persona(EDITOR, "bob@example.com", "bob-editor-pass-2", "editor"),
        viewer=Persona(VIEWER, "carol@example.com", "carol-viewer-pass-3", "viewer"),
        disabled=Persona(DISABLED, "dave@example.com", "dave-disabled-pass-4", "editor", active=False),
        outsider=Persona(OUTSIDER, "oscar@example.com", "oscar-outsider-pass-5", None),
    )
    with database.connection_context():
        for person in (people.admin, people.editor, people.viewer, people.disabled):
            user = create_user(person.email, person.name.title(), person.role, person.password, actor="test")
            person.id = user.id
        disable_user(people.disabled.id, actor="test")
    return people


@pytest.fixture
def api_token_for(instance: Instance):
    """``api_token_for(email, scope="write") -> str``: a new API token for that user, through the tokens service."""
    from appliance.accounts.tokens import create_token
    from appliance.accounts.users import get_user_by_email

    def make(email: str, scope: str = "write") -> str:
        with database.connection_context():
            _token, secret = create_token(get_user_by_email(email).id, f"test {scope}", scope=scope, actor="test")
        return secret

    return make


@pytest.fixture
def headers(personas: Personas, api_token_for) -> dict[str, dict[str, str]]:
    """Each persona's API request headers by name: a write token for every account (the disabled one
    too), none for the outsider."""
    return {p.name: {"Authorization": f"Bearer {api_token_for(p.email)}"} if p.id is not None else {} for p in personas}


@contextmanager
def counting_queries() -> Iterator[list[str]]:
    """The SQL of each query run through ``database`` inside the ``with`` block, appended to the list yielded."""
    queries: list[str] = []
    original = database.obj.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        queries.append(sql)
        return original(sql, params, *args, **kwargs)

    database.obj.execute_sql = counting
    try:
        yield queries
    finally:
        database.obj.execute_sql = original


def csrf_token_in(html: str) -> str:
    """The value of the first ``csrf_token`` field of a page."""
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no csrf_token field"
    return match.group(1)


@pytest.fixture
def signed_in(app, personas: Personas):
    """``signed_in("editor")``: a Flask test client signed in as that persona through the /login form
    (it keeps its cookies, like a browser); each call signs in a new client."""

    def as_(who: str):
        person = personas[who]
        client = app.test_client()
        token = csrf_token_in(client.get("/login").get_data(as_text=True))
        answer = client.post("/login", data={"email": person.email, "password": person.password, "csrf_token": token})
        assert answer.status_code == 302, f"{who} could not sign in"
        return client

    return as_


def post_form(client, path: str, data: dict, *, token_from: str | None = None, **kwargs):
    """POST ``data`` to ``path`` through a Flask test client with the CSRF token of the page at
    ``token_from`` (``path`` itself by default); ``kwargs`` go to ``client.post``."""
    token = csrf_token_in(client.get(token_from or path).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token}, **kwargs)


def browser_sign_in(base_url: str, email: str, password: str) -> tuple[requests.Session, str]:
    """Sign in through the /login form like a browser; returns the session and its CSRF token.

    The session's cookie jar holds the session cookie; send the CSRF token as
    ``X-CSRFToken`` on unsafe API requests, or as ``csrf_token`` in forms.
    """
    session = requests.Session()
    page = session.get(base_url + "login", timeout=10)
    answer = session.post(
        base_url + "login",
        data={"email": email, "password": password, "csrf_token": csrf_token_in(page.text)},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302, f"sign-in of {email} failed with {answer.status_code}"
    home = session.get(base_url + "account", timeout=10)
    return session, csrf_token_in(home.text)
