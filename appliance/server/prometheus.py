"""Request metrics in the Prometheus text format, through prometheus-client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from appliance.server.metrics import BUCKETS_MS


class _MergedCollector:
    def __init__(self, merged: dict[str, Any]):
        self.merged = merged

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("appliance_http_requests", "HTTP requests served", labels=["route"])
        errors = CounterMetricFamily(
            "appliance_http_errors", "HTTP requests answered with a 5xx status", labels=["route"]
        )
        latency = HistogramMetricFamily("appliance_http_request_duration_seconds", "Request latency", labels=["route"])
        for route, data in self.merged.get("routes", {}).items():
            requests.add_metric([route], data["requests"])
            errors.add_metric([route], data["errors"])
            cumulative, buckets = 0, []
            for bound, count in zip([*BUCKETS_MS, None], data["buckets"], strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound is None else str(bound / 1000), cumulative))
            latency.add_metric([route], buckets, sum_value=(data["latency_ms"]["mean"] or 0) * data["requests"] / 1000)
        yield requests
        yield errors
        yield latency


def render_metrics(merged: dict[str, Any]) -> bytes:
    """The merged request metrics of :func:`appliance.server.metrics.read_metrics` as Prometheus text."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_MergedCollector(merged))
    return generate_latest(registry)
