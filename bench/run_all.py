"""Run every ``bench/bench_*.py`` in turn (``make bench``); exit non-zero when one fails or times out.

    python bench/run_all.py [--timeout SECONDS] [-- ARGS...]

Arguments after ``--`` are passed to every bench, e.g. ``python bench/run_all.py -- --seconds 2``.
Every bench parses its options with ``parse_known_args`` and ignores (with a note) the ones it
does not take, so one list can tune all of them: ``--seconds`` shortens the HTTP benches and is
ignored by bench_csv_import, ``--rows`` only reaches bench_csv_import, and so on. (The other way,
run_all passing each bench only the options it declares, would mean parsing every bench's
options here, which drifts from the benches.)

Each bench gets ``--timeout`` seconds (default 900, or ``BENCH_TIMEOUT`` in the environment).
A bench that runs out of time is sent SIGTERM (the benches turn it into SystemExit, so their
``finally`` blocks stop their servers and remove their temporary homes), given 60 s, and then
its whole process group is killed. A bench that fails or times out is reported and the others
still run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
GRACE_SECONDS = 60


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL what is left of the bench's process group (servers and load processes it left behind)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_one(script: Path, extra: list[str], timeout: float) -> str | None:
    """Run one bench in its own process group; ``None`` when it succeeded, else what went wrong."""
    process = subprocess.Popen([sys.executable, str(script), *extra], cwd=BENCH_DIR.parent, start_new_session=True)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=GRACE_SECONDS)
        kill_group(process)
        return f"timed out after {timeout:.0f} s"
    except BaseException:
        # Ctrl-C or an error here: do not leave the bench running on its own.
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=GRACE_SECONDS)
        kill_group(process)
        raise
    return None if code == 0 else f"exit {code}"


def main(argv: list[str]) -> int:
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("BENCH_TIMEOUT", 900)),
        help="seconds each bench may run (default 900 or BENCH_TIMEOUT)",
    )
    args = parser.parse_args(own)
    problems: dict[str, str] = {}
    for script in sorted(BENCH_DIR.glob("bench_*.py")):
        print(f"=== {script.name}", flush=True)
        started = time.monotonic()
        problem = run_one(script, extra, args.timeout)
        outcome = problem or "ok"
        print(f"=== {script.name}: {outcome} in {time.monotonic() - started:.0f} s\n", flush=True)
        if problem:
            problems[script.name] = problem
    if problems:
        print("failed: " + ", ".join(f"{name} ({why})" for name, why in problems.items()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
