"""Running a coroutine from a test, whatever the test's thread is already doing."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
    """``asyncio.run(coroutine)`` in a thread of its own, with a deadline.

    The browser tests' Playwright (sync API) keeps an event loop running in the main thread for the
    whole session, and ``asyncio.run`` refuses to start inside a running loop.
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=timeout)
