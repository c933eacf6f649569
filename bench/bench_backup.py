"""Backup of a 1 GB database while another process writes: how long it takes, how long verification
takes, and the waits a writer sees meanwhile (against the same writer with no backup, for as long).

    .venv/bin/python bench/bench_backup.py [--size-mb 1024] [--seconds S]

Prints figures and ratios against baselines measured in the same run: a plain file copy of the
database (for the backup duration) and the writer alone (for the write waits). The writer commits
one row per transaction every ~2 ms with the appliance's own busy timeout (the
``sqlite_busy_timeout_ms`` setting of the temporary home), so "0 failed" means what it would in the
app. The writer-alone baseline runs as long as the backup call took (``--seconds`` overrides), so
the wait percentiles compare equal durations. The temporary home is removed and the writer process
stopped even when the backup fails; ``DATABASE_URL`` and ``APPLIANCE_*`` are ignored.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _load import clean_env, exit_on_sigterm, note_unknown  # bench/ is on sys.path: the benches run as scripts

from appliance.backups.archive import create_backup
from appliance.config.home import Paths, init_home, open_instance
from appliance.storage.db import open_database
from appliance.storage.migrate import apply_migrations

MAX_WRITER_SECONDS = 3600  # the writer stops by itself after this, whatever happens to the parent
MAX_WRITES = 2_000_000


def make_home(root: Path, size_mb: int) -> Path:
    home = root / "home"
    init_home(home)
    db = open_database(open_instance(home, clean_env()))
    with db.connection_context():
        apply_migrations(db)
    db.close()
    con = sqlite3.connect(home / "db" / "appliance.sqlite3", isolation_level=None)
    con.execute("PRAGMA journal_mode=wal")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE bench_record (id INTEGER PRIMARY KEY, customer TEXT, notes TEXT, amount REAL)")
    con.execute("CREATE INDEX bench_record_customer ON bench_record (customer)")
    target = size_mb * 1024 * 1024
    batch = 20000
    started = time.monotonic()
    # Each batch adds roughly 6 MB; the bound only stops a runaway loop.
    for _ in range(size_mb + 10):
        if (home / "db" / "appliance.sqlite3").stat().st_size >= target:
            break
        # Text that compresses like office data does (partly repetitive, partly random).
        con.execute("BEGIN")
        con.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO bench_record (customer, notes, amount) "
            "SELECT 'customer ' || (abs(random()) % 5000), "
            "'order notes: delivered to the back door, invoice ' || hex(randomblob(96)) || ' paid by transfer', "
            "abs(random()) % 100000 / 100.0 FROM n",
            (batch,),
        )
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    size = (home / "db" / "appliance.sqlite3").stat().st_size
    print(f"database: {size / 1e9:.2f} GB made in {time.monotonic() - started:.0f} s", flush=True)
    return home


def percentile_ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def writer(db_file: str, busy_timeout_s: float, stop, ready, out) -> None:
    """Insert one row per transaction until told to stop (bounded in time and count); report the waits."""
    parent = os.getppid()
    con = sqlite3.connect(db_file, isolation_level=None, timeout=busy_timeout_s)
    con.execute("PRAGMA synchronous=NORMAL")
    waits: list[float] = []
    failures = 0
    give_up = time.monotonic() + MAX_WRITER_SECONDS
    ready.set()
    try:
        while not stop.is_set() and len(waits) + failures < MAX_WRITES and time.monotonic() < give_up:
            if os.getppid() != parent:
                break  # the bench died without telling us
            began = time.perf_counter()
            try:
                con.execute(
                    "INSERT INTO runtime_setting (key, value, updated_at) VALUES (?, 'x', '2026-01-01')",
                    (f"bench{len(waits)}-{time.time_ns()}",),
                )
            except sqlite3.Error:
                failures += 1
            else:
                waits.append(time.perf_counter() - began)
            time.sleep(0.002)  # an office's writes come in a stream, not a tight loop
    finally:
        con.close()
        out.put(
            {
                "count": len(waits),
                "failures": failures,
                "p50": percentile_ms(waits, 0.50),
                "p99": percentile_ms(waits, 0.99),
                "max": max(waits, default=0.0) * 1000,
            }
        )


def with_writer(db_file: Path, busy_timeout_s: float, action) -> tuple[float, dict, object]:
    """Run ``action()`` while a writer process writes; the writer is stopped even when ``action`` raises."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: nothing of this process's SQLite state is inherited
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=writer, args=(str(db_file), busy_timeout_s, stop, ready, out))
    proc.start()
    try:
        if not ready.wait(60):
            raise SystemExit("the writer process did not start")
        started = time.monotonic()
        result = action()
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        try:
            stats = out.get(timeout=60)
        except Exception:
            stats = None
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if stats is None:
        raise SystemExit("the writer process reported nothing")
    return elapsed, stats, result


def describe(stats: dict) -> str:
    return (
        f"{stats['count']} writes, waits p50 {stats['p50']:.1f} ms, p99 {stats['p99']:.1f} ms, "
        f"max {stats['max']:.1f} ms, {stats['failures']} failed"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the database to back up")
    parser.add_argument(
        "--seconds", type=float, help="length of the writer-alone baseline (default: as long as the backup took)"
    )
    args, unknown = parser.parse_known_args(argv)
    note_unknown("bench_backup", unknown)
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        root = Path(tmp)
        home = make_home(root, args.size_mb)
        db_file = home / "db" / "appliance.sqlite3"
        busy_timeout_s = open_instance(home, clean_env()).settings.sqlite_busy_timeout_ms / 1000

        copy_started = time.monotonic()
        shutil.copyfile(db_file, root / "plain-copy.sqlite3")
        copy_seconds = time.monotonic() - copy_started
        (root / "plain-copy.sqlite3").unlink()

        elapsed, during, result = with_writer(
            db_file, busy_timeout_s, lambda: create_backup(Paths(home), kind="manual")
        )
        base_seconds = args.seconds if args.seconds is not None else elapsed
        _, alone, _ = with_writer(db_file, busy_timeout_s, lambda: time.sleep(base_seconds))
        timings = result.timings
        archive_size = result.path.stat().st_size
        print(f"backup archive: {archive_size / 1e9:.2f} GB, verified: {result.verified}")
        print(f"plain copy of the database file (baseline): {copy_seconds:.1f} s")
        print(
            f"backup duration (snapshot + archive): {timings['write_seconds']:.1f} s "
            f"(snapshot alone {timings['snapshot_seconds']:.1f} s); ratio to a plain copy: "
            f"{timings['write_seconds'] / max(copy_seconds, 1e-6):.1f}x"
        )
        print(f"verification duration: {timings['verify_seconds']:.1f} s")
        print(f"whole backup call: {elapsed:.1f} s")
        print(f"writer busy timeout (sqlite_busy_timeout_ms): {busy_timeout_s * 1000:.0f} ms")
        print(f"writer alone ({base_seconds:.1f} s, baseline): {describe(alone)}")
        print(f"writer during the backup ({elapsed:.1f} s): {describe(during)}")
        print(
            f"ratios during/alone: p99 wait {during['p99'] / max(alone['p99'], 1e-6):.1f}x, "
            f"max wait {during['max'] / max(alone['max'], 1e-6):.1f}x"
        )
        return 0 if result.verified and during["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
