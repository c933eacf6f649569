"""The server runner against real processes: run files, refusals, graceful stop, workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import psutil
import pytest
import requests

from appliance.errors import PortInUse
from tests.conftest import APPLIANCE, REPO, clean_env, run_cli, start_server
from tests.waiting import eventually


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1):
    """:func:`eventually` ``predicate``; a request that failed, or a process that went away while being
    looked at, counts as not yet."""
    return eventually(
        predicate,
        timeout=timeout,
        interval=interval,
        ignoring=(requests.RequestException, OSError, ValueError, psutil.Error),
    )


def test_serve_prints_its_url_and_writes_the_run_files(home):
    server = start_server(home)
    try:
        info = json.loads((home / "run" / "server.json").read_text())
        assert info["pid"] == server.process.pid
        assert info["url"].startswith("http://127.0.0.1:")
        assert info["version"]
        assert info["started_at"].endswith("Z")
        assert stat.S_IMODE((home / "run" / "control.token").stat().st_mode) == 0o600
        assert server.get("/healthz").json() == {"status": "ok"}
        assert server.get("/readyz").status_code == 200
    finally:
        assert server.stop() == 0
    assert info["url"] in server.output()
    assert not (home / "run" / "server.json").exists()
    assert not (home / "run" / "control.token").exists()


def test_sigterm_lets_an_in_flight_request_finish_then_exits_0_within_10_seconds(home):
    code = (
        "import sys; from pathlib import Path; from appliance.config.home import open_instance; "
        "from appliance.server.runner import run_server; "
        "sys.exit(run_server(open_instance(Path(sys.argv[1])), 'tests.appliance.slow_app:create_app', port=0))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(home)],
        cwd=REPO,
        env=clean_env(APPLIANCE_WORKERS="2"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = wait_for(
            lambda: (home / "run" / "server.json").exists() and json.loads((home / "run" / "server.json").read_text())
        )
        wait_for(lambda: requests.get(info["url"] + "readyz", timeout=2).ok)
        result = {}

        def slow_request():
            result["response"] = requests.get(info["url"] + "_test/slow?seconds=2", timeout=20)

        thread = threading.Thread(target=slow_request)
        thread.start()
        wait_for(lambda: (home / "slow-request-started").exists())
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)

        def refused() -> bool:
            # While the slow request finishes, a new connection is refused at once, not left hanging.
            try:
                socket.create_connection((info["host"], info["port"]), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        assert wait_for(refused, timeout=1.5, interval=0.05)
        assert "response" not in result  # the in-flight request is still running
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
        thread.join(timeout=10)
        assert result["response"].status_code == 200
        assert result["response"].json() == {"slept": 2.0}
        with pytest.raises(requests.ConnectionError):
            requests.get(info["url"] + "healthz", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_a_second_server_on_the_same_home_is_refused(live_server):
    result = run_cli("serve", "--port", "0", home=live_server.home, timeout=30)
    assert result.returncode == 1
    assert f"another server is already running on the home {live_server.home}" in result.stderr
    assert str(live_server.process.pid) in result.stderr
    assert live_server.get("/healthz").ok


def test_a_stale_run_file_from_a_killed_server_does_not_block_a_new_one(home):
    first = start_server(home)
    workers = [child.pid for child in psutil.Process(first.process.pid).children()]
    first.process.kill()
    first.stop()
    # The workers notice their parent is gone and stop.
    wait_for(
        lambda: (
            not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in workers)
        )
    )
    assert (home / "run" / "server.json").exists()
    second = start_server(home)
    try:
        assert second.get("/healthz").ok
        assert json.loads((home / "run" / "server.json").read_text())["pid"] == second.process.pid
    finally:
        assert second.stop() == 0


def test_a_busy_port_is_refused_naming_the_port_and_its_holder(home):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        result = run_cli("serve", "--port", str(port), home=home, timeout=30)
    finally:
        holder.close()
    assert result.returncode == PortInUse.exit_status == 3  # its own status: a supervisor must not retry it
    assert f"port {port} on 127.0.0.1 is already in use by " in result.stderr
    assert f"(pid {os.getpid()})" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_setting_stops_start_up_naming_setting_value_and_what_is_accepted(home):
    result = run_cli("serve", home=home, env=clean_env(APPLIANCE_WORKERS="many"), timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: setting 'workers' from environment APPLIANCE_WORKERS: 'many' is not a whole number; expected a whole number from 0 to 64"
    )
    (home / "appliance.toml").write_text('log_level = "LOUD"\n')
    result = run_cli("serve", home=home, timeout=30)
    assert result.returncode == 1
    assert (
        "setting 'log_level'" in result.stderr
        and "'LOUD'" in result.stderr
        and "DEBUG, INFO, WARNING, ERROR" in result.stderr
    )


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_home_that_cannot_be_written_is_refused(home):
    os.chmod(home, 0o555)
    argv = [*APPLIANCE, "serve", "--home", str(home), "--port", "0"]
    if os.geteuid() == 0:
        # Root ignores file modes; drop the capability that lets it, so the mode is real.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        argv = [
            setpriv,
            "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
            *argv,
        ]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), cwd=REPO, timeout=30)
    finally:
        os.chmod(home, 0o755)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: cannot write to {home}: Permission denied"


def test_an_unmigrated_database_is_refused_when_migrating_on_start_is_off(home):
    (home / "db" / "appliance.sqlite3").unlink()
    result = run_cli("serve", "--port", "0", home=home, env=clean_env(APPLIANCE_MIGRATE_ON_START="false"), timeout=30)
    assert result.returncode == 1
    assert "the database needs" in result.stderr and "run `appliance migrate" in result.stderr
    assert run_cli("migrate", home=home).returncode == 0
    server = start_server(home, env={"APPLIANCE_MIGRATE_ON_START": "false"})
    assert server.stop() == 0


def test_a_crashed_worker_is_replaced_and_the_server_keeps_serving(live_server):
    parent = psutil.Process(live_server.process.pid)

    def live_workers() -> set[int]:
        return {c.pid for c in parent.children() if c.status() != psutil.STATUS_ZOMBIE}

    before = wait_for(lambda: len(live_workers()) == 2 and live_workers())
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> set[int] | None:
        workers = live_workers()
        return workers if len(workers) == 2 and victim not in workers else None

    after = wait_for(replaced, timeout=30)
    assert len(after) == 2
    for _ in range(20):
        assert live_server.get("/healthz").ok
    log = (live_server.home / "logs" / "app.log").read_text()
    assert f"(pid {victim}) exited with status -9; replacing it" in log


def test_request_metrics_count_every_request_across_workers(live_server):
    sent = 60
    for _ in range(sent):
        with requests.Session() as fresh:  # a new connection each time, so both workers get some
            assert fresh.get(live_server.url + "healthz", timeout=5).ok
    headers = {"Authorization": f"Bearer {live_server.control_token}"}

    def healthz_count():
        metrics = live_server.get("/api/system/status", headers=headers).json()["metrics"]
        route = metrics["routes"].get("GET /healthz", {"requests": 0})
        return metrics if route["requests"] == sent else None

    metrics = wait_for(healthz_count, timeout=10, interval=0.3)
    assert metrics["routes"]["GET /healthz"]["errors"] == 0
    assert sum(w["requests"] for w in metrics["workers"]) >= sent


def test_the_access_log_is_json_lines_written_by_the_parent(live_server):
    live_server.get("/healthz")
    live_server.get("/api/does-not-exist")
    log = live_server.home / "logs" / "access.log"

    def lines():
        entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return [e for e in entries if e.get("path") == "/api/does-not-exist"]

    entry = wait_for(lines)[0]
    assert entry["status"] == 404
    assert entry["method"] == "GET"
    assert entry["ts"].endswith("Z")


def test_the_consoles_status_polls_are_not_counted_as_traffic(live_server):
    headers = {"Authorization": f"Bearer {live_server.control_token}"}
    assert live_server.get("/healthz").ok

    def metrics():
        data = live_server.get("/api/system/status", headers=headers).json()["metrics"]
        return data if "GET /healthz" in data["routes"] else None

    wait_for(metrics, timeout=10, interval=0.3)
    # One keep-alive connection, so one worker answers the polls and then a counted request: once that
    # request shows in the metrics, the worker's snapshot holds whatever it counted before it, polls too.
    with requests.Session() as one_connection:
        for _ in range(5):
            assert one_connection.get(live_server.url + "api/system/status", headers=headers, timeout=10).ok
        assert one_connection.get(live_server.url + "healthz", timeout=10).ok

    def counted_after_the_polls():
        data = live_server.get("/api/system/status", headers=headers).json()["metrics"]
        return data if data["routes"]["GET /healthz"]["requests"] == 2 else None

    data = wait_for(counted_after_the_polls, timeout=10, interval=0.3)
    assert "GET /api/system/status" not in data["routes"]


def test_a_body_declared_over_the_limit_is_refused_with_json_before_it_is_sent(live_server):
    host, port = live_server.info["host"], live_server.info["port"]
    with socket.create_connection((host, port), timeout=10) as conn:
        # Two gigabytes announced, none sent: the answer must come without waiting for them.
        conn.sendall(
            b"POST /api/collections/x/records HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2147483648\r\n\r\n{}"
        )
        started = time.monotonic()
        answer = b""
        deadline = started + 10  # each recv is bounded by the socket's timeout, the whole answer by this
        while (b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}")) and time.monotonic() < deadline:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert time.monotonic() - started < 5
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"Content-Type: application/json" in head
    for header in (b"Content-Security-Policy: ", b"X-Frame-Options: DENY", b"Referrer-Policy: "):
        assert header in head
    assert json.loads(body) == {
        "error": {"code": "too_large", "message": "The request body is too large for this server."}
    }


def test_sighup_stops_the_server_like_sigterm(home):
    server = start_server(home)
    server.process.send_signal(signal.SIGHUP)
    assert server.process.wait(timeout=15) == 0
    assert server.stop() == 0
    assert not (home / "run" / "server.json").exists()
    assert "stopped" in server.output()


def test_a_replacement_worker_serves_with_the_settings_the_server_started_with(home):
    server = start_server(home, workers=1)
    try:
        with (home / "appliance.toml").open("a") as fh:
            fh.write('\nport = "not a number"\n')
        parent = psutil.Process(server.process.pid)
        [worker] = parent.children()
        os.kill(worker.pid, signal.SIGKILL)
        wait_for(lambda: [c.pid for c in parent.children()] not in ([], [worker.pid]))
        wait_for(lambda: server.get("/healthz").ok, timeout=20)
        assert len(parent.children()) == 1
    finally:
        assert server.stop() == 0


def test_a_database_that_cannot_be_reached_is_a_one_line_reason_without_its_password(home):
    result = run_cli(
        "serve",
        "--port",
        "0",
        home=home,
        env=clean_env(APPLIANCE_DATABASE_URL="postgresql://bob:s3cret-pw@127.0.0.1:1/x"),
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot use the database: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "s3cret-pw" not in result.stderr


def test_a_port_held_by_another_appliance_server_names_its_parent_process(live_server, tmp_path):
    from appliance.config.home import init_home

    other = tmp_path / "other-home"
    init_home(other)
    result = run_cli("serve", "--port", str(live_server.info["port"]), home=other, timeout=60)
    assert result.returncode == PortInUse.exit_status
    assert f"(pid {live_server.process.pid})" in result.stderr


def test_the_access_log_never_keeps_a_set_up_link(live_server):
    live_server.get("/setup/a-one-time-secret-token")
    log = live_server.home / "logs" / "access.log"

    def setup_lines():
        return [line for line in log.read_text().splitlines() if "/setup/" in line]

    [line] = wait_for(setup_lines)
    assert "a-one-time-secret-token" not in log.read_text()
    assert json.loads(line)["path"] == "/setup/<redacted>"
