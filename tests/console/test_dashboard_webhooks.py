"""The console's dashboard turns the status API's webhooks section into alerts: paused webhooks and
failed deliveries, each notified once (its key does not change with the count)."""

from __future__ import annotations

from console.dashboard import alerts_from_status, keyed_alerts_from_status


def test_paused_webhooks_and_failed_deliveries_are_dashboard_alerts():
    status = {
        "webhooks": {
            "paused": [{"id": 3, "url": "http://n8n.local/hook", "paused_at": "2026-01-05T12:00:00Z", "reason": "x"}],
            "failed_deliveries": 4,
        }
    }
    texts = alerts_from_status(status)
    assert any("Webhook 3 (http://n8n.local/hook) paused itself" in t for t in texts)
    assert "4 webhook deliveries failed; replay them at /admin/webhooks." in texts
    more = {"webhooks": {**status["webhooks"], "failed_deliveries": 5}}
    assert [k for k, _ in keyed_alerts_from_status(status)] == [k for k, _ in keyed_alerts_from_status(more)]
    assert alerts_from_status({"webhooks": {"paused": [], "failed_deliveries": 0}}) == []
