"""Uploaded files: checked by content, stored content-addressed under ``<home>/files``.

A file field's value is ``{"name", "size", "type", "sha256"}``; the bytes
live at ``<home>/files/<sha256[:2]>/<sha256>``, outside any served folder,
so a client-chosen name never reaches the file system. ``file_ref`` rows
say which record field refers to which content; when the last reference
goes, the caller removes the stored file after the commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import filetype

from appliance.collections.fields import Field, FieldError
from appliance.errors import NotFound
from appliance.storage.db import database
from appliance.storage.locks import removing_files

SNIFF_BYTES = 8192
CHUNK = 1024 * 1024
# Text has no magic bytes: content that is valid UTF-8 without NULs is text/plain,
# and these declared text kinds are accepted for it.
TEXT_KINDS = frozenset({"text/plain", "text/csv", "text/markdown"})
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Upload:
    """One uploaded file as the web layer hands it over: the client's name and a binary stream."""

    filename: str
    stream: IO[bytes]


class UploadTooLarge(FieldError):
    """The file is bigger than its field's ``max_size``."""


def safe_filename(name: str) -> str:
    """The client's file name reduced to a harmless base name (no folders, no control characters)."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").split("/")[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in '"<>:|?*')
    name = name.strip().strip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 190 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name or "file"


def sniff_type(head: bytes) -> str:
    """The media type of content starting with ``head``, judged by its bytes only."""
    guessed = filetype.guess_mime(head) if head else None
    if guessed:
        return guessed
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as exc:
            # A multi-byte character cut by the sniffing window is still text.
            if exc.start >= len(head) - 3 and len(head) >= SNIFF_BYTES - 3:
                return "text/plain"
    return "application/octet-stream"


def type_accepted(detected: str, accept: Iterable[str] | None) -> bool:
    """Whether ``detected`` matches one of the ``accept`` patterns (``image/*`` style); no list accepts all."""
    if accept is None:
        return True
    for pattern in accept:
        if pattern == detected:
            return True
        if pattern.endswith("/*") and detected.split("/")[0] == pattern[:-2]:
            return True
        if detected == "text/plain" and pattern in TEXT_KINDS:
            return True
    return False


def blob_path(files_dir: Path, sha256: str) -> Path:
    if not _DIGEST_RE.match(sha256 or ""):
        raise NotFound("No such file.")
    return files_dir / sha256[:2] / sha256


def store_upload(files_dir: Path, spec: Field, upload: Upload, *, limit: int | None = None) -> tuple[dict, bool]:
    """Check ``upload`` against ``spec`` and store its content; ``(value, created)``.

    ``value`` is the field value ``{"name", "size", "type", "sha256"}``;
    ``created`` says whether this call wrote a new stored file (so a failed
    write can remove it again). Reads at most ``max_size + 1`` bytes. Raises
    :class:`UploadTooLarge` over ``spec.max_size`` (or ``limit``), and
    :class:`FieldError` for an empty file or a type ``spec.accept`` refuses.
    """
    max_size = min(x for x in (spec.max_size, limit) if x is not None) if (spec.max_size or limit) else None
    files_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, tmp_name = tempfile.mkstemp(dir=files_dir, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = upload.stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise UploadTooLarge(f"The file is larger than {max_size} bytes.")
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise FieldError("The file is empty.")
        detected = sniff_type(head)
        if not type_accepted(detected, spec.accept):
            raise FieldError(
                f"Files of type {detected} are not accepted here. Accepted: {describe_accepted(spec.accept or [])}."
            )
        sha = digest.hexdigest()
        target = blob_path(files_dir, sha)
        created = not target.exists()
        if created:
            target.parent.mkdir(exist_ok=True)
            os.chmod(tmp_name, 0o600)
            os.replace(tmp_name, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    return {"name": safe_filename(upload.filename), "size": size, "type": detected, "sha256": sha}, created


def set_file_refs(collection: str, record_id: int, refs: dict[str, str | None]) -> list[str]:
    """Point ``record_id``'s file fields at new content (``None`` clears); returns digests no longer referenced.

    Call inside the write's transaction; remove the returned stored files
    with :func:`remove_unreferenced` after it commits.
    """
    released = []
    for field_name, sha in refs.items():
        row = database.execute_sql(
            "SELECT sha256 FROM file_ref WHERE collection = ? AND record_id = ? AND field = ?",
            (collection, record_id, field_name),
        ).fetchone()
        if row and row[0] == sha:
            continue
        if row:
            database.execute_sql(
                "DELETE FROM file_ref WHERE collection = ? AND record_id = ? AND field = ?",
                (collection, record_id, field_name),
            )
            released.append(row[0])
        if sha:
            database.execute_sql(
                "INSERT INTO file_ref (sha256, collection, record_id, field) VALUES (?, ?, ?, ?)",
                (sha, collection, record_id, field_name),
            )
    return [d for d in released if not is_referenced(d)]


def drop_file_refs(collection: str, record_id: int) -> list[str]:
    """Forget every file reference of a deleted record; returns digests no longer referenced."""
    digests = [
        r[0]
        for r in database.execute_sql(
            "SELECT sha256 FROM file_ref WHERE collection = ? AND record_id = ?", (collection, record_id)
        ).fetchall()
    ]
    database.execute_sql("DELETE FROM file_ref WHERE collection = ? AND record_id = ?", (collection, record_id))
    return [d for d in digests if not is_referenced(d)]


def is_referenced(sha256: str) -> bool:
    return database.execute_sql("SELECT 1 FROM file_ref WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone() is not None


def remove_unreferenced(files_dir: Path | None, digests: Iterable[str]) -> int:
    """Remove the stored files of ``digests`` that nothing refers to any more; returns how many went.

    Removes nothing while a backup copies the files (its database snapshot may
    still refer to them): those stay, and the ``cleanup`` job removes them later.
    """
    if files_dir is None:
        return 0
    removed = 0
    with removing_files(files_dir.parent) as allowed:
        if not allowed:
            return 0
        for sha in set(digests):
            if is_referenced(sha):
                continue
            with contextlib.suppress(FileNotFoundError, NotFound):
                blob_path(files_dir, sha).unlink()
                removed += 1
    return removed


def public_file_value(value: Any, url: str) -> dict | None:
    """A stored file value as the API shows it: name, size, type and the download URL (no digest)."""
    if not isinstance(value, dict):
        return None
    return {"name": value.get("name"), "size": value.get("size"), "type": value.get("type"), "url": url}


# Media types as people name them (the accepted kinds of a file field, in messages).
_KIND_WORDS = {
    "image/*": "images",
    "audio/*": "audio files",
    "video/*": "videos",
    "text/*": "text files",
    "application/pdf": "PDF files",
    "text/csv": "CSV files",
    "text/plain": "plain text files",
    "application/zip": "ZIP archives",
    "image/png": "PNG images",
    "image/jpeg": "JPEG images",
}


def describe_accepted(accept: list[str]) -> str:
    """``["image/*", "application/pdf"]`` -> ``"images, PDF files"`` (unknown types as they are)."""
    return ", ".join(_KIND_WORDS.get(kind.lower(), kind) for kind in accept) or "any file"
