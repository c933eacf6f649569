"""What the benches share: the HTTP load generator, a clean environment, and starting/stopping servers.

The load generator runs in several processes (a ``ProcessPoolExecutor``, so
one Python process and its GIL do not cap the figures); each process runs one
thread per keep-alive ``http.client`` connection. All processes start at the
same instant and stop at the end of the window; a point is bounded in time
(the window, plus a per-request timeout) and in count (``max_requests``).
Only answers with a 2xx status count towards requests per second and the
latency percentiles; everything else (another status, a reset, a timeout) is
counted as *failed*.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
MAX_REQUESTS_PER_POINT = 2_000_000

# (method, path, body or None, headers)
Request = tuple[str, str, str | None, dict[str, str]]
MakeRequest = Callable[[random.Random], Request]


# --- the process around a bench -----------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without ``APPLIANCE_*`` and ``DATABASE_URL`` (so everything uses the temporary home's SQLite), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


def exit_on_sigterm() -> None:
    """Turn SIGTERM (``run_all.py`` on a timeout) into ``SystemExit`` so ``finally`` blocks stop servers and remove temp homes."""

    def handler(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, handler)


def note_unknown(name: str, unknown: list[str]) -> None:
    """Say which arguments (from ``run_all.py -- ...``) this bench does not take and ignores."""
    if unknown:
        print(f"{name}: ignoring arguments it does not take: {' '.join(unknown)}", flush=True)


def default_load_procs() -> int:
    return max(2, min(4, os.cpu_count() or 1))


# --- servers --------------------------------------------------------------------------------------


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM ``process`` and wait; SIGKILL it if it does not end within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_appliance(
    home: Path, settings: dict[str, str], log: Path, timeout: float = 60
) -> tuple[subprocess.Popen, str, int]:
    """``appliance serve --port 0`` on ``home`` bound to 127.0.0.1, ``settings`` as ``APPLIANCE_<NAME>``.

    Returns (process, host, port) once ``/readyz`` answers 200; its stderr goes to ``log``.
    On failure the process is stopped and ``SystemExit`` raised with the log's tail.
    """
    env = clean_env(APPLIANCE_HOST=HOST, **{f"APPLIANCE_{k.upper()}": str(v) for k, v in settings.items()})
    with open(log, "ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "appliance", "serve", "--home", str(home), "--port", "0"],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        server_json = home / "run" / "server.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}: {_tail(log)}")
            try:
                info = json.loads(server_json.read_text())
                if info.get("pid") == process.pid and get_status(HOST, info["port"], "/readyz") == 200:
                    return process, HOST, int(info["port"])
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise SystemExit(f"the server did not become ready in {timeout:.0f} s: {_tail(log)}")
    except BaseException:
        stop_process(process)
        raise


def _tail(log: Path, size: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def get_status(host: str, port: int, path: str, timeout: float = 2) -> int:
    """The status of ``GET path``, 0 when there is no answer."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        return answer.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


# --- the load generator ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Get:
    """A picklable request maker: always ``GET path`` with ``headers``."""

    path: str
    headers: tuple[tuple[str, str], ...] = ()

    def __call__(self, _rnd: random.Random) -> Request:
        return ("GET", self.path, None, dict(self.headers))


@dataclass
class Point:
    """One measurement: successful answers and their latencies, failed requests, starved connections."""

    ok: int = 0
    failed: int = 0
    starved: int = 0  # connections that got no successful answer in the whole window
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(0.50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(0.99)


def drive(
    host: str, port: int, make: MakeRequest, connections: int, start_at: float, seconds: float, cap: int, seed: int
) -> tuple[int, int, int, list[float]]:
    """One load process: ``connections`` threads, each with one keep-alive connection, until the window ends.

    Returns (ok, failed, starved, latencies of the ok answers).
    """
    end_at = start_at + seconds
    lock = threading.Lock()
    totals = {"ok": 0, "failed": 0, "starved": 0, "sent": 0}
    latencies: list[float] = []

    def one_connection(slot: int) -> None:
        rnd = random.Random(seed * 100_003 + slot)
        conn = None
        mine: list[float] = []
        failed = 0
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
            method, path, body, headers = make(rnd)
            try:
                if conn is None:
                    # A request still unanswered a second after the window is abandoned.
                    conn = http.client.HTTPConnection(host, port, timeout=max(0.5, end_at - now + 1.0))
                t0 = time.perf_counter()
                conn.request(method, path, body=body, headers={"Connection": "keep-alive", **headers})
                resp = conn.getresponse()
                resp.read()
                elapsed = time.perf_counter() - t0
                if time.time() > end_at:
                    break  # finished after the window: not counted
                if 200 <= resp.status < 300:
                    mine.append(elapsed)
                else:
                    failed += 1
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if time.time() <= end_at:
                    failed += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            totals["ok"] += len(mine)
            totals["failed"] += failed
            totals["starved"] += 1 if not mine else 0
            latencies.extend(mine)

    threads = [threading.Thread(target=one_connection, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    give_up = time.monotonic() + (start_at - time.time()) + seconds + 30
    for thread in threads:
        thread.join(timeout=max(0.0, give_up - time.monotonic()))
    with lock:
        return totals["ok"], totals["failed"], totals["starved"], list(latencies)


def measure(
    pool: ProcessPoolExecutor,
    procs: int,
    host: str,
    port: int,
    make: MakeRequest,
    connections: int,
    seconds: float,
    max_requests: int = MAX_REQUESTS_PER_POINT,
) -> Point:
    """Drive ``host:port`` with ``connections`` connections spread over ``procs`` processes of ``pool``."""
    share = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
    start_at = time.time() + 0.5  # every process starts at once
    cap = max(1, max_requests // procs)
    futures = [
        pool.submit(drive, host, port, make, n, start_at, seconds, cap, seed) for seed, n in enumerate(share) if n
    ]
    point = Point(seconds=seconds)
    for future in futures:
        ok, failed, starved, latencies = future.result(timeout=seconds + 90)
        point.ok += ok
        point.failed += failed
        point.starved += starved
        point.latencies.extend(latencies)
    return point
