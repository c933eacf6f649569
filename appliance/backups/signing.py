"""Signing backup manifests with a key of this instance, so a forged or foreign archive is told apart.

The key is derived from the home's ``secret.key`` (HMAC-SHA256 over a fixed
label), so every home has its own and nothing new must be kept safe. The
archive's zip comment carries ``hmac-sha256=<hex>`` over the manifest's
bytes beside their sha256; the manifest holds every member's checksum, so the
signature covers the whole archive. :func:`signature_state` tells an archive
signed here (``"own"``) from one signed by another instance or edited
(``"foreign"``) and one without a signature (``"unsigned"``: written before
archives were signed, or not by Office Appliance).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from appliance.config.home import Paths

_LABEL = b"office-appliance backup manifest v1"
SIGNATURE_FIELD = "hmac-sha256="
_SIGNATURE = re.compile(r"\bhmac-sha256=([0-9a-f]{64})\b")


def signing_key(paths: Paths) -> bytes:
    """This home's manifest signing key (derived from ``secret.key``)."""
    return hmac.new(Path(paths.secret_key).read_bytes().strip(), _LABEL, hashlib.sha256).digest()


def sign_manifest(key: bytes, manifest_bytes: bytes) -> str:
    """The comment field carrying the signature of ``manifest_bytes``: ``hmac-sha256=<hex>``."""
    return SIGNATURE_FIELD + hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()


def signature_state(key: bytes, manifest_bytes: bytes, comment: str) -> str:
    """``"own"`` (signed with ``key``), ``"foreign"`` (signed with another key, or edited) or ``"unsigned"``."""
    match = _SIGNATURE.search(comment)
    if match is None:
        return "unsigned"
    expected = hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()
    return "own" if hmac.compare_digest(expected, match.group(1)) else "foreign"


FOREIGN_WARNING = (
    "This archive was not signed by this instance: it may come from another installation, or it may have been "
    "made or changed by someone else. Restoring it replaces every user, password, token and record with what it "
    "holds (an attacker's archive can hold their own admin account). Accept it only when you know where it came from."
)
