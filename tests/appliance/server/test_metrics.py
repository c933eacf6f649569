"""Request metrics are merged across worker slots without a database."""

from __future__ import annotations

from appliance.server.metrics import MetricsRecorder, create_metrics_file, read_metrics


def test_two_workers_counts_are_merged(tmp_path):
    path = tmp_path / "metrics.bin"
    create_metrics_file(path, 2)
    first, second = MetricsRecorder(path, 0), MetricsRecorder(path, 1)
    for _ in range(3):
        first.observe("GET /a", 200, 0.004)
    second.observe("GET /a", 500, 0.300)
    second.observe("GET /b", 200, 0.001)
    first.flush()
    second.flush()
    merged = read_metrics(path)
    assert merged["requests"] == 5
    assert merged["errors"] == 1
    assert merged["routes"]["GET /a"]["requests"] == 4
    assert merged["routes"]["GET /a"]["errors"] == 1
    assert merged["routes"]["GET /a"]["latency_ms"]["p50"] == 5.0
    assert merged["routes"]["GET /a"]["latency_ms"]["p99"] == 500.0
    assert sorted(w["requests"] for w in merged["workers"]) == [2, 3]


def test_a_replaced_worker_continues_from_its_slot(tmp_path):
    path = tmp_path / "metrics.bin"
    create_metrics_file(path, 1)
    old = MetricsRecorder(path, 0)
    old.observe("GET /a", 200, 0.01)
    old.flush()
    replacement = MetricsRecorder(path, 0)
    replacement.observe("GET /a", 200, 0.01)
    replacement.flush()
    assert read_metrics(path)["requests"] == 2


def test_an_unflushed_count_is_not_visible_until_flushed(tmp_path):
    path = tmp_path / "metrics.bin"
    create_metrics_file(path, 1)
    recorder = MetricsRecorder(path, 0)
    recorder.flush()
    recorder._last_flush = float("inf")  # hold back the automatic flush
    recorder.observe("GET /a", 200, 0.01)
    assert read_metrics(path)["requests"] == 0
    recorder._last_flush = 0.0
    recorder.flush()
    assert read_metrics(path)["requests"] == 1


def test_a_snapshot_too_big_for_its_slot_keeps_its_totals(tmp_path):
    path = tmp_path / "metrics.bin"
    create_metrics_file(path, 1)
    recorder = MetricsRecorder(path, 0)
    for i in range(2000):
        recorder.observe(f"GET /route-{i:04d}-{'x' * 40}", 500 if i % 10 == 0 else 200, 0.002)
    recorder.flush()
    merged = read_metrics(path)
    assert merged["requests"] == 2000
    assert merged["errors"] == 200
    assert "* <other routes>" in merged["routes"]
