"""Requests per second of ``/healthz`` for 1 worker and for N workers, in the same run.

Starts real servers (``appliance serve --port 0`` on a temporary home, with
``APPLIANCE_WORKERS=1`` and then ``N``), drives each with a load generator in
separate processes (each runs one thread per keep-alive ``http.client``
connection) at several concurrency levels, bounded in time and in count, and
prints a table: connections, rps for 1 worker, rps for N workers, their ratio,
p99 latency, errors and *starved* connections (connections that never got an
answer within the window: the sign of a server that stops accepting).
``/readyz`` (which touches the database) is measured the same way.

    python bench/bench_healthz.py [--seconds 5] [--connections 32,64,256] [--workers N]
                                   [--threads T] [--connection-limit L] [--backlog B]

The load generator runs on the same machine and competes with the server for
CPU, so on a small machine the ratio understates what N workers give.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_REQUESTS_PER_POINT = 2_000_000  # a bound on count, besides the time bound


@dataclass
class Point:
    ok: int = 0
    errors: int = 0
    starved: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


# --- the load generator (runs in child processes) --------------------------------------------


def _drive(host: str, port: int, path: str, connections: int, start_at: float, seconds: float, cap: int) -> tuple:
    """One load process: ``connections`` threads, each with one keep-alive connection, until the window ends."""
    end_at = start_at + seconds
    lock = threading.Lock()
    totals = {"ok": 0, "errors": 0, "starved": 0, "sent": 0}
    latencies: list[float] = []

    def one_connection() -> None:
        conn = None
        answered = 0
        mine: list[float] = []
        errors = 0
        while time.time() < start_at:
            time.sleep(0.001)
        while True:
            now = time.time()
            if now >= end_at:
                break
            with lock:
                if totals["sent"] >= cap:
                    break
                totals["sent"] += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=max(0.5, end_at - now + 1.0))
                t0 = time.perf_counter()
                conn.request("GET", path, headers={"Connection": "keep-alive"})
                resp = conn.getresponse()
                resp.read()
                elapsed = time.perf_counter() - t0
                if time.time() > end_at:
                    break  # finished after the window: not counted
                if resp.status == 200:
                    answered += 1
                    mine.append(elapsed)
                else:
                    errors += 1
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if time.time() <= end_at:
                    errors += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            totals["ok"] += answered
            totals["errors"] += errors
            totals["starved"] += 1 if answered == 0 else 0
            latencies.extend(mine)

    threads = [threading.Thread(target=one_connection, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return totals["ok"], totals["errors"], totals["starved"], latencies


def measure(
    pool: ProcessPoolExecutor, procs: int, url: tuple[str, int], path: str, connections: int, seconds: float
) -> Point:
    host, port = url
    share = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
    start_at = time.time() + 0.5  # every process starts at once
    cap = MAX_REQUESTS_PER_POINT // procs
    futures = [pool.submit(_drive, host, port, path, n, start_at, seconds, cap) for n in share if n]
    point = Point(seconds=seconds)
    for future in futures:
        ok, errors, starved, latencies = future.result()
        point.ok += ok
        point.errors += errors
        point.starved += starved
        point.latencies.extend(latencies)
    return point


# --- the server under test ---------------------------------------------------------------------


class Server:
    """``appliance serve --port 0`` on ``home`` with the given settings in the environment."""

    def __init__(self, home: Path, workers: int, settings: dict[str, str]):
        env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_") and k != "DATABASE_URL"}
        env.update({f"APPLIANCE_{k.upper()}": v for k, v in settings.items()}, APPLIANCE_WORKERS=str(workers))
        self.home = home
        self.process = subprocess.Popen(
            [sys.executable, "-m", "appliance", "serve", "--home", str(home), "--port", "0"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.host, self.port = self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> tuple[str, int]:
        server_json = self.home / "run" / "server.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited with {self.process.returncode}: {self.process.stderr.read()}")
            try:
                info = json.loads(server_json.read_text())
                if info.get("pid") == self.process.pid:
                    conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=2)
                    conn.request("GET", "/readyz")
                    if conn.getresponse().status == 200:
                        conn.close()
                        return "127.0.0.1", info["port"]
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit("server did not become ready in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_server_points(
    home: Path, workers: int, settings: dict[str, str], plan: list[tuple[str, int]], seconds: float, procs: int
) -> dict[tuple[str, int], Point]:
    server = Server(home, workers, settings)
    results = {}
    try:
        with ProcessPoolExecutor(max_workers=procs) as pool:
            measure(pool, procs, (server.host, server.port), "/healthz", min(32, plan[0][1]), 1.0)  # warm-up
            for path, connections in plan:
                results[(path, connections)] = measure(
                    pool, procs, (server.host, server.port), path, connections, seconds
                )
                print(
                    f"  {workers} worker(s) {path:8} {connections:4} conns: {results[(path, connections)].rps:8.0f} rps",
                    flush=True,
                )
    finally:
        server.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window per point")
    parser.add_argument("--connections", default="32,64,256", help="concurrent connections, comma separated")
    parser.add_argument("--readyz-connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="N, the multi-worker case")
    parser.add_argument("--load-procs", type=int, default=max(2, min(4, os.cpu_count() or 1)))
    parser.add_argument("--threads", type=int, help="APPLIANCE_THREADS for both servers")
    parser.add_argument("--connection-limit", type=int, help="APPLIANCE_CONNECTION_LIMIT for both servers")
    parser.add_argument("--backlog", type=int, help="APPLIANCE_BACKLOG for both servers")
    args = parser.parse_args(argv)
    connections = [int(c) for c in args.connections.split(",") if c.strip()]
    settings = {
        name: str(value)
        for name, value in (
            ("threads", args.threads),
            ("connection_limit", args.connection_limit),
            ("backlog", args.backlog),
        )
        if value is not None
    }
    plan = [("/healthz", c) for c in connections] + [("/readyz", args.readyz_connections)]
    print(
        f"bench_healthz: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"{args.seconds:g} s per point, {args.load_procs} load processes, N={args.workers}, "
        f"settings {settings or 'defaults'}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-healthz-") as tmp:
        home = Path(tmp) / "home"
        subprocess.run(
            [sys.executable, "-m", "appliance", "init", "--home", str(home)], check=True, cwd=REPO, capture_output=True
        )
        one = run_server_points(home, 1, settings, plan, args.seconds, args.load_procs)
        many = run_server_points(home, args.workers, settings, plan, args.seconds, args.load_procs)
    print()
    header = (
        f"{'path':8} {'conns':>5} {'rps 1w':>9} {f'rps {args.workers}w':>9} {'ratio':>6} "
        f"{'p99 1w ms':>10} {f'p99 {args.workers}w ms':>10} {'err 1w/Nw':>10} {'starved 1w/Nw':>14}"
    )
    print(header)
    print("-" * len(header))
    for key in plan:
        a, b = one[key], many[key]
        ratio = b.rps / a.rps if a.rps else float("nan")
        print(
            f"{key[0]:8} {key[1]:5d} {a.rps:9.0f} {b.rps:9.0f} {ratio:6.2f} "
            f"{a.p99_ms:10.1f} {b.p99_ms:10.1f} {f'{a.errors}/{b.errors}':>10} {f'{a.starved}/{b.starved}':>14}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
