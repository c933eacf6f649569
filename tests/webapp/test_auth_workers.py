"""Throttling, lock-out and session revocation hold across worker processes; the set-up link works once.

Each test holds one keep-alive connection on each of the server's two
workers (found by asking the OS which worker process owns the connection),
and sends its requests through them in turn, so every check crosses workers.
"""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import psutil
import pytest
import requests

from appliance.audit import AuditEvent
from tests.conftest import browser_sign_in, csrf_token_in, start_server


class WorkerConnection:
    """A keep-alive HTTP connection known to be served by one worker process."""

    def __init__(self, conn: http.client.HTTPConnection, worker_pid: int):
        self.conn = conn
        self.worker_pid = worker_pid

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        data = json.dumps(body) if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})} if data else dict(headers or {})
        self.conn.request(method, path, body=data, headers=all_headers)
        answer = self.conn.getresponse()
        text = answer.read().decode()
        return answer.status, (
            json.loads(text) if text and answer.getheader("Content-Type", "").startswith("application/json") else text
        )


def _owner(worker_pids: list[int], local_port: int) -> int | None:
    for pid in worker_pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == local_port:
                return pid
    return None


def connections_on_each_worker(server, attempts: int = 40) -> list[WorkerConnection]:
    """One open connection per worker process of ``server``."""
    parts = urlsplit(server.url)
    workers = [child.pid for child in psutil.Process(server.process.pid).children()]
    assert len(workers) == 2, workers
    found: dict[int, WorkerConnection] = {}
    spare = []
    for _ in range(attempts):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        pid = _owner(workers, conn.sock.getsockname()[1])
        if pid is not None and pid not in found:
            found[pid] = WorkerConnection(conn, pid)
        else:
            spare.append(conn)
        if len(found) == len(workers):
            break
    for conn in spare:
        conn.close()
    assert len(found) == len(workers), "could not reach both workers"
    return list(found.values())


@pytest.fixture
def two_workers(personas, live_server):
    connections = connections_on_each_worker(live_server)
    yield connections
    for c in connections:
        c.conn.close()


def test_five_failures_across_two_workers_lock_the_account(two_workers, personas, instance):
    editor = personas.editor
    for i in range(5):
        status, body = two_workers[i % 2].request(
            "POST", "/api/auth/token", {"email": editor.email, "password": "a-wrong-password-typed"}
        )
        assert status == 401 and body["error"]["code"] == "not_authenticated"
    # The right password, now through either worker: locked.
    for worker in two_workers:
        status, body = worker.request("POST", "/api/auth/token", {"email": editor.email, "password": editor.password})
        assert status == 429, body
        assert body["error"]["code"] == "throttled" and body["error"]["retry_after"] > 0
    events = AuditEvent.select().where(AuditEvent.action.startswith("sign_in.") & (AuditEvent.target == editor.email))
    actions = [e.action for e in events.order_by(AuditEvent.id)]
    assert actions == ["sign_in.failed"] * 5 + ["sign_in.locked"] + ["sign_in.failed"] * 2
    event = AuditEvent.get(AuditEvent.action == "sign_in.locked")
    assert event.address == "127.0.0.1" and event.actor == editor.email


def test_the_sign_in_page_is_locked_too_and_says_so(two_workers, personas, live_server):
    editor = personas.editor
    for i in range(5):
        two_workers[i % 2].request(
            "POST", "/api/auth/token", {"email": editor.email, "password": "wrong-password-here"}
        )
    browser = requests.Session()
    page = browser.get(live_server.url + "login", timeout=10)
    answer = browser.post(
        live_server.url + "login",
        data={"email": editor.email, "password": editor.password, "csrf_token": csrf_token_in(page.text)},
        timeout=10,
    )
    assert answer.status_code == 429
    assert "Too many failed sign-ins" in answer.text
    assert int(answer.headers["Retry-After"]) > 0


