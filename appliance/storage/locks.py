"""OS file locks: the one implementation behind the server's home lock, the backup/restore lock,
the per-job locks and the uploaded-files lock.

A lock is ``flock`` on POSIX (``msvcrt.locking`` on Windows), taken without
waiting. The OS releases it when the holder dies, so a stale lock file left
by a killed process never blocks anyone. Two opens of the same file conflict
even inside one process, so a lock also holds between threads.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from appliance.errors import Busy


class FileLock:
    """An exclusive (or, on POSIX, shared) OS lock on one file, taken without waiting.

    ``acquire()`` answers ``False`` when another holder has it; ``release()``
    gives it back. ``holder`` text written with :meth:`describe` tells a
    refused caller who holds it.
    """

    def __init__(self, path: Path, *, shared: bool = False):
        self.path = Path(path)
        self.shared = shared
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self) -> bool:
        """Take the lock without waiting; ``False`` when another holder has it (in any process)."""
        fh = open(self.path, "a+")
        try:
            if sys.platform == "win32":  # pragma: no cover - Windows only; msvcrt has no shared locks
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def acquire_within(self, seconds: float, *, poll: float = 0.01) -> bool:
        """Take the lock, retrying for at most ``seconds`` (for locks that others hold only briefly)."""
        deadline = time.monotonic() + seconds
        while not self.acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def describe(self, text: str) -> None:
        """Write who holds the lock into the lock file (read by :func:`read_holder`)."""
        if self._fh is None:
            raise RuntimeError("describe() needs the lock held")
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(text)
        self._fh.flush()

    def release(self) -> None:
        if self._fh is not None:
            if not self.shared:
                with contextlib.suppress(OSError):
                    self._fh.seek(0)
                    self._fh.truncate()
            self._fh.close()
            self._fh = None

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def read_holder(path: Path) -> str:
    """What the holder of the lock file ``path`` wrote about itself ("" when nothing or unreadable)."""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def is_locked(path: Path) -> bool:
    """Whether someone holds the lock on ``path`` right now (probes by taking it for an instant)."""
    if not Path(path).exists():
        return False
    probe = FileLock(path)
    if probe.acquire():
        probe.release()
        return False
    return True


@contextlib.contextmanager
def exclusive(path: Path, what: str, busy_message: str) -> Iterator[FileLock]:
    """Hold the exclusive lock on ``path`` for the block, noting ``what`` (and this pid) as its holder.

    Raises :class:`Busy` with ``busy_message`` (followed by the holder's note, when
    there is one) while another holds it.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    if not lock.acquire():
        holder = read_holder(path)
        raise Busy(busy_message.format(holder=f" ({holder})" if holder else ""))
    try:
        lock.describe(f"{what}, pid {os.getpid()}")
        yield lock
    finally:
        lock.release()


# --- the uploaded files: removals wait for no one, a backup's copy waits for removals -------------

FILES_LOCK = "files.lock"


def _files_lock_path(home: Path) -> Path:
    return Path(home) / "run" / FILES_LOCK


@contextlib.contextmanager
def removing_files(home: Path) -> Iterator[bool]:
    """A shared hold on the home's ``run/files.lock`` for removing stored files; yields ``False``
    (and holds nothing) while a backup copies the files, so that the caller leaves them in place.

    Removals share the lock with each other and never wait.
    """
    path = _files_lock_path(home)
    if not path.parent.is_dir():  # no run folder: not a home a backup can be running on
        yield True
        return
    lock = FileLock(path, shared=True)
    if not lock.acquire():
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


@contextlib.contextmanager
def copying_files(home: Path, *, wait_seconds: float = 30.0) -> Iterator[None]:
    """The exclusive hold on ``run/files.lock`` a backup keeps from its database snapshot until it has
    copied the files; waits (at most ``wait_seconds``) for removals in progress, which take milliseconds.
    Raises :class:`Busy` when they do not end in time."""
    path = _files_lock_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    if not lock.acquire_within(wait_seconds):
        raise Busy("busy: stored files are being removed and did not finish in time; try the backup again")
    try:
        yield
    finally:
        lock.release()
