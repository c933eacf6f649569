"""Run every ``bench/bench_*.py`` in turn (``make bench``); exit non-zero when one fails.

Arguments after ``--`` are passed to every bench, e.g. ``python bench/run_all.py -- --seconds 2``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    failed = []
    for script in sorted(BENCH_DIR.glob("bench_*.py")):
        print(f"=== {script.name}", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(script), *extra], cwd=BENCH_DIR.parent).returncode
        print(f"=== {script.name}: exit {code} in {time.monotonic() - started:.0f} s\n", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
