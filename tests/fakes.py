"""Fakes for the edges only (clock, network, subprocess); never for our own code."""

from __future__ import annotations

import datetime as dt


class FakeClock:
    """A clock that moves only when told: ``now()`` in UTC, ``advance(**timedelta_kwargs)``."""

    def __init__(self, start: dt.datetime | None = None):
        self.current = start or dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self.current

    def monotonic(self) -> float:
        return self.current.timestamp()

    def advance(self, **delta: float) -> dt.datetime:
        self.current += dt.timedelta(**delta)
        return self.current
