"""Backup of a 1 GB database while another process writes: how long it takes, how long verification
takes, and the longest single write wait the writer sees (against the same writer with no backup).

    .venv/bin/python bench/bench_backup.py [--size-mb 1024] [--seconds 5]

Prints figures and ratios against baselines measured in the same run: a plain file copy of the
database (for the backup duration) and the writer alone (for the write wait).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.backups import create_backup
from appliance.db import open_database
from appliance.home import Paths, init_home, open_instance
from appliance.migrate import apply_migrations


def make_home(root: Path, size_mb: int) -> Path:
    home = root / "home"
    init_home(home)
    db = open_database(open_instance(home))
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
    while (home / "db" / "appliance.sqlite3").stat().st_size < target:
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


def writer(db_file: str, stop: mp.Event, ready: mp.Event, out: mp.Queue) -> None:
    """Insert one row per transaction until told to stop; report the count and the longest wait."""
    con = sqlite3.connect(db_file, isolation_level=None, timeout=30)
    con.execute("PRAGMA synchronous=NORMAL")
    longest = 0.0
    count = 0
    failures = 0
    ready.set()
    while not stop.is_set():
        began = time.perf_counter()
        try:
            con.execute(
                "INSERT INTO runtime_setting (key, value, updated_at) VALUES (?, 'x', '2026-01-01')",
                (f"bench{count}-{time.time_ns()}",),
            )
        except sqlite3.Error:
            failures += 1
            continue
        longest = max(longest, time.perf_counter() - began)
        count += 1
        time.sleep(0.002)  # an office's writes come in a stream, not a tight loop
    con.close()
    out.put((count, longest, failures))


def with_writer(db_file: Path, action) -> tuple[float, tuple[int, float, int], object]:
    stop, ready, out = mp.Event(), mp.Event(), mp.Queue()
    proc = mp.Process(target=writer, args=(str(db_file), stop, ready, out))
    proc.start()
    ready.wait(30)
    started = time.monotonic()
    result = action()
    elapsed = time.monotonic() - started
    stop.set()
    stats = out.get(timeout=60)
    proc.join(30)
    return elapsed, stats, result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the writer-alone baseline")
    args, _unknown = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        root = Path(tmp)
        home = make_home(root, args.size_mb)
        db_file = home / "db" / "appliance.sqlite3"

        copy_started = time.monotonic()
        shutil.copyfile(db_file, root / "plain-copy.sqlite3")
        copy_seconds = time.monotonic() - copy_started
        (root / "plain-copy.sqlite3").unlink()

        _base_elapsed, (base_count, base_longest, base_failures), _ = with_writer(
            db_file, lambda: time.sleep(args.seconds)
        )
        elapsed, (count, longest, failures), result = with_writer(
            db_file, lambda: create_backup(Paths(home), kind="manual")
        )
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
        print(
            f"writer alone ({args.seconds:.0f} s): {base_count} writes, longest wait {base_longest * 1000:.1f} ms, "
            f"{base_failures} failed"
        )
        print(
            f"writer during the backup: {count} writes, longest wait {longest * 1000:.1f} ms, {failures} failed; "
            f"ratio of longest waits: {longest / max(base_longest, 1e-6):.1f}x"
        )
        return 0 if result.verified and failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
