"""Schemathesis hooks for tests/webapp/test_schemathesis.py: the run never targets its own admin.

The ids come from the environment (``FUZZ_KEEP_USER``, ``FUZZ_KEEP_TOKEN``): a case that would change,
disable, delete, sign out or reset the run's admin, or revoke the run's token, is aimed at the second
admin (``FUZZ_SPARE_USER``) or a spare token (``FUZZ_SPARE_TOKEN``) instead, so every operation is still
called and the run keeps its credentials to the end.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis


def _ids(name: str) -> tuple[int, int]:
    keep, spare = os.environ[f"FUZZ_KEEP_{name}"], os.environ[f"FUZZ_SPARE_{name}"]
    return int(keep), int(spare)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    path = case.operation.path
    if path.startswith("/api/users/{id}"):
        keep, spare = _ids("USER")
    elif path.startswith("/api/tokens/{id}"):
        keep, spare = _ids("TOKEN")
    else:
        return
    parameters = case.path_parameters or {}
    if str(parameters.get("id")) == str(keep):
        parameters["id"] = spare