def test_a_wrong_email_and_a_wrong_password_take_the_same_time(two_workers, personas):
    def timed(email: str) -> float:
        started = time.perf_counter()
        status, _ = two_workers[0].request("POST", "/api/auth/token", {"email": email, "password": "wrong-password-x"})
        assert status == 401
        return time.perf_counter() - started

    # Alternate, and compare medians, so that load on the machine hits both alike.
    known, unknown = [], []
    for i in range(4):
        known.append(timed(personas.viewer.email))
        unknown.append(timed(f"nobody{i}@example.com"))
    known.sort(), unknown.sort()
    median_known, median_unknown = known[2], unknown[2]
    assert median_unknown > median_known / 3, (known, unknown)


def _cookie_headers(session) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in session.cookies)}


def test_sign_out_everywhere_ends_the_session_in_every_worker(two_workers, personas, live_server):
    session, csrf = browser_sign_in(live_server.url, personas.editor.email, personas.editor.password)
    cookie = _cookie_headers(session)
    for worker in two_workers:
        status, body = worker.request("GET", "/api/me", headers=cookie)
        assert status == 200 and body["email"] == personas.editor.email
    status, _ = two_workers[0].request("POST", "/api/me/sign-out-everywhere", headers={**cookie, "X-CSRFToken": csrf})
    assert status == 204
    for worker in two_workers:
        assert worker.request("GET", "/api/me", headers=cookie)[0] == 401
        status, _page = worker.request("GET", "/account", headers=cookie)
        assert status == 302


@pytest.mark.parametrize(
    "change",
    [
        {"active": False},
        {"role": "viewer"},
        {"password": "a-reset-long-password"},
    ],
)
def test_disabling_a_role_change_or_a_password_reset_ends_sessions_in_every_worker(
    two_workers, personas, live_server, api_token_for, change
):
    session, _csrf = browser_sign_in(live_server.url, personas.editor.email, personas.editor.password)
    cookie = _cookie_headers(session)
    assert all(w.request("GET", "/api/me", headers=cookie)[0] == 200 for w in two_workers)
    admin = {"Authorization": f"Bearer {api_token_for(personas.admin.email)}"}
    status, body = two_workers[0].request("PATCH", f"/api/users/{personas.editor.id}", change, headers=admin)
    assert status == 200, body
    for worker in two_workers:
        assert worker.request("GET", "/api/me", headers=cookie)[0] == 401


def test_the_setup_link_is_printed_once_and_works_once(home):
    server = start_server(home)
    try:
        link = None
        deadline = time.monotonic() + 20
        while link is None and time.monotonic() < deadline:
            line = server.process.stdout.readline()
            if "/setup/" in line:
                link = line.split(" at ", 1)[1].split()[0]
        assert link and link.startswith(server.url + "setup/")
        browser = requests.Session()
        page = browser.get(link, timeout=10)
        assert page.status_code == 200 and "Create the first admin" in page.text
        form = {"email": "boss@example.com", "name": "Boss", "password": "short", "password_confirm": "short"}
        refused = browser.post(link, data={**form, "csrf_token": csrf_token_in(page.text)}, timeout=10)
        assert refused.status_code == 422
        assert "Use at least 10 characters." in refused.text and 'value="boss@example.com"' in refused.text
        good = {**form, "password": "a-long-enough-password", "password_confirm": "a-long-enough-password"}
        done = browser.post(link, data={**good, "csrf_token": csrf_token_in(refused.text)}, timeout=10)
        assert done.status_code == 200 and done.url == server.url
        assert browser.get(server.url + "api/me", timeout=10).json()["role"] == "admin"
        assert browser.get(link, timeout=10).status_code == 404
        assert requests.get(link, timeout=10).status_code == 404
    finally:
        server.stop()


def _session_cookie(answer: requests.Response) -> str:
    return next(v for k, v in answer.raw.headers.items() if k.lower() == "set-cookie" and "appliance_session" in v)


def test_the_cookie_is_secure_only_for_https_through_the_trusted_proxy(home, live_server):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    # No trusted proxy configured: the header is ignored.
    assert "Secure" not in _session_cookie(live_server.get("/login", headers=forwarded))
    live_server.stop()
    behind_proxy = start_server(home, env={"APPLIANCE_TRUSTED_PROXY": "127.0.0.1"})
    try:
        assert "Secure" in _session_cookie(behind_proxy.get("/login", headers=forwarded))
        assert "Secure" not in _session_cookie(behind_proxy.get("/login"))
    finally:
        behind_proxy.stop()
