"""The webhook dispatcher as a service of the server's parent process, with its alerts to the admins.

The webhooks area sends; this module (in the jobs area, which owns alerts
and what runs beside the scheduler) gives it the live settings and turns a
delivery that failed its last try, or a webhook that paused itself, into an
alert on the dashboard, in the status API and in the admins' mail.
"""

from __future__ import annotations

from typing import Any

from appliance.clock import as_stored, iso
from appliance.config.home import Instance
from appliance.jobs.alerts import raise_alert
from appliance.jobs.definitions import current_settings
from appliance.storage.models import Webhook, WebhookDelivery
from appliance.webhooks.dispatcher import WebhookDispatcher


def report_webhook_problem(instance: Instance, kind: str, webhook: Webhook, delivery: WebhookDelivery) -> None:
    """Raise the alert of a failed delivery (once a day per webhook) or of a self-paused webhook."""
    settings = current_settings(instance)
    last = delivery.last_error or f"answered {delivery.last_status_code}"
    if kind == "paused":
        raise_alert(
            settings,
            "webhook_paused",
            f"Webhook {webhook.id} paused itself",
            f"The webhook {webhook.id} ({webhook.url}, collection {webhook.collection}) paused itself after "
            f"{webhook.consecutive_failures} failed deliveries in a row (the last: {last}). No events are sent "
            "to it until an admin turns it back on at /admin/webhooks; events that happen meanwhile are kept "
            "and sent then.",
            key=f"webhook-paused:{webhook.id}:{iso(webhook.paused_at)}",
        )
        return
    day = as_stored(None).date().isoformat()
    raise_alert(
        settings,
        "webhook_failed",
        f"Webhook {webhook.id}: a delivery failed",
        f"A delivery to {webhook.url} (event {delivery.type}, webhook-id {delivery.message_id}) failed after "
        f"{delivery.attempts} tries (the last: {last}). Replay it from /admin/webhooks/{webhook.id} once the "
        "receiver works again.",
        key=f"webhook-failed:{webhook.id}:{day}",
    )


def webhook_dispatcher(instance: Instance, **options: Any) -> WebhookDispatcher:
    """The dispatcher the server's parent runs: live settings, alerts on failures; ``options`` go to
    :class:`WebhookDispatcher` (a test's clock)."""

    def allowed_private() -> str:
        return str(current_settings(instance).webhook_allowed_private_networks)

    def on_problem(kind: str, webhook: Webhook, delivery: WebhookDelivery) -> None:
        report_webhook_problem(instance, kind, webhook, delivery)

    return WebhookDispatcher(allowed_private=allowed_private, on_problem=on_problem, **options)
