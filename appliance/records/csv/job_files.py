"""The files of an import job under ``<home>/run/imports``: the job, its uploaded CSV and its undo journal.

A job is a JSON file ``<id>.json`` under the jobs folder (every worker process
reads it), beside the uploaded ``<id>.csv``. While it runs, its ``updated_at``
is the heartbeat (written at least every
:data:`~appliance.records.csv.checks.CHECK_PROGRESS_EVERY` checked rows and
every batch) and ``pid`` the process running it. Before the first row is
written, the import's id range goes to ``<id>.ids``, written and fsync'ed
once: the journal. It is removed only once the job's outcome is on disk, so a
job that died while writing (kill -9, power cut, a stop that outlived the
grace) still names the rows to delete, however far it got, and a crash
between a batch's commit and the next job write loses nothing: the range was
known before the batch began (see :mod:`appliance.records.csv.recovery`).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from pathlib import Path
from typing import Any

from appliance.durable import write_private_file
from appliance.errors import NotFound

JOB_STATES = ("uploaded", "running", "done", "failed")
JOB_ID_LENGTH = 22
JOB_MAX_AGE = dt.timedelta(days=1)


def new_job_id() -> str:
    """A fresh, unguessable job id of :data:`JOB_ID_LENGTH` URL-safe characters."""
    return secrets.token_urlsafe(16)[:JOB_ID_LENGTH]


def job_paths(jobs_dir: Path, job_id: str) -> tuple[Path, Path]:
    """``(job file, uploaded CSV)`` of ``job_id``; :class:`NotFound` for anything that is not a job id."""
    if (
        not isinstance(job_id, str)
        or len(job_id) != JOB_ID_LENGTH
        or not (job_id.isascii() and job_id.replace("-", "").replace("_", "").isalnum())
    ):
        raise NotFound("No such import.")
    return jobs_dir / f"{job_id}.json", jobs_dir / f"{job_id}.csv"


def journal_path(jobs_dir: Path, job_id: str) -> Path:
    """The undo journal of ``job_id``: ``{"collection", "first", "last"}``, the id range it reserved."""
    return jobs_dir / f"{job_id}.ids"


def write_journal(jobs_dir: Path, job_id: str, collection: str, first: int, last: int) -> None:
    """Record the id range an import reserved, on disk (fsync'ed) when this returns."""
    entry = {"collection": collection, "first": first, "last": last}
    write_private_file(journal_path(jobs_dir, job_id), json.dumps(entry))


def write_job(jobs_dir: Path, job: dict[str, Any], *, durable: bool = False) -> None:
    """Replace the job file by ``job`` atomically; with ``durable``, on disk when this returns (an outcome)."""
    meta, _ = job_paths(jobs_dir, job["id"])
    write_private_file(meta, json.dumps(job), durable=durable)


def read_job(jobs_dir: Path, job_id: str) -> dict[str, Any] | None:
    """The job ``job_id`` as last written, or ``None`` when there is none (or it cannot be read)."""
    meta, _ = job_paths(jobs_dir, job_id)
    try:
        job = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return job if isinstance(job, dict) else None


def prune_jobs(jobs_dir: Path) -> None:
    """Remove the job files older than :data:`JOB_MAX_AGE` (never a journal: it goes once its rows are undone)."""
    limit = time.time() - JOB_MAX_AGE.total_seconds()
    for path in jobs_dir.glob("*.*"):
        if path.suffix == ".ids":
            continue  # a journal goes only once its rows are dealt with
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass
