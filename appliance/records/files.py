"""Uploaded files as a file field takes them: the type judged by content, the accepted kinds, the size
limit, a harmless file name, and the value the API shows. A write stores its uploads with
:func:`store_checked`, which reports every field's error at once.

A file field's value is ``{"name", "size", "type", "sha256"}``; the bytes are
stored content-addressed by :mod:`appliance.storage.blobs`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import filetype

from appliance.collections.definitions import CollectionDef
from appliance.collections.fields import Field
from appliance.collections.values import FieldError
from appliance.errors import TooLarge, ValidationFailed
from appliance.storage.blobs import SNIFF_BYTES, BlobTooLarge, remove_unreferenced, store_blob
from appliance.text import format_bytes

# Text has no magic bytes: content that is valid UTF-8 without NULs is text/plain,
# and these declared text kinds are accepted for it.
TEXT_KINDS = frozenset({"text/plain", "text/csv", "text/markdown"})


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
        return str(guessed)
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


def store_upload(
    files_dir: Path, spec: Field, upload: Upload, *, limit: int | None = None
) -> tuple[dict[str, Any], bool]:
    """Check ``upload`` against ``spec`` and store its content; ``(value, created)``.

    ``value`` is the field value ``{"name", "size", "type", "sha256"}``;
    ``created`` says whether this call wrote a new stored file (so a failed
    write can remove it again). Reads at most ``max_size + 1`` bytes. Raises
    :class:`UploadTooLarge` over ``spec.max_size`` (or ``limit``), and
    :class:`FieldError` for an empty file or a type ``spec.accept`` refuses.
    """
    max_size = min(x for x in (spec.max_size, limit) if x is not None) if (spec.max_size or limit) else None
    detected = ""

    def check(head: bytes, size: int) -> None:
        nonlocal detected
        if size == 0:
            raise FieldError("The file is empty.")
        detected = sniff_type(head)
        if not type_accepted(detected, spec.accept):
            raise FieldError(
                f"Files of type {detected} are not accepted here. Accepted: {describe_accepted(spec.accept or [])}."
            )

    try:
        blob = store_blob(files_dir, upload.stream, max_size=max_size, check=check)
    except BlobTooLarge:
        raise UploadTooLarge(f"The file is larger than {format_bytes(max_size)}.") from None
    value = {"name": safe_filename(upload.filename), "size": blob.size, "type": detected, "sha256": blob.sha256}
    return value, blob.created


def _limit_text(size: int, *, by_setting: bool) -> str:
    """A size limit as the forms state it: whole MB for the upload limit (``max_upload_mb``, as its label
    says), else as the note beside the file input states a field's ``max_size``."""
    if by_setting:
        return f"{size // (1024 * 1024)} MB"
    return format_bytes(size)


def store_uploads(
    collection: CollectionDef, uploads: Mapping[str, Upload], files_dir: Path | None, limit: int | None
) -> tuple[dict[str, dict[str, Any]], list[str], dict[str, str], bool]:
    """Check and store each upload: ``(values by field, digests newly written, errors by field, too large?)``.

    Never raises for a bad upload: the caller merges these errors with the
    other fields' (see :func:`store_checked`).
    """
    values: dict[str, dict[str, Any]] = {}
    created: list[str] = []
    errors: dict[str, str] = {}
    too_large = False
    for name, upload in uploads.items():
        spec = collection.field(name)
        if spec is None or spec.type != "file":
            errors[name] = "Unknown field." if spec is None else "This field does not take a file."
            continue
        if files_dir is None:
            raise ValueError("files_dir is needed to store uploads")
        try:
            value, new = store_upload(files_dir, spec, upload, limit=limit)
        except UploadTooLarge:
            too_large = True
            own = spec.max_size
            by_setting = own is None or (limit is not None and limit < own)
            size = limit if by_setting else own
            errors[name] = f"The file is larger than {_limit_text(size or 0, by_setting=by_setting)}."
            continue
        except FieldError as exc:
            errors[name] = str(exc)
            continue
        values[name] = value
        if new:
            created.append(value["sha256"])
    return values, created, errors, too_large


def store_checked(
    collection: CollectionDef,
    check: Callable[[dict[str, dict[str, Any]]], dict[str, Any]],
    uploads: Mapping[str, Upload],
    files_dir: Path | None,
    limit: int | None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[str]]:
    """Store the uploads and run ``check(stored_files)`` on the other values; ``(cleaned, stored, created)``.

    Every field is checked whatever else is wrong: the errors of the files and
    of the other values come in one :class:`ValidationFailed` (or
    :class:`TooLarge` when a file is over its limit), and the files just
    stored are removed again.
    """
    stored, created, upload_errors, too_large = (
        store_uploads(collection, uploads, files_dir, limit) if uploads else ({}, [], {}, False)
    )
    try:
        try:
            cleaned = check(stored)
            errors: dict[str, str] = {}
        except ValidationFailed as exc:
            cleaned, errors = {}, dict(exc.fields)
        if upload_errors or errors:
            merged = {**errors, **upload_errors}
            if too_large:
                raise TooLarge("The file is too large", fields=merged)
            raise ValidationFailed(merged)
    except BaseException:
        remove_unreferenced(files_dir, created)
        raise
    return cleaned, stored, created


def public_file_value(value: Any, url: str) -> dict[str, Any] | None:
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
