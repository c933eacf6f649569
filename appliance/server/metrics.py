"""Request metrics shared across worker processes without a database write.

Each worker counts requests in its own memory and, at most every
``FLUSH_SECONDS``, writes a cumulative snapshot into its own slot of a
memory-mapped file in ``<home>/run`` (created by the parent). Any process
(a worker answering the status API, the console) reads every slot and merges
them. A slot is guarded by a sequence number (odd while being written) so a
reader never sees half a snapshot. A replaced worker starts from what its
slot already holds, so counts survive a crash.
"""

from __future__ import annotations

import bisect
import json
import mmap
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

SLOT_SIZE = 64 * 1024
MAX_SLOTS = 64
_HEADER = struct.Struct("<QI")  # sequence, payload length
FLUSH_SECONDS = 0.5

# Latency bucket upper bounds in milliseconds; the last bucket is "more".
BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


def create_metrics_file(path: Path, slots: int) -> None:
    """Create (or reset) the shared file with ``slots`` empty slots."""
    slots = min(max(slots, 1), MAX_SLOTS)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.truncate(slots * SLOT_SIZE)
    os.replace(tmp, path)


class _Route:
    __slots__ = ("buckets", "count", "errors", "total_ms")

    def __init__(self, count: int = 0, errors: int = 0, buckets: list[int] | None = None, total_ms: float = 0.0):
        self.count = count
        self.errors = errors
        self.buckets = buckets or [0] * (len(BUCKETS_MS) + 1)
        self.total_ms = total_ms


