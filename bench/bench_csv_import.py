"""CSV import of 50,000 rows: how long it takes, and how long another writer waits meanwhile.

Run: ``.venv/bin/python bench/bench_csv_import.py [--rows 50000] [--batch 200]``

In a temporary home it imports a generated file twice into an empty
collection: once as the appliance does (batches of ``--batch`` rows, each a
short transaction) and, as the baseline, in one single transaction (the
whole file as one batch). During each import a separate process saves a
record through the records service every 20 ms and times each save; the
figures are the import's duration and that writer's longest wait and
failures (a save that waited out the busy timeout fails). Nothing here is a
test; it prints figures and the ratio of the two longest waits.

The writer process is stopped and the temporary home removed even when an
import fails; ``DATABASE_URL`` and ``APPLIANCE_*`` are ignored (the temporary
home's SQLite and default settings are used). Arguments it does not take
(from ``run_all.py -- ...``) are ignored with a note.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import sys
import tempfile
import time
from pathlib import Path

from _load import clean_env, exit_on_sigterm, note_unknown  # bench/ is on sys.path: the benches run as scripts

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MAX_WRITER_SECONDS = 3600  # the writer stops by itself after this, whatever happens to the parent

FIELDS = [
    {"name": "title", "type": "text", "required": True, "unique": True},
    {"name": "quantity", "type": "integer", "min": 0},
    {"name": "price", "type": "number"},
    {"name": "status", "type": "select", "choices": ["open", "paid"], "filterable": True},
    {"name": "notes", "type": "long_text"},
]


def make_home(root: Path) -> Path:
    from appliance.actors import SYSTEM
    from appliance.collections.definitions import create_collection
    from appliance.config.home import init_home, open_instance
    from appliance.storage.db import open_database
    from appliance.storage.migrate import apply_migrations

    home = root / "home"
    init_home(home)
    db = open_database(open_instance(home, clean_env()))
    with db.connection_context():
        apply_migrations(db)
        for name in ("items", "other"):
            create_collection({"name": name, "label": name, "fields": FIELDS, "permissions": {}}, SYSTEM)
    return home


def make_csv(rows: int, prefix: str) -> bytes:
    lines = ["title;quantity;price;status;notes"]
    for n in range(rows):
        note = f'"line one of {n}\nline two"' if n % 10 == 0 else f"note {n}"
        lines.append(f"{prefix}{n};{n % 100};{n / 7:.2f};{'open' if n % 3 else 'paid'};{note}")
    return ("\n".join(lines) + "\n").encode()


def writer(home: str, stop, ready, results) -> None:
    """Save a record every 20 ms until told to stop (bounded in time); report (count, longest wait, failures)."""
    from appliance.actors import SYSTEM
    from appliance.config.home import open_instance
    from appliance.records.write import create_record
    from appliance.storage.db import database, open_database

    parent = os.getppid()
    open_database(open_instance(Path(home), clean_env()))
    longest, failures, count = 0.0, 0, 0
    give_up = time.monotonic() + MAX_WRITER_SECONDS
    try:
        with database.connection_context():
            ready.set()
            while not stop.is_set() and time.monotonic() < give_up and os.getppid() == parent:
                started = time.monotonic()
                try:
                    create_record("other", {"title": f"w{count}-{time.time_ns()}"}, SYSTEM)
                except Exception:
                    failures += 1
                longest = max(longest, time.monotonic() - started)
                count += 1
                time.sleep(0.02)
    finally:
        results.put((count, longest, failures))


def timed_import(home: Path, data: bytes, batch: int) -> tuple[float, int, float, int]:
    """Import ``data`` while a writer process saves records; the writer is stopped even when the import raises."""
    from appliance.actors import SYSTEM
    from appliance.records.csv.importing import import_csv

    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no SQLite connection crosses a fork
    stop, ready, results = ctx.Event(), ctx.Event(), ctx.Queue()
    process = ctx.Process(target=writer, args=(str(home), stop, ready, results))
    process.start()
    try:
        if not ready.wait(60):
            raise SystemExit("the writer process did not start")
        time.sleep(0.2)
        started = time.monotonic()
        created = import_csv("items", data, SYSTEM, batch_size=batch)
        elapsed = time.monotonic() - started
        time.sleep(0.2)
    finally:
        stop.set()
        try:
            stats = results.get(timeout=60)
        except queue.Empty:
            stats = None
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
    if stats is None:
        raise SystemExit("the writer process reported nothing")
    if created <= 0:
        raise SystemExit("the import created no records")
    count, longest, failures = stats
    return elapsed, count, longest, failures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=200)
    args, unknown = parser.parse_known_args(argv)
    note_unknown("bench_csv_import", unknown)
    exit_on_sigterm()
    from appliance.config.home import open_instance
    from appliance.storage.db import database, open_database

    with tempfile.TemporaryDirectory(prefix="bench-csv-") as tmp:
        home = make_home(Path(tmp))
        open_database(open_instance(home, clean_env()))
        with database.connection_context():
            batched = timed_import(home, make_csv(args.rows, "b"), args.batch)
            single = timed_import(home, make_csv(args.rows, "s"), args.rows)
    for label, (elapsed, count, longest, failures) in (
        (f"batches of {args.batch}", batched),
        ("one transaction (baseline)", single),
    ):
        print(
            f"{label}: {args.rows} rows in {elapsed:.1f} s ({args.rows / elapsed:,.0f} rows/s); "
            f"concurrent writer: {count} saves, longest wait {longest * 1000:.0f} ms, {failures} failed"
        )
    print(f"longest writer wait, batched vs one transaction: {batched[2] / max(single[2], 1e-6):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
