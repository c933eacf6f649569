"""SQLite ``synchronous=FULL`` against ``NORMAL`` (the ``sqlite_synchronous`` setting): records created per second.

Run: ``.venv/bin/python bench/bench_synchronous.py [--seconds 3]``

For each mode, in the same run and on the same disk (a temporary home under
``--dir``, default the system's temp folder), it creates records through the
real service (:func:`appliance.records.write.create_record`: the row, the
full-text index, a version and an audit event in one transaction) for
``--seconds`` from one thread, and prints creates/s and the p50/p99 latency
of one create. Each create is one commit; with FULL each commit waits for an
fsync of the WAL, with NORMAL only checkpoints do. Nothing here is a test;
it prints figures.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.accounts.passwords import configure_from_settings
from appliance.clock import utcnow
from appliance.collections.definitions import create_collection
from appliance.config.home import init_home, open_instance
from appliance.config.settings import write_settings
from appliance.records.write import create_record
from appliance.storage.db import database, open_database
from appliance.storage.migrate import apply_migrations
from appliance.storage.models import User


def run(mode: str, seconds: float, parent: str | None) -> tuple[float, float, float]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-sync-{mode}-", dir=parent))
    try:
        home = folder / "home"
        init_home(home)
        write_settings(home / "appliance.toml", {"sqlite_synchronous": mode})
        instance = open_instance(home, {})
        configure_from_settings(instance.settings)
        db = open_database(instance)
        with db.connection_context():
            apply_migrations(db)
            mode_now = db.execute_sql("PRAGMA synchronous").fetchone()[0]
            assert mode_now == {"normal": 1, "full": 2}[mode], mode_now
            admin = User.create(
                email="admin@example.com", name="admin", role="admin", password_hash="!", created_at=utcnow()
            )
            create_collection({"name": "notes", "label": "Notes", "fields": [{"name": "title", "type": "text"}]}, admin)
            latencies = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                started = time.monotonic()
                create_record("notes", {"title": f"note {len(latencies)}"}, admin)
                latencies.append(time.monotonic() - started)
        database.initialize(None)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return len(latencies) / seconds, statistics.median(latencies) * 1000, p99 * 1000
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--dir", default=None, help="where the temporary homes go (the disk measured)")
    args = parser.parse_args()
    for mode in ("normal", "full"):
        rate, p50, p99 = run(mode, args.seconds, args.dir)
        print(f"synchronous={mode.upper():<6} {rate:8.1f} creates/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")


if __name__ == "__main__":
    main()
