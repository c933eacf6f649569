"""The delivery loop, run in the server's parent process beside the scheduler, never in a request.

Every ``interval`` seconds :meth:`WebhookDispatcher.step` turns new outbox
events into deliveries and hands the due ones to a small thread pool; a try
waits at most the time-out, and at most ``max_in_flight`` tries run at once,
so a slow receiver holds a pool thread, never a write nor the loop. A server
killed mid-try leaves the delivery pending; it is tried again after the
restart with the same ``webhook-id`` (at least once).

What the appliance does when a webhook fails for good or pauses itself (an
alert to the admins) is given as ``on_problem``, by the jobs area that starts
this loop.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.storage.db import database
from appliance.storage.models import Webhook, WebhookDelivery
from appliance.webhooks.addresses import address_problem, url_problem
from appliance.webhooks.deliveries import PENDING, Attempt, Outcome, due_deliveries, make_deliveries, record_attempt
from appliance.webhooks.sending import TIMEOUT_SECONDS, post
from appliance.webhooks.signing import signed_headers

log = logging.getLogger("appliance.webhooks")

# (kind, webhook, delivery): kind is "failed" (a delivery failed its last try) or "paused".
ProblemHook = Callable[[str, Webhook, WebhookDelivery], None]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class StepResult:
    """What one step did: deliveries ``made`` from new events, tries ``started``, and (when the step
    waited for them) the ``outcomes`` by delivery id."""

    made: int = 0
    started: list[int] = field(default_factory=list)
    outcomes: dict[int, Outcome | None] = field(default_factory=dict)


class WebhookDispatcher:
    """Makes and sends deliveries; ``start()``/``stop()`` for the server runner, ``step()`` for tests."""

    def __init__(
        self,
        *,
        allowed_private: Callable[[], str] = lambda: "",
        on_problem: ProblemHook | None = None,
        now: Callable[[], dt.datetime] = _utcnow,
        interval: float = 1.0,
        workers: int = 4,
        max_in_flight: int = 16,
        timeout: float = TIMEOUT_SECONDS,
    ):
        self.allowed_private = allowed_private
        self.on_problem = on_problem
        self.now = now
        self.interval = interval
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="webhook")
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="webhook-dispatcher", daemon=True)
        self._thread.start()
        log.info("webhook dispatcher started")

    def stop(self) -> None:
        """Stop looking for work; tries already going finish (each within the time-out), queued ones stay pending."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        log.info("webhook dispatcher stopped")

    def _loop(self) -> None:
        # A finished try wakes the loop early, so a burst of events is sent as fast as the pool allows
        # rather than ``max_in_flight`` per interval.
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.step()
            except Exception:
                log.exception("webhook step failed; retrying at the next one")

    # --- the step -----------------------------------------------------------------------

    def step(self, *, wait: bool = False) -> StepResult:
        """Make deliveries of new events and start the due tries; with ``wait``, wait for those tries."""
        result = StepResult()
        now = self.now()
        with database.connection_context():
            result.made = make_deliveries(now)
            with self._lock:
                room = self.max_in_flight - len(self._in_flight)
                due = due_deliveries(now, limit=room, exclude=set(self._in_flight)) if room > 0 else []
                self._in_flight.update(due)
        futures = {}
        for delivery_id in due:
            try:
                futures[delivery_id] = self._pool.submit(self._deliver, delivery_id)
            except RuntimeError:  # the pool is shutting down: the delivery stays pending
                with self._lock:
                    self._in_flight.discard(delivery_id)
        result.started = list(futures)
        if wait:
            for delivery_id, future in futures.items():
                result.outcomes[delivery_id] = future.result()
        return result

    def _deliver(self, delivery_id: int) -> Outcome | None:
        """One try of one delivery, in a pool thread; never raises."""
        try:
            with database.connection_context():
                return self._try(delivery_id)
        except Exception:
            log.exception("webhook delivery %s could not be tried", delivery_id)
            return None
        finally:
            with self._lock:
                self._in_flight.discard(delivery_id)
            self._wake.set()

    def _try(self, delivery_id: int) -> Outcome | None:
        delivery = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id)
        if delivery is None or delivery.status != PENDING:
            return None
        webhook = Webhook.get_or_none(Webhook.id == delivery.webhook_id)
        if webhook is None or not webhook.active:
            return None
        problem = url_problem(webhook.url) or address_problem(webhook.url, self.allowed_private())
        if problem:
            attempt = Attempt(False, error=f"not sent: {problem}")
        else:
            body = delivery.body.encode("utf-8")
            timestamp = int(self.now().timestamp())
            attempt = post(
                webhook.url,
                body,
                signed_headers(webhook.secret, delivery.message_id, timestamp, body),
                timeout=self.timeout,
            )
        outcome = record_attempt(delivery_id, attempt, self.now())
        if outcome is not None and outcome.failed and self.on_problem is not None:
            webhook = Webhook.get_by_id(webhook.id)
            delivery = WebhookDelivery.get_by_id(delivery_id)
            # One report at a time: an alert said once (by its key) must not be raised twice by two pool threads.
            with self._report_lock:
                for kind in ("failed", "paused") if outcome.paused else ("failed",):
                    try:
                        self.on_problem(kind, webhook, delivery)
                    except Exception:
                        log.exception("could not report webhook %s %s", webhook.id, kind)
        return outcome
