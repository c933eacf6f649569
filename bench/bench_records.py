"""Records API throughput: the appliance next to a bare Flask + Waitress app doing the same SQL.

Run: ``.venv/bin/python bench/bench_records.py [--seconds 3] [--concurrency 16] [--big 1000000]``

For 10,000 and then 1,000,000 rows it prints requests per second and p99
latency of: list (20 per page, with total count, token auth), view one
record, create, and a filtered list (an indexed field), for the appliance
(one worker process) and for a bare Flask app in one Waitress process with
the same threads that runs the same statements on the same database file
without the appliance (no auth, no permissions, no validation, no audit).
The ratio is our overhead. Nothing here is a test; it prints figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from _load import run_threads  # bench/ is on sys.path: the benches run as scripts

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FIELDS = [
    {"name": "title", "type": "text", "required": True},
    {"name": "quantity", "type": "integer", "filterable": True},
    {"name": "price", "type": "number"},
    {"name": "status", "type": "select", "choices": ["open", "paid", "void"], "filterable": True},
]
WORDS = ["oak", "pine", "desk", "chair", "lamp", "shelf", "cable", "screen", "paper", "stapler", "mug", "plant"]


# --- the bare baseline ------------------------------------------------------------------------


def run_bare(db_path: str, port_file: str, threads: int) -> None:
    """A bare Flask app over the same table: the same statements, nothing else."""
    import sqlite3

    from flask import Flask, jsonify, request
    from waitress import create_server

    app = Flask("bare")
    local = threading.local()

    def db() -> sqlite3.Connection:
        if not hasattr(local, "conn"):
            local.conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
            local.conn.execute("PRAGMA busy_timeout = 5000")
            local.conn.execute("PRAGMA synchronous = NORMAL")
        return local.conn

    def rows(cursor) -> list[dict]:
        cols = [d[0] for d in cursor.description]
        return [dict(zip(cols, r, strict=True)) for r in cursor.fetchall()]

    @app.get("/list")
    def listing():
        conn = db()
        total = conn.execute("SELECT row_count FROM collection WHERE name = 'bench'").fetchone()[0]
        items = rows(conn.execute('SELECT * FROM "c_bench" ORDER BY id ASC LIMIT 20 OFFSET 0'))
        return jsonify({"items": items, "total_items": total})

    @app.get("/filtered")
    def filtered():
        conn = db()
        q = int(request.args["quantity"])
        total = conn.execute('SELECT COUNT(*) FROM "c_bench" WHERE quantity = ?', (q,)).fetchone()[0]
        items = rows(conn.execute('SELECT * FROM "c_bench" WHERE quantity = ? ORDER BY id LIMIT 20', (q,)))
        return jsonify({"items": items, "total_items": total})

    @app.get("/view/<int:rid>")
    def view(rid: int):
        return jsonify(rows(db().execute('SELECT * FROM "c_bench" WHERE id = ?', (rid,)))[0])

    @app.post("/create")
    def create():
        body = request.get_json()
        conn = db()
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            'INSERT INTO "c_bench" (created_at, updated_at, title, quantity, price, status) VALUES (?, ?, ?, ?, ?, ?)',
            (
                "2026-01-01T00:00:00.000Z",
                "2026-01-01T00:00:00.000Z",
                body["title"],
                body["quantity"],
                body["price"],
                "open",
            ),
        )
        conn.execute("UPDATE collection SET row_count = row_count + 1 WHERE name = 'bench'")
        conn.execute("COMMIT")
        return jsonify({"id": cur.lastrowid}), 201

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    Path(port_file).write_text(str(sock.getsockname()[1]))
    server = create_server(app, sockets=[sock], threads=threads, ident="bare")
    server.run()


# --- load ---------------------------------------------------------------------------------------


def load(base: str, make_request, seconds: float, concurrency: int) -> tuple[float, float, int]:
    """Hammer with ``concurrency`` keep-alive connections for ``seconds``; (req/s, p99 ms, errors)."""
    parts = urlsplit(base)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine = []
        bad = 0
        while time.monotonic() < stop:
            method, path, body, headers = make_request(rnd)
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 300:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    elapsed = run_threads(worker, concurrency)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    return len(latencies) / elapsed, p99, errors[0]


# --- set-up -------------------------------------------------------------------------------------


def fill(db_path: Path, upto: int, start: int) -> None:
    """Insert rows ``start+1 .. upto`` straight into the table (FTS kept by the triggers) and fix the count."""
    import sqlite3

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    rnd = random.Random(start)
    chunk = 50_000
    for first in range(start, upto, chunk):
        n = min(chunk, upto - first)
        conn.execute("BEGIN")
        conn.executemany(
            'INSERT INTO "c_bench" (created_at, updated_at, created_by, updated_by, title, quantity, price, status) '
            "VALUES (?, ?, 1, 1, ?, ?, ?, ?)",
            (
                (
                    "2026-01-01T00:00:00.000Z",
                    "2026-01-01T00:00:00.000Z",
                    f"{rnd.choice(WORDS)} {rnd.choice(WORDS)} {first + i}",
                    rnd.randrange(1000),
                    round(rnd.random() * 100, 2),
                    rnd.choice(("open", "paid", "void")),
                )
                for i in range(n)
            ),
        )
        conn.execute("UPDATE collection SET row_count = (SELECT COUNT(*) FROM c_bench) WHERE name = 'bench'")
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def start_appliance(home: Path, threads: int) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(APPLIANCE_WORKERS="1", APPLIANCE_THREADS=str(threads))
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance", "serve", "--home", str(home), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            info = json.loads((home / "run" / "server.json").read_text())
            if info.get("pid") == process.pid:
                parts = urlsplit(info["url"])
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return process, info["url"].rstrip("/")
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the appliance did not start")


def start_bare(db_path: Path, threads: int, tmp: Path) -> tuple[subprocess.Popen, str]:
    port_file = tmp / "bare.port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, __file__, "--bare", str(db_path), str(port_file), str(threads)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (port_file.exists() and port_file.read_text()):
        time.sleep(0.1)
    return process, f"http://127.0.0.1:{port_file.read_text()}"


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--big", type=int, default=1_000_000)
    args = parser.parse_args()

    from appliance.collections import SYSTEM, create_collection
    from appliance.db import open_database
    from appliance.home import init_home, open_instance
    from appliance.migrate import apply_migrations
    from appliance.tokens import create_token
    from appliance.users import create_user

    tmp = Path(tempfile.mkdtemp(prefix="bench-records-"))
    home = tmp / "home"
    init_home(home)
    db = open_database(open_instance(home))
    apply_migrations(db)
    admin = create_user("bench@example.com", "Bench", "admin", "bench-password-long-1", actor="bench")
    _token, secret = create_token(admin.id, "bench", scope="write", actor="bench")
    create_collection({"name": "bench", "label": "Bench", "fields": FIELDS}, SYSTEM)
    db.close()
    db_path = home / "db" / "appliance.sqlite3"
    auth = {"Authorization": f"Bearer {secret}"}
    json_auth = {**auth, "Content-Type": "application/json"}

    def scenarios(rows: int, appliance: bool):
        def listing(rnd):
            return ("GET", "/api/collections/bench/records?page_size=20" if appliance else "/list", None, auth)

        def view(rnd):
            rid = rnd.randint(1, rows)
            return ("GET", f"/api/collections/bench/records/{rid}" if appliance else f"/view/{rid}", None, auth)

        def create(rnd):
            body = json.dumps({"title": f"new {rnd.random()}", "quantity": rnd.randrange(1000), "price": 1.5})
            return ("POST", "/api/collections/bench/records" if appliance else "/create", body, json_auth)

        def filtered(rnd):
            q = rnd.randrange(1000)
            path = f"/api/collections/bench/records?quantity={q}" if appliance else f"/filtered?quantity={q}"
            return ("GET", path, None, auth)

        return [
            ("list 20 + total", listing),
            ("view", view),
            ("create", create),
            ("filtered list", filtered),
        ]

    print(
        f"records benchmark: {args.concurrency} connections, {args.seconds:.0f} s per run, "
        f"one server process with {args.threads} threads each, SQLite WAL, token auth on the appliance"
    )
    filled = 0
    for rows in (10_000, args.big):
        started = time.monotonic()
        fill(db_path, rows, filled)
        filled = rows
        print(f"\n== {rows:,} rows (filled in {time.monotonic() - started:.1f} s) ==")
        print(f"{'scenario':18} {'appliance req/s':>16} {'p99 ms':>8} {'bare req/s':>11} {'p99 ms':>8} {'ratio':>6}")
        results: dict[str, dict[str, tuple]] = {}
        for label, appliance in (("appliance", True), ("bare", False)):
            process, base = start_appliance(home, args.threads) if appliance else start_bare(db_path, args.threads, tmp)
            try:
                for name, make in scenarios(rows, appliance):
                    results.setdefault(name, {})[label] = load(base, make, args.seconds, args.concurrency)
            finally:
                stop(process)
        for name, pair in results.items():
            a_rps, a_p99, a_err = pair["appliance"]
            b_rps, b_p99, b_err = pair["bare"]
            errors = f"  errors {a_err}/{b_err}" if a_err or b_err else ""
            print(f"{name:18} {a_rps:16.0f} {a_p99:8.1f} {b_rps:11.0f} {b_p99:8.1f} {a_rps / b_rps:6.2f}{errors}")
    print("\nratio = appliance req/s / bare req/s (1.00 = no overhead). Unfiltered totals use the maintained count.")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        run_bare(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
