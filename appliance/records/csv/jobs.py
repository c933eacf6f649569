"""Import jobs: the import page's upload, start and progress, and an import run with its journal.

The page keeps an uploaded file as a job (:func:`save_import_upload`), starts
it with the chosen mapping (:func:`start_import_job`) and runs it in a
background thread of the worker (:func:`run_import_job`), whose progress any
worker reads (:func:`get_import_job`). The API's import waits for its run
(:func:`import_csv_journaled`), with a job file as its journal all the same.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appliance.actors import ActorLike
from appliance.collections.access import get_visible_collection, require_access
from appliance.errors import ApplianceError, BadRequest, Busy, Conflict, NotFound, ValidationFailed
from appliance.records.csv.checks import check_mapping, preview_csv
from appliance.records.csv.importing import BATCH_SIZE, MAX_IMPORT_ROWS, import_csv, rows_left, running_import, stopping
from appliance.records.csv.job_files import (
    job_paths,
    journal_path,
    new_job_id,
    prune_jobs,
    read_job,
    write_job,
    write_journal,
)
from appliance.records.csv.recovery import INTERRUPTED_ERROR, is_dead, recover_job


def save_import_upload(
    jobs_dir: Path,
    collection_name: str,
    filename: str,
    data: bytes,
    actor: ActorLike,
    *,
    max_rows: int = MAX_IMPORT_ROWS,
) -> dict[str, Any]:
    """Keep an uploaded CSV file for the import page: check it parses, and return its job with a preview.

    The job (``id``, ``collection``, ``filename``, ``state`` "uploaded",
    ``preview``...) lives beside the file under ``jobs_dir``, readable by
    every worker process; jobs older than a day are removed. Raises like
    :func:`read_csv` (and :class:`BadRequest` for a file with a header but no
    rows, or more than ``max_rows``), and :class:`NotFound` / :class:`PermissionDenied` without create
    permission.
    """
    collection = get_visible_collection(collection_name, actor)
    require_access(collection, actor, "create")
    preview = preview_csv(collection, data, max_rows=max_rows, actor=actor)
    if not preview["total_rows"]:
        raise BadRequest("The file has a header but no rows to import.")
    jobs_dir.mkdir(parents=True, exist_ok=True)
    prune_jobs(jobs_dir)
    job = {
        "id": new_job_id(),
        "collection": collection.name,
        "filename": (filename or "file.csv")[:200],
        "actor_id": getattr(actor, "id", None),
        "state": "uploaded",
        "phase": "",
        "done": 0,
        "total": preview["total_rows"],
        "created": 0,
        "error": None,
        "preview": preview,
        "mapping": preview["mapping"],
        "updated_at": time.time(),
    }
    _, csv_path = job_paths(jobs_dir, job["id"])
    csv_path.write_bytes(data)
    write_job(jobs_dir, job)
    return job


def get_import_job(jobs_dir: Path, job_id: str, actor: ActorLike) -> dict[str, Any]:
    """The import job ``job_id`` of ``actor``; :class:`NotFound` for another person's or an unknown one.

    A ``running`` job whose runner died (see :data:`STALE_SECONDS`) is undone
    first and comes back ``failed`` with the error code ``interrupted``.
    """
    job_paths(jobs_dir, job_id)
    job = read_job(jobs_dir, job_id)
    if job is None or job.get("actor_id") != getattr(actor, "id", None):
        raise NotFound("No such import (imports are kept for a day).")
    if is_dead(job):
        recover_job(jobs_dir, job_id)
        job = read_job(jobs_dir, job_id) or job
    return job


def start_import_job(jobs_dir: Path, job_id: str, mapping: Mapping[str, str], actor: ActorLike) -> dict[str, Any]:
    """Mark an uploaded job as running with ``mapping`` (checked now); :class:`Conflict` if it already ran.

    Call :func:`run_import_job` next (the page does, in a background thread).
    """
    job = get_import_job(jobs_dir, job_id, actor)
    if job["state"] not in ("uploaded", "failed") or job.get("created"):
        raise Conflict("This import has already run; upload the file again to import it again.")
    if journal_path(jobs_dir, job_id).exists() or list(jobs_dir.glob(f"{job_id}.ids.undoing-*")):
        raise Conflict("The last run of this import is still being undone; try again in a moment.")
    collection = get_visible_collection(job["collection"], actor)
    require_access(collection, actor, "create")
    job["mapping"] = {c: (mapping.get(c) or "") for c in job["preview"]["header"]}
    check_mapping(collection, job["preview"]["header"], job["mapping"], actor)
    job.update(state="running", phase="checking", done=0, error=None, pid=os.getpid(), updated_at=time.time())
    write_job(jobs_dir, job)
    return job


def _error_of(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ApplianceError):
        return exc.to_dict()["error"]
    return {"code": "internal_error", "message": f"The import stopped: {type(exc).__name__}; nothing was kept."}


def _run_journaled(
    jobs_dir: Path,
    job: dict[str, Any],
    data: bytes,
    actor: ActorLike,
    *,
    mapping: Mapping[str, str] | None,
    batch_size: int,
    max_rows: int = MAX_IMPORT_ROWS,
) -> int:
    """Run :func:`import_csv` with ``job`` as its progress and its journal; the job file ends done or failed."""
    job_id = job["id"]
    journal = journal_path(jobs_dir, job_id)
    job.update(state="running", pid=os.getpid(), updated_at=time.time())
    write_job(jobs_dir, job)

    def report(phase: str, done: int, total: int) -> None:
        job.update(phase=phase, done=done, total=total, updated_at=time.time())
        write_job(jobs_dir, job)

    def reserved(collection: str, first: int, last: int) -> None:
        write_journal(jobs_dir, job_id, collection, first, last)
        job.update(ids=[first, last], updated_at=time.time())
        write_job(jobs_dir, job)

    told_to_stop = False

    def should_stop() -> bool:
        # Someone found this job dead (a very long stall) and undid it: stop rather than write on.
        nonlocal told_to_stop
        current = read_job(jobs_dir, job_id)
        told_to_stop = current is None or current.get("state") != "running"
        return told_to_stop

    with running_import():
        try:
            created = import_csv(
                job["collection"],
                data,
                actor,
                mapping=mapping,
                batch_size=batch_size,
                progress=report,
                on_reserved=reserved,
                should_stop=should_stop,
                max_rows=max_rows,
            )
        except BaseException as exc:
            error = _error_of(exc)
            # Busy is how the import stops between batches, when told to or when the process stops.
            if isinstance(exc, Busy) and (told_to_stop or stopping()):
                error = dict(INTERRUPTED_ERROR)
            job.update(state="failed", error=error, updated_at=time.time())
            write_job(jobs_dir, job, durable=True)
            ids = job.get("ids")
            # The import undid its rows; should that have failed, the journal stays for the next recovery.
            if not ids or not rows_left(job["collection"], ids[0], ids[1]):
                journal.unlink(missing_ok=True)
            raise
        job.update(state="done", created=created, done=job["total"], updated_at=time.time())
        write_job(jobs_dir, job, durable=True)
        journal.unlink(missing_ok=True)
    return created


def run_import_job(
    jobs_dir: Path, job_id: str, actor: ActorLike, *, batch_size: int = BATCH_SIZE, max_rows: int = MAX_IMPORT_ROWS
) -> dict[str, Any]:
    """Run a started import job, writing its progress to the job after each batch; returns the finished job.

    The job ends ``done`` (with ``created``) or ``failed`` (with ``error``:
    the error shape of API.md, bad rows included; code ``interrupted`` when
    the process was stopping). Never raises for the import's own errors: they
    are the job's outcome.
    """
    job = get_import_job(jobs_dir, job_id, actor)
    _, csv_path = job_paths(jobs_dir, job_id)
    try:
        _run_journaled(
            jobs_dir,
            job,
            csv_path.read_bytes(),
            actor,
            mapping=job["mapping"],
            batch_size=batch_size,
            max_rows=max_rows,
        )
    except (BadRequest, ValidationFailed, Conflict, NotFound):
        pass
    else:
        csv_path.unlink(missing_ok=True)
    return job


def import_csv_journaled(
    jobs_dir: Path,
    collection_name: str,
    data: bytes,
    actor: ActorLike,
    *,
    mapping: Mapping[str, str] | None = None,
    batch_size: int = BATCH_SIZE,
    max_rows: int = MAX_IMPORT_ROWS,
) -> int:
    """:func:`import_csv` for a caller that waits for it (the API), with a job file as its journal,
    so that it too is undone should the process die while it writes. Raises as :func:`import_csv`.
    """
    jobs_dir.mkdir(parents=True, exist_ok=True)
    job = {
        "id": new_job_id(),
        "collection": collection_name,
        "filename": "",
        "source": "api",
        "actor_id": getattr(actor, "id", None),
        "state": "running",
        "phase": "checking",
        "done": 0,
        "total": 0,
        "created": 0,
        "error": None,
        "updated_at": time.time(),
    }
    return _run_journaled(jobs_dir, job, data, actor, mapping=mapping, batch_size=batch_size, max_rows=max_rows)
