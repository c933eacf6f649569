"""A WSGI app factory for server tests: the real app plus an endpoint that takes its time."""

from __future__ import annotations

import time

from flask import jsonify, request

from webapp import create_app as create_real_app


def create_app(instance, runtime=None):
    app = create_real_app(instance, runtime)

    @app.get("/_test/slow")
    def slow():
        seconds = float(request.args.get("seconds", "2"))
        # Tell the test the request is in flight, so it signals at the right moment.
        (instance.home / "slow-request-started").touch()
        time.sleep(seconds)  # the request is slow on purpose: the server must let it finish on SIGTERM
        return jsonify(slept=seconds)

    return app