class MetricsRecorder:
    """Counts requests in one worker and publishes them to its slot."""

    def __init__(self, path: Path | None, slot: int):
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self._dirty = False
        self._last_flush = 0.0
        self._map: mmap.mmap | None = None
        self._offset = slot * SLOT_SIZE
        self._seq = 0
        if path is not None and path.exists():
            fh = open(path, "r+b")
            self._map = mmap.mmap(fh.fileno(), 0)
            fh.close()
            previous = _read_slot(self._map, self._offset)
            if previous is not None:
                self._seq = _HEADER.unpack_from(self._map, self._offset)[0]
                for name, data in previous.get("routes", {}).items():
                    self._routes[name] = _Route(data["count"], data["errors"], list(data["buckets"]), data["total_ms"])

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one request; publishes at most every FLUSH_SECONDS (no I/O otherwise)."""
        ms = seconds * 1000.0
        with self._lock:
            entry = self._routes.get(route)
            if entry is None:
                entry = self._routes[route] = _Route()
            entry.count += 1
            if status >= 500:
                entry.errors += 1
            entry.buckets[bisect.bisect_left(BUCKETS_MS, ms)] += 1
            entry.total_ms += ms
            self._dirty = True
            due = time.monotonic() - self._last_flush >= FLUSH_SECONDS
        if due:
            self.flush()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pid": os.getpid(),
                "routes": {
                    name: {"count": r.count, "errors": r.errors, "buckets": list(r.buckets), "total_ms": r.total_ms}
                    for name, r in self._routes.items()
                },
            }

    def flush(self) -> None:
        """Publish the cumulative snapshot now (also called by a timer for quiet periods)."""
        if self._map is None:
            return
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            self._last_flush = time.monotonic()
        snapshot = self.snapshot()
        payload = json.dumps(snapshot, separators=(",", ":")).encode()
        if len(payload) > SLOT_SIZE - _HEADER.size:
            payload = json.dumps(_folded(snapshot), separators=(",", ":")).encode()
        with self._lock:
            self._seq += 1  # odd: writing
            _HEADER.pack_into(self._map, self._offset, self._seq, 0)
            start = self._offset + _HEADER.size
            self._map[start : start + len(payload)] = payload
            self._seq += 1  # even: complete
            _HEADER.pack_into(self._map, self._offset, self._seq, len(payload))

    def start_flusher(self) -> None:
        """Publish in the background so counts of a quiet worker are not held back."""

        def loop() -> None:
            while True:
                time.sleep(FLUSH_SECONDS)
                self.flush()

        threading.Thread(target=loop, name="metrics-flusher", daemon=True).start()


def _folded(snapshot: dict[str, Any], keep: int = 100) -> dict[str, Any]:
    """A snapshot too big for its slot: the busiest routes kept, the rest added up under one key,
    so the totals stay right."""
    routes = sorted(snapshot["routes"].items(), key=lambda item: item[1]["count"], reverse=True)
    kept = dict(routes[:keep])
    rest = [data for _, data in routes[keep:]]
    if rest:
        kept["* <other routes>"] = {
            "count": sum(r["count"] for r in rest),
            "errors": sum(r["errors"] for r in rest),
            "buckets": [sum(column) for column in zip(*(r["buckets"] for r in rest), strict=True)],
            "total_ms": sum(r["total_ms"] for r in rest),
        }
    return {**snapshot, "routes": kept}


def _read_slot(buf: mmap.mmap, offset: int) -> dict[str, Any] | None:
    for _ in range(100):
        seq1, length = _HEADER.unpack_from(buf, offset)
        if seq1 == 0:
            return None
        if seq1 % 2:
            time.sleep(0.0005)
            continue
        start = offset + _HEADER.size
        payload = bytes(buf[start : start + length])
        seq2, _ = _HEADER.unpack_from(buf, offset)
        if seq1 == seq2:
            return json.loads(payload) if length else None
    return None


def read_metrics(path: Path) -> dict[str, Any]:
    """Merge every worker's slot: per route count, errors, mean and p50/p95/p99 in ms, plus totals."""
    routes: dict[str, _Route] = {}
    workers: list[dict[str, Any]] = []
    if path.exists():
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size:
                buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                try:
                    for offset in range(0, size, SLOT_SIZE):
                        snap = _read_slot(buf, offset)
                        if snap is not None:
                            workers.append(
                                {
                                    "slot": offset // SLOT_SIZE,
                                    "pid": snap.get("pid"),
                                    "requests": sum(r["count"] for r in snap.get("routes", {}).values()),
                                }
                            )
                        for name, data in (snap or {}).get("routes", {}).items():
                            entry = routes.setdefault(name, _Route())
                            entry.count += data["count"]
                            entry.errors += data["errors"]
                            entry.total_ms += data["total_ms"]
                            entry.buckets = [a + b for a, b in zip(entry.buckets, data["buckets"], strict=True)]
                finally:
                    buf.close()
    total = _Route()
    for entry in routes.values():
        total.count += entry.count
        total.errors += entry.errors
        total.total_ms += entry.total_ms
        total.buckets = [a + b for a, b in zip(total.buckets, entry.buckets, strict=True)]
    return {
        "requests": total.count,
        "errors": total.errors,
        "latency_ms": _summary(total),
        "buckets_ms": list(BUCKETS_MS),
        "workers": workers,
        "buckets": total.buckets,
        "routes": {
            name: {"requests": r.count, "errors": r.errors, "latency_ms": _summary(r), "buckets": r.buckets}
            for name, r in sorted(routes.items())
        },
    }


def bucket_percentile(
    buckets: list[int] | tuple[int, ...], fraction: float, bounds: tuple[float, ...] | list[float] = BUCKETS_MS
) -> float | None:
    """The ``fraction`` percentile (0.95 for p95) of latency bucket counts, as the upper bound of its bucket
    in ms (twice the last bound for the "more" bucket); ``None`` when the buckets are empty.

    ``buckets`` may be the difference of two cumulative readings (what the console charts).
    """
    total = sum(buckets)
    if total <= 0 or not bounds:
        return None
    target = fraction * total
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= target:
            return float(bounds[index]) if index < len(bounds) else float(bounds[-1]) * 2
    return float(bounds[-1]) * 2


def _percentile(entry: _Route, fraction: float) -> float | None:
    if entry.count == 0:
        return None
    return bucket_percentile(entry.buckets, fraction)


def _summary(entry: _Route) -> dict[str, float | None]:
    return {
        "mean": round(entry.total_ms / entry.count, 3) if entry.count else None,
        "p50": _percentile(entry, 0.50),
        "p95": _percentile(entry, 0.95),
        "p99": _percentile(entry, 0.99),
    }
