"""The one way a test waits for something: poll a condition until it holds, up to a deadline.

A test never sleeps to show that something did *not* happen; it waits (with
:func:`eventually`) for a positive signal that comes after the thing would
have happened, then checks what was recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    condition: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "the condition did not hold in time",
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` until it returns something truthy, and return that value.

    An exception of a type in ``ignoring`` counts as "not yet" (a request to a server still
    starting, a process that went away while being looked at); any other one propagates at once.
    The condition is tried at least once, and once more at the deadline; after ``timeout``
    seconds this raises AssertionError with ``message`` (a callable is called then, for a message
    that costs something to build) and the last value (or ignored exception) seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    expired = False
    while not expired:
        expired = time.monotonic() >= deadline  # then this try is the last one
        try:
            value = condition()
        except ignoring as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if not expired:
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
    text = message() if callable(message) else message
    raise AssertionError(f"{text} (waited {timeout:g} s; last value: {last!r})")
