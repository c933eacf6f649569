"""The traffic tab: requests per second, p95 latency and error rate over the last hour (QtCharts).

The status endpoint gives cumulative counts and latency buckets; a rate is
the difference between two polls divided by the time between them, and the
p95 of an interval comes from the difference of the bucket counts.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from PySide6.QtCharts import QChart, QChartView, QDateTimeAxis, QLineSeries, QValueAxis
from PySide6.QtCore import QDateTime, QPointF, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from appliance.server.metrics import bucket_percentile

WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class Sample:
    """Cumulative figures at one poll: ``at`` (monotonic seconds), ``wall`` (epoch seconds)."""

    at: float
    wall: float
    requests: int
    errors: int
    buckets: tuple[int, ...]
    bounds: tuple[float, ...]


@dataclass(frozen=True)
class Interval:
    """What happened between two polls."""

    wall: float
    requests_per_second: float
    p95_ms: float | None
    error_rate: float  # percent of requests answered 5xx


def sample_from_status(status: dict, *, wall: float | None = None) -> Sample:
    """Read the cumulative metrics out of a ``/api/system/status`` answer."""
    metrics = status.get("metrics") or {}
    return Sample(
        at=float(status.get("_polled_at", time.monotonic())),
        wall=time.time() if wall is None else wall,
        requests=int(metrics.get("requests", 0)),
        errors=int(metrics.get("errors", 0)),
        buckets=tuple(metrics.get("buckets") or ()),
        bounds=tuple(metrics.get("buckets_ms") or ()),
    )


def interval_between(before: Sample, after: Sample) -> Interval | None:
    """Rates between two samples; ``None`` when they cannot be compared (no time passed, server restarted)."""
    seconds = after.at - before.at
    requests = after.requests - before.requests
    if seconds <= 0 or requests < 0 or len(before.buckets) != len(after.buckets):
        return None
    errors = max(0, after.errors - before.errors)
    deltas = [b - a for a, b in zip(before.buckets, after.buckets, strict=True)]
    p95 = bucket_percentile(deltas, 0.95, after.bounds)
    return Interval(
        wall=after.wall,
        requests_per_second=requests / seconds,
        p95_ms=p95,
        error_rate=(100.0 * errors / requests) if requests else 0.0,
    )


class _Chart:
    def __init__(self, title: str, unit: str):
        self.series = QLineSeries()
        self.series.setName(title)
        self.chart = QChart()
        self.chart.setTitle(f"{title} ({unit})")
        self.chart.legend().hide()
        self.chart.addSeries(self.series)
        self.x_axis = QDateTimeAxis()
        self.x_axis.setFormat("HH:mm")
        self.x_axis.setTickCount(7)
        self.y_axis = QValueAxis()
        self.y_axis.setLabelFormat("%.1f")
        self.y_axis.setRange(0, 1)
        self.chart.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        self.chart.addAxis(self.y_axis, Qt.AlignmentFlag.AlignLeft)
        self.series.attachAxis(self.x_axis)
        self.series.attachAxis(self.y_axis)
        self.view = QChartView(self.chart)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.view.setMinimumHeight(160)

    def show(self, points: list[tuple[float, float]], now: float, since: float | None = None) -> None:
        """Draw ``points`` (epoch seconds, value); the x axis spans the data seen (``since`` .. ``now``),
        at most the last hour, so a few minutes of data are not squeezed into the right edge."""
        self.series.replace([QPointF(wall * 1000.0, value) for wall, value in points])
        start = now - WINDOW_SECONDS if since is None else max(now - WINDOW_SECONDS, min(since, now - 60))
        self.x_axis.setFormat("HH:mm" if now - start > 600 else "HH:mm:ss")
        self.x_axis.setRange(
            QDateTime.fromMSecsSinceEpoch(int(start * 1000)),
            QDateTime.fromMSecsSinceEpoch(int(now * 1000)),
        )
        top = max((value for _, value in points), default=0.0)
        # Whole numbers once the scale is large: "36.0" labels are cut to "3..." in a narrow chart.
        self.y_axis.setLabelFormat("%.0f" if top >= 10 else "%.1f")
        self.y_axis.setRange(0, max(1.0, top * 1.2))


class TrafficTab(QWidget):
    """Three live charts fed by ``add_status``; the window feeds it whether or not the tab is shown."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.previous: Sample | None = None
        self.intervals: deque[Interval] = deque(maxlen=4000)
        self.rate_chart = _Chart("Requests per second", "req/s")
        self.latency_chart = _Chart("95th percentile latency", "ms")
        self.error_chart = _Chart("Error rate", "% of requests")
        self.summary = QLabel("Waiting for the server's figures…")
        self.summary.setObjectName("traffic-summary")
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        for chart in (self.rate_chart, self.latency_chart, self.error_chart):
            layout.addWidget(chart.view, 1)

    def add_status(self, status: dict, *, wall: float | None = None) -> Interval | None:
        """Take one status answer; returns the interval it closed (``None`` for the first or after a restart)."""
        sample = sample_from_status(status, wall=wall)
        interval = interval_between(self.previous, sample) if self.previous else None
        self.previous = sample
        if interval is None:
            return None
        self.intervals.append(interval)
        cutoff = sample.wall - WINDOW_SECONDS
        while self.intervals and self.intervals[0].wall < cutoff:
            self.intervals.popleft()
        self._redraw(sample.wall)
        p95 = "—" if interval.p95_ms is None else f"{interval.p95_ms:.0f} ms"
        self.summary.setText(
            f"Now: {interval.requests_per_second:.1f} requests/s, p95 {p95}, "
            f"{interval.error_rate:.1f} % errors. Total since start: {sample.requests} requests, {sample.errors} errors."
        )
        return interval

    def reset(self) -> None:
        """Forget the last sample (the server stopped: its counters start again)."""
        self.previous = None

    def _redraw(self, now: float) -> None:
        items = list(self.intervals)
        since = items[0].wall if items else None
        self.rate_chart.show([(i.wall, i.requests_per_second) for i in items], now, since)
        self.latency_chart.show([(i.wall, i.p95_ms) for i in items if i.p95_ms is not None], now, since)
        self.error_chart.show([(i.wall, i.error_rate) for i in items], now, since)
