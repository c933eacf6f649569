"""What a request handler asks of the app it runs in: the instance, the bearer token, the control token."""

from __future__ import annotations

import hmac

from flask import current_app, request

from appliance.config.home import Instance
from appliance.server.run_files import ServerRuntime, read_control_token


def current_instance() -> Instance:
    """The instance the running app serves (set by :func:`webapp.create_app`)."""
    instance: Instance = current_app.extensions["appliance.instance"]
    return instance


def control_token_matches(token: str) -> bool:
    """Whether ``token`` is this server's control token (constant-time).

    Without a server runtime (tests, scripts) the token is read from the home's
    run folder, when a server wrote one.
    """
    runtime: ServerRuntime | None = current_app.extensions["appliance.runtime"]
    expected = runtime.control_token if runtime else None
    if expected is None:
        expected = read_control_token(current_instance().paths)
        if expected is None:
            return False
    return bool(token) and hmac.compare_digest(token.encode(), expected.encode())


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None
