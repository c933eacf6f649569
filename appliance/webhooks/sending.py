"""One try of a delivery: a POST of the body with its signed headers, answered 2xx within the time-out.

``http.client`` rather than a full HTTP library on purpose: it follows no
redirect (a receiver cannot bounce a delivery to an address the checks
refused), and reads no more of the answer than the log keeps.
"""

from __future__ import annotations

import http.client
import ssl
import time
from urllib.parse import urlsplit

from appliance import __version__
from appliance.webhooks.deliveries import RESPONSE_KEPT, Attempt

TIMEOUT_SECONDS = 10.0
USER_AGENT = f"OfficeAppliance-Webhooks/{__version__}"


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = TIMEOUT_SECONDS) -> Attempt:
    """POST ``body`` to ``url``; never raises. ``ok`` only for a 2xx answer that came within ``timeout``
    seconds (each network step also waits at most that long)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
        )
        answer = connection.getresponse()
        head = answer.read(RESPONSE_KEPT * 4).decode("utf-8", "replace")[:RESPONSE_KEPT]
        elapsed = time.monotonic() - started
        duration = round(elapsed * 1000)
        if elapsed > timeout:
            return Attempt(
                False, answer.status, f"answered after {elapsed:.1f} s (more than {timeout:.0f} s)", head, duration
            )
        if 200 <= answer.status < 300:
            return Attempt(True, answer.status, None, head, duration)
        return Attempt(False, answer.status, f"answered {answer.status} {answer.reason}".strip(), head, duration)
    except TimeoutError:
        return Attempt(
            False, None, f"no answer within {timeout:.0f} s", None, round((time.monotonic() - started) * 1000)
        )
    except (OSError, http.client.HTTPException) as exc:
        reason = str(exc) or type(exc).__name__
        return Attempt(
            False, None, f"{type(exc).__name__}: {reason}"[:500], None, round((time.monotonic() - started) * 1000)
        )
    finally:
        connection.close()
