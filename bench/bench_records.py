"""Records API throughput: the appliance next to a bare Flask + Waitress app doing the same SQL.

Run: ``.venv/bin/python bench/bench_records.py [--seconds 3] [--connections 32,64,256] [--big 1000000]
[--load-procs P] [--threads 8]``

For 10,000 and then ``--big`` rows it prints, at each number of concurrent
connections, requests per second and p50/p99 latency of: list (20 per page,
with total count, token auth), view one record, create, and a filtered list
(an indexed field), for the appliance (one worker process) and for a bare
Flask app in one Waitress process with the same threads that runs the same
statements on the same database file without the appliance (no auth, no
permissions, no validation, no audit). The ratio is our overhead.

The load generator is several processes (``--load-procs``), each with one
thread per keep-alive ``http.client`` connection (bench/_load.py), so one
Python process does not cap the bare baseline. Failed requests (non-2xx,
resets, timeouts) are counted apart and are not in req/s or the latencies.
Both servers use the temporary home's SQLite file (``DATABASE_URL`` and
``APPLIANCE_*`` are dropped from their environment) and bind 127.0.0.1; the
temporary home is removed and the servers stopped even on failure. Nothing
here is a test; it prints figures.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from _load import (  # bench/ is on sys.path: the benches run as scripts
    HOST,
    Point,
    Request,
    clean_env,
    default_load_procs,
    exit_on_sigterm,
    measure,
    note_unknown,
    start_appliance,
    stop_process,
)

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


SCENARIOS = ("list 20 + total", "view", "create", "filtered list")


@dataclass(frozen=True)
class Scenario:
    """A picklable request maker (it runs in the load processes) for one scenario on one server."""

    name: str
    rows: int
    appliance: bool
    token: str

    def __call__(self, rnd: random.Random) -> Request:
        auth = {"Authorization": f"Bearer {self.token}"} if self.appliance else {}
        api = "/api/collections/bench/records"
        if self.name == "list 20 + total":
            return ("GET", f"{api}?page_size=20" if self.appliance else "/list", None, auth)
        if self.name == "view":
            rid = rnd.randint(1, self.rows)
            return ("GET", f"{api}/{rid}" if self.appliance else f"/view/{rid}", None, auth)
        if self.name == "create":
            body = json.dumps({"title": f"new {rnd.random()}", "quantity": rnd.randrange(1000), "price": 1.5})
            return ("POST", api if self.appliance else "/create", body, {**auth, "Content-Type": "application/json"})
        if self.name == "filtered list":
            q = rnd.randrange(1000)
            return ("GET", f"{api}?quantity={q}" if self.appliance else f"/filtered?quantity={q}", None, auth)
        raise ValueError(self.name)


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


def start_bare(db_path: Path, threads: int, tmp: Path) -> tuple[subprocess.Popen, str, int]:
    """The bare app in its own process (bound to 127.0.0.1); stopped again if it does not come up."""
    port_file = tmp / "bare.port"
    port_file.unlink(missing_ok=True)
    with open(tmp / "bare.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "--bare", str(db_path), str(port_file), str(threads)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=clean_env(),
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the bare app exited with {process.returncode}; see its log")
            text = port_file.read_text() if port_file.exists() else ""
            if text:
                return process, HOST, int(text)
            time.sleep(0.1)
        raise SystemExit("the bare app did not start in 30 s")
    except BaseException:
        stop_process(process)
        raise


def run_server(
    label: str, start, rows: int, token: str, connections: list[int], seconds: float, procs: int
) -> dict[tuple[str, int], Point]:
    """Start one server, measure every scenario at every connection count, stop it (even on failure)."""
    process, host, port = start()
    results: dict[tuple[str, int], Point] = {}
    try:
        with ProcessPoolExecutor(max_workers=procs) as pool:
            warm = Scenario("view", rows, label == "appliance", token)
            measure(pool, procs, host, port, warm, min(connections), 1.0)
            for name in SCENARIOS:
                for conns in connections:
                    scenario = Scenario(name, rows, label == "appliance", token)
                    results[(name, conns)] = point = measure(pool, procs, host, port, scenario, conns, seconds)
                    print(f"  {label:9} {name:16} {conns:4} conns: {point.rps:7.0f} req/s", flush=True)
    finally:
        stop_process(process)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring window per point")
    parser.add_argument("--connections", default="32,64,256", help="concurrent connections, comma separated")
    parser.add_argument("--threads", type=int, default=8, help="server threads (both servers)")
    parser.add_argument("--small", type=int, default=10_000, help="rows of the first round")
    parser.add_argument("--big", type=int, default=1_000_000, help="rows of the second round")
    parser.add_argument("--load-procs", type=int, default=default_load_procs())
    args, unknown = parser.parse_known_args(argv)
    note_unknown("bench_records", unknown)
    exit_on_sigterm()
    connections = [int(c) for c in args.connections.split(",") if c.strip()]

    from appliance.accounts.tokens import create_token
    from appliance.accounts.user_changes import create_user
    from appliance.actors import SYSTEM
    from appliance.collections.definitions import create_collection
    from appliance.config.home import init_home, open_instance
    from appliance.storage.db import open_database
    from appliance.storage.migrate import apply_migrations

    with tempfile.TemporaryDirectory(prefix="bench-records-") as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        init_home(home)
        db = open_database(open_instance(home, clean_env()))  # the temporary SQLite, whatever the environment says
        try:
            apply_migrations(db)
            admin = create_user("bench@example.com", "Bench", "admin", "bench-password-long-1", actor="bench")
            _token, secret = create_token(admin.id, "bench", scope="write", actor="bench")
            create_collection({"name": "bench", "label": "Bench", "fields": FIELDS}, SYSTEM)
        finally:
            db.close()
        db_path = home / "db" / "appliance.sqlite3"

        print(
            f"records benchmark: {args.seconds:g} s per point, connections {connections}, "
            f"{args.load_procs} load processes, one server process with {args.threads} threads each, "
            "SQLite WAL, token auth on the appliance",
            flush=True,
        )
        filled = 0
        for rows in sorted({args.small, args.big}):
            started = time.monotonic()
            fill(db_path, rows, filled)
            filled = rows
            print(f"\n== {rows:,} rows (filled in {time.monotonic() - started:.1f} s) ==", flush=True)
            servers = {
                "appliance": lambda: start_appliance(
                    home, {"workers": "1", "threads": str(args.threads)}, tmp / "appliance.log"
                ),
                "bare": lambda: start_bare(db_path, args.threads, tmp),
            }
            results = {
                label: run_server(label, start, rows, secret, connections, args.seconds, args.load_procs)
                for label, start in servers.items()
            }
            header = (
                f"{'scenario':16} {'conns':>5} {'appliance req/s':>16} {'p50 ms':>7} {'p99 ms':>8} "
                f"{'bare req/s':>11} {'p50 ms':>7} {'p99 ms':>8} {'ratio':>6} {'failed a/b':>11}"
            )
            print(header)
            print("-" * len(header))
            for name in SCENARIOS:
                for conns in connections:
                    a, b = results["appliance"][(name, conns)], results["bare"][(name, conns)]
                    ratio = a.rps / b.rps if b.rps else float("nan")
                    print(
                        f"{name:16} {conns:5d} {a.rps:16.0f} {a.p50_ms:7.1f} {a.p99_ms:8.1f} "
                        f"{b.rps:11.0f} {b.p50_ms:7.1f} {b.p99_ms:8.1f} {ratio:6.2f} {f'{a.failed}/{b.failed}':>11}"
                    )
    print(
        "\nratio = appliance req/s / bare req/s (1.00 = no overhead); failed requests are counted apart, "
        "not in req/s or latencies. Unfiltered totals use the maintained count."
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        run_bare(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main(sys.argv[1:]))
