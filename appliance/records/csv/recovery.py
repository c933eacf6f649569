"""Undoing the imports a dead process left half-written, from their journals.

A ``running`` job whose heartbeat went stale and whose process is gone (or
whose heartbeat is very stale) died: its rows are deleted by the id range in
its journal, and it is marked failed with the error code ``interrupted``.
That happens when the job is read (:func:`appliance.records.csv.jobs.get_import_job`)
and when the server starts (:func:`recover_interrupted_imports`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appliance.audit import record_event
from appliance.config.home import Paths
from appliance.errors import NotFound
from appliance.records.csv.importing import undo_import_range
from appliance.records.csv.job_files import JOB_ID_LENGTH, job_paths, journal_path, read_job, write_job
from appliance.storage.db import database, write_transaction

# A running job whose heartbeat is older than this, and whose process is gone, died.
STALE_SECONDS = 30.0
# ... and older than this it died, whatever holds its process id now.
DEAD_SECONDS = 600.0
INTERRUPTED_ERROR = {"code": "interrupted", "message": "The import was interrupted; nothing was kept."}


def _process_alive(pid: Any) -> bool:
    """Whether process ``pid`` still runs (on doubt: yes)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.name != "posix":  # no cheap, harmless check there: rely on DEAD_SECONDS
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(job: Mapping[str, Any]) -> bool:
    """Whether a ``running`` job's runner is gone: stale heartbeat and no process, or a very stale heartbeat."""
    if job.get("state") != "running":
        return False
    age = time.time() - float(job.get("updated_at") or 0)
    return age > DEAD_SECONDS or (age > STALE_SECONDS and not _process_alive(job.get("pid")))


def recover_job(jobs_dir: Path, job_id: str) -> str | None:
    """Undo a dead job's rows (from its journal) and mark it failed; what was done, or ``None``.

    The journal is claimed by renaming it, so two workers reading the same dead
    job undo it once. Call only for a job known to be dead.
    """
    journal = journal_path(jobs_dir, job_id)
    claimed = journal.with_suffix(f".ids.undoing-{os.getpid()}-{threading.get_ident()}")
    job = read_job(jobs_dir, job_id)
    undone = 0
    try:
        os.rename(journal, claimed)
    except FileNotFoundError:
        if list(jobs_dir.glob(f"{job_id}.ids.undoing-*")):
            return None  # another worker is undoing it
    except OSError:
        return None
    if claimed.exists():
        if job is not None and job.get("state") == "done":
            claimed.unlink(missing_ok=True)
            return None
        try:
            entry = json.loads(claimed.read_text(encoding="utf-8"))
            undone = undo_import_range(str(entry["collection"]), int(entry["first"]), int(entry["last"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        else:
            with write_transaction():
                record_event(
                    "records.import_interrupted",
                    actor=None,
                    target=f"collection:{entry['collection']}",
                    details={
                        "collection": entry["collection"],
                        "ids": [entry["first"], entry["last"]],
                        "undone": undone,
                    },
                )
    if job is not None and job.get("state") == "running":
        job.update(state="failed", error=dict(INTERRUPTED_ERROR), created=0, updated_at=time.time())
        write_job(jobs_dir, job, durable=True)
    claimed.unlink(missing_ok=True)
    return f"import {job_id}: interrupted; {undone} record(s) it had written were deleted"


def recover_interrupted_imports(paths: Paths) -> list[str]:
    """At server start (no worker runs yet): undo and fail every import that was still running.

    ``paths`` is the home's :class:`~appliance.home.Paths`; needs the database
    open. Returns one line per recovered import, for the log.
    """
    jobs_dir = Path(paths.run_dir) / "imports"
    if not jobs_dir.is_dir():
        return []
    ids: set[str] = set()
    for path in jobs_dir.iterdir():
        name = path.name
        if name.endswith(".ids") or ".ids.undoing-" in name:
            if ".ids.undoing-" in name:
                # A recovery that died itself: take its claim back.
                with contextlib.suppress(OSError):
                    os.replace(path, jobs_dir / (name.split(".ids.undoing-")[0] + ".ids"))
            ids.add(name.split(".", 1)[0])
        elif name.endswith(".json"):
            job = read_job(jobs_dir, name[: -len(".json")]) if len(name) == JOB_ID_LENGTH + 5 else None
            if job is not None and job.get("state") == "running":
                ids.add(job["id"])
    out = []
    with database.connection_context():
        for job_id in sorted(ids):
            try:
                job_paths(jobs_dir, job_id)
            except NotFound:
                continue
            line = recover_job(jobs_dir, job_id)
            if line:
                out.append(line)
    return out
