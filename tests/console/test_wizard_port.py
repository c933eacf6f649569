"""The wizard's port check agrees with the server: TIME_WAIT after a stop is not "in use"."""

from __future__ import annotations

import contextlib
import socket

from console.wizard import port_problem
from tests.appliance.server.test_sockets import _port_in_time_wait


def test_the_wizard_offers_a_port_a_server_just_stopped_using():
    assert port_problem(_port_in_time_wait()) is None


def test_the_wizard_names_a_port_that_is_really_taken():
    with contextlib.closing(socket.socket()) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        assert port_problem(port).startswith(f"Port {port} is already in use")
