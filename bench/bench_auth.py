"""Sign-in latency and ``GET /api/me`` requests per second with a bearer token.

Run: ``.venv/bin/python bench/bench_auth.py [--seconds 3] [--connections 32,64,256] [--sign-ins 8]
[--workers 0] [--load-procs P]``

Starts a real server (``appliance serve --port 0``, default settings, so the
production argon2id parameters) on a temporary home with one admin, then prints:

- sign-in latency (p50, p95, max) of ``POST /api/auth/token`` with the right
  password, a wrong password and an unknown email (the last two should match:
  a wrong email costs what a wrong password does), and the ratio of their
  p50s (1.00 = no timing difference that tells which emails have accounts);
- requests per second and p99 of ``GET /api/me`` with an API token next to
  ``GET /healthz`` (no auth, no database) at each concurrency, and their ratio:
  the price of token authentication (one indexed query per request).
  Failed requests (non-2xx, resets, timeouts) are counted apart, not in rps.

The load generator is several processes, each with one thread per keep-alive
connection (bench/_load.py). Loops are bounded in time and count; the server
binds 127.0.0.1 only and is stopped, and the temporary home removed, even on
failure. Nothing here is a test; it prints figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _load import (  # bench/ is on sys.path: the benches run as scripts
    Get,
    clean_env,
    default_load_procs,
    exit_on_sigterm,
    measure,
    note_unknown,
    start_appliance,
    stop_process,
)

REPO = Path(__file__).resolve().parent.parent
APPLIANCE = [sys.executable, "-m", "appliance"]
MAX_REQUESTS_PER_POINT = 500_000
PASSWORD = "bench-admin-password-1"


def prepare(home: Path) -> None:
    """A new home with one admin, through the CLI."""
    subprocess.run(
        [*APPLIANCE, "init", "--home", str(home)], check=True, capture_output=True, env=clean_env(), cwd=REPO
    )
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
        env=clean_env(),
        cwd=REPO,
        timeout=120,
    )


def post_json(conn: http.client.HTTPConnection, path: str, body: dict) -> tuple[int, dict]:
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    answer = conn.getresponse()
    return answer.status, json.loads(answer.read() or b"{}")


def sign_in_latencies(host: str, port: int, count: int) -> dict[str, list[float]]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring window per point")
    parser.add_argument("--connections", default="32,64,256", help="concurrent connections, comma separated")
    parser.add_argument("--sign-ins", type=int, default=8, help="sign-ins of each kind")
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--load-procs", type=int, default=default_load_procs())
    args, unknown = parser.parse_known_args(argv)
    note_unknown("bench_auth", unknown)
    exit_on_sigterm()
    connections = [int(c) for c in args.connections.split(",") if c.strip()]

    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        home = Path(tmp) / "home"
        prepare(home)
        # Many deliberate failures from one address: lift the address limit for the bench only.
        settings = {"workers": str(args.workers), "sign_in_address_max_failures": "100000"}
        process, host, port = start_appliance(home, settings, Path(tmp) / "server.log")
        try:
            print(f"server http://{host}:{port}/  cpus {os.cpu_count()}  load processes {args.load_procs}")
            print(f"\nsign-in latency, POST /api/auth/token, {args.sign_ins} each (ms)")
            print(f"{'case':<16}{'p50':>8}{'p95':>8}{'max':>8}")
            medians = {}
            for name, values in sign_in_latencies(host, port, args.sign_ins).items():
                ordered = sorted(values)
                p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
                medians[name] = statistics.median(ordered)
                print(f"{name:<16}{medians[name] * 1000:>8.1f}{p95 * 1000:>8.1f}{ordered[-1] * 1000:>8.1f}")
            print(
                "wrong password / unknown email (p50): "
                f"{medians['wrong password'] / max(medians['unknown email'], 1e-9):.2f}x (1.00 = indistinguishable)"
            )
            conn = http.client.HTTPConnection(host, port, timeout=30)
            status, body = post_json(
                conn, "/api/auth/token", {"email": "bench@example.com", "password": PASSWORD, "scope": "read"}
            )
            conn.close()
            if status != 201:
                raise SystemExit(f"could not get a token: {status} {body}")
            me = Get("/api/me", (("Authorization", f"Bearer {body['token']}"),))
            print(f"\nGET /api/me with a token vs GET /healthz (baseline), {args.seconds:g} s per point")
            print(
                f"{'conns':>6}{'me rps':>10}{'me p50 ms':>11}{'me p99 ms':>11}{'healthz rps':>13}{'hz p99 ms':>11}"
                f"{'ratio':>8}{'failed me/hz':>14}"
            )
            with ProcessPoolExecutor(max_workers=args.load_procs) as pool:
                measure(pool, args.load_procs, host, port, Get("/healthz"), min(connections), 1.0)  # warm-up
                for conns in connections:
                    a = measure(pool, args.load_procs, host, port, me, conns, args.seconds, MAX_REQUESTS_PER_POINT)
                    b = measure(
                        pool, args.load_procs, host, port, Get("/healthz"), conns, args.seconds, MAX_REQUESTS_PER_POINT
                    )
                    ratio = a.rps / b.rps if b.rps else float("nan")
                    print(
                        f"{conns:>6}{a.rps:>10.0f}{a.p50_ms:>11.1f}{a.p99_ms:>11.1f}{b.rps:>13.0f}{b.p99_ms:>11.1f}"
                        f"{ratio:>8.2f}{f'{a.failed}/{b.failed}':>14}",
                        flush=True,
                    )
        finally:
            stop_process(process)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
