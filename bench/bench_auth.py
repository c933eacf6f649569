"""Sign-in latency and ``GET /api/me`` requests per second with a bearer token.

Run: ``.venv/bin/python bench/bench_auth.py [--seconds 3] [--connections 16,64] [--sign-ins 10]``

Starts a real server (``appliance serve --port 0``, default settings, so the
production argon2id parameters) on a temporary home with one admin, then prints:

- sign-in latency (p50, p95, max) of ``POST /api/auth/token`` with the right
  password, a wrong password and an unknown email (the last two should match:
  a wrong email costs what a wrong password does);
- requests per second and p99 of ``GET /api/me`` with an API token next to
  ``GET /healthz`` (no auth, no database) at each concurrency, and their ratio:
  the price of token authentication (one indexed query per request).

Loops are bounded in time and count; the server binds 127.0.0.1 only. Nothing
here is a test; it prints figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from _load import run_threads  # bench/ is on sys.path: the benches run as scripts

REPO = Path(__file__).resolve().parent.parent
APPLIANCE = [sys.executable, "-m", "appliance"]
MAX_REQUESTS_PER_POINT = 500_000
PASSWORD = "bench-admin-password-1"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


def start(home: Path, workers: int) -> tuple[subprocess.Popen, str]:
    subprocess.run([*APPLIANCE, "init", "--home", str(home)], check=True, capture_output=True, env=_env(), cwd=REPO)
    subprocess.run(
        [
            *APPLIANCE,
            "users",
            "create",
            "bench@example.com",
            "--role",
            "admin",
            "--password-stdin",
            "--home",
            str(home),
        ],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        env=_env(),
        cwd=REPO,
    )
    # Many deliberate failures from one address: lift the address limit for the bench only.
    env = _env(APPLIANCE_WORKERS=str(workers), APPLIANCE_SIGN_IN_ADDRESS_MAX_FAILURES="100000")
    process = subprocess.Popen(
        [*APPLIANCE, "serve", "--home", str(home), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
    )
    server_json = home / "run" / "server.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server_json.exists():
            try:
                info = json.loads(server_json.read_text())
            except ValueError:
                info = None
            if info and info.get("pid") == process.pid and _get(info["url"], "/readyz")[0] == 200:
                return process, info["url"]
        time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not become ready")


def _get(url: str, path: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    try:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    except OSError:
        return 0, b""


def post_json(conn: http.client.HTTPConnection, path: str, body: dict) -> tuple[int, dict]:
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    answer = conn.getresponse()
    return answer.status, json.loads(answer.read() or b"{}")


def sign_in_latencies(url: str, count: int) -> dict[str, list[float]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    cases = {
        "right password": ("bench@example.com", PASSWORD, 201),
        "wrong password": ("bench@example.com", "not-the-password-1", 401),
        "unknown email": (None, "not-the-password-1", 401),
    }
    out: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(count):
        # Each round's success clears the account's failure, so the account never locks.
        for name, (email, password, expected) in cases.items():
            who = email or f"nobody{i}@example.com"
            started = time.perf_counter()
            status, body = post_json(conn, "/api/auth/token", {"email": who, "password": password, "name": f"b{i}"})
            out[name].append(time.perf_counter() - started)
            if status != expected:
                raise SystemExit(f"{name}: {status} {body}")
    return out


def load(url: str, path: str, headers: dict[str, str], connections: int, seconds: float) -> tuple[float, float, int]:
    """Requests per second, p99 in ms and errors, with ``connections`` keep-alive connections."""
    parts = urlsplit(url)
    stop_at = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    budget = MAX_REQUESTS_PER_POINT // connections

    def run(slot: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine = latencies[slot]
        while time.monotonic() < stop_at and len(mine) < budget:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                answer = conn.getresponse()
                answer.read()
                if answer.status == 200:
                    mine.append(time.perf_counter() - started)
                else:
                    errors[slot] += 1
            except OSError:
                errors[slot] += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.close()

    elapsed = run_threads(run, connections)
    flat = sorted(x for part in latencies for x in part)
    p99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000 if flat else float("nan")
    return len(flat) / elapsed, p99, sum(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--sign-ins", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        process, url = start(Path(tmp) / "home", args.workers)
        try:
            print(f"server {url}  cpus {os.cpu_count()}")
            print(f"\nsign-in latency, POST /api/auth/token, {args.sign_ins} each (ms)")
            print(f"{'case':<16}{'p50':>8}{'p95':>8}{'max':>8}")
            for name, values in sign_in_latencies(url, args.sign_ins).items():
                ordered = sorted(values)
                p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
                print(
                    f"{name:<16}{statistics.median(ordered) * 1000:>8.1f}{p95 * 1000:>8.1f}{ordered[-1] * 1000:>8.1f}"
                )
            parts = urlsplit(url)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            status, body = post_json(
                conn, "/api/auth/token", {"email": "bench@example.com", "password": PASSWORD, "scope": "read"}
            )
            assert status == 201, body
            auth = {"Authorization": f"Bearer {body['token']}"}
            print(f"\nGET /api/me with a token vs GET /healthz, {args.seconds:g} s per point")
            print(f"{'conns':>6}{'me rps':>10}{'me p99 ms':>11}{'healthz rps':>13}{'ratio':>8}{'errors':>8}")
            for connections in (int(c) for c in args.connections.split(",")):
                me_rps, me_p99, me_err = load(url, "/api/me", auth, connections, args.seconds)
                hz_rps, _hz_p99, hz_err = load(url, "/healthz", {}, connections, args.seconds)
                ratio = me_rps / hz_rps if hz_rps else float("nan")
                print(f"{connections:>6}{me_rps:>10.0f}{me_p99:>11.1f}{hz_rps:>13.0f}{ratio:>8.2f}{me_err + hz_err:>8}")
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
