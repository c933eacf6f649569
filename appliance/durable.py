"""Files that must survive a crash and stay private: the one atomic, owner-only writer.

Every secret, settings file, control token, job journal and archive side file
is written through :func:`write_private_file`: a temporary file in the same
folder (mode 0600 from the start), fsync'ed, renamed over the target, and the
folder fsync'ed, so after a crash the file is either the old one or the new
one, never a torn mix, and never readable by another user for an instant.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (a no-op where folders cannot be opened)."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes | str, *, durable: bool = True) -> None:
    """Replace ``path`` by ``data`` (text is written as UTF-8) atomically, readable by the owner only.

    With ``durable`` (the default) the file and its folder are fsync'ed before
    this returns; without, the write is still atomic but may be lost in a
    power cut (for files rewritten often whose loss costs nothing).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def create_private_file(path: Path) -> None:
    """Create the empty file ``path`` readable by the owner only (before anything secret is written to it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.close(fd)
    os.chmod(path, PRIVATE_FILE)  # O_CREAT's mode only counts for a new file


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if need be and make it enterable by the owner only."""
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # a folder on a share may refuse chmod; its mount decides then
        os.chmod(path, PRIVATE_DIR)
    return path
