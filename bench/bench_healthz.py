"""Requests per second of ``/healthz`` for 1 worker and for N workers, in the same run.

Starts real servers (``appliance serve --port 0`` on a temporary home, with
``APPLIANCE_WORKERS=1`` and then ``N``), drives each with a load generator in
separate processes (each runs one thread per keep-alive ``http.client``
connection) at several concurrency levels, bounded in time and in count, and
prints a table: connections, rps for 1 worker, rps for N workers, their ratio,
p99 latency, failed requests (not counted in rps or p99) and *starved*
connections (connections that never got an answer within the window: the
sign of a server that stops accepting).
``/readyz`` (which touches the database) is measured the same way.

    python bench/bench_healthz.py [--seconds 5] [--connections 32,64,256] [--workers N]
                                   [--threads T] [--connection-limit L] [--backlog B]

The load generator runs on the same machine and competes with the server for
CPU, so on a small machine the ratio understates what N workers give.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _load import (  # bench/ is on sys.path: the benches run as scripts
    Get,
    Point,
    clean_env,
    default_load_procs,
    exit_on_sigterm,
    measure,
    note_unknown,
    start_appliance,
    stop_process,
)

REPO = Path(__file__).resolve().parent.parent
MAX_REQUESTS_PER_POINT = 2_000_000  # a bound on count, besides the time bound


def run_server_points(
    home: Path, workers: int, settings: dict[str, str], plan: list[tuple[str, int]], seconds: float, procs: int
) -> dict[tuple[str, int], Point]:
    """Start a server with ``workers`` workers, measure every point of ``plan``, stop it (even on failure)."""
    process, host, port = start_appliance(
        home, {**settings, "workers": str(workers)}, home.parent / f"server-{workers}w.log"
    )
    results = {}
    try:
        with ProcessPoolExecutor(max_workers=procs) as pool:
            measure(pool, procs, host, port, Get("/healthz"), min(32, plan[0][1]), 1.0)  # warm-up
            for path, connections in plan:
                results[(path, connections)] = measure(
                    pool, procs, host, port, Get(path), connections, seconds, MAX_REQUESTS_PER_POINT
                )
                print(
                    f"  {workers} worker(s) {path:8} {connections:4} conns: {results[(path, connections)].rps:8.0f} rps",
                    flush=True,
                )
    finally:
        stop_process(process)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window per point")
    parser.add_argument("--connections", default="32,64,256", help="concurrent connections, comma separated")
    parser.add_argument("--readyz-connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="N, the multi-worker case")
    parser.add_argument("--load-procs", type=int, default=default_load_procs())
    parser.add_argument("--threads", type=int, help="APPLIANCE_THREADS for both servers")
    parser.add_argument("--connection-limit", type=int, help="APPLIANCE_CONNECTION_LIMIT for both servers")
    parser.add_argument("--backlog", type=int, help="APPLIANCE_BACKLOG for both servers")
    args, unknown = parser.parse_known_args(argv)
    note_unknown("bench_healthz", unknown)
    exit_on_sigterm()
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
            [sys.executable, "-m", "appliance", "init", "--home", str(home)],
            check=True,
            cwd=REPO,
            capture_output=True,
            env=clean_env(),
        )
        one = run_server_points(home, 1, settings, plan, args.seconds, args.load_procs)
        many = run_server_points(home, args.workers, settings, plan, args.seconds, args.load_procs)
    print()
    header = (
        f"{'path':8} {'conns':>5} {'rps 1w':>9} {f'rps {args.workers}w':>9} {'ratio':>6} "
        f"{'p99 1w ms':>10} {f'p99 {args.workers}w ms':>10} {'failed 1w/Nw':>13} {'starved 1w/Nw':>14}"
    )
    print(header)
    print("-" * len(header))
    for key in plan:
        a, b = one[key], many[key]
        ratio = b.rps / a.rps if a.rps else float("nan")
        print(
            f"{key[0]:8} {key[1]:5d} {a.rps:9.0f} {b.rps:9.0f} {ratio:6.2f} "
            f"{a.p99_ms:10.1f} {b.p99_ms:10.1f} {f'{a.failed}/{b.failed}':>13} {f'{a.starved}/{b.starved}':>14}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
