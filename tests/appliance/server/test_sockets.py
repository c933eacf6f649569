"""The port probe binds as the server does: a port a stopped server left in TIME_WAIT is free (issue 16, item 9)."""

from __future__ import annotations

import contextlib
import errno
import socket

from appliance.server.sockets import bind_socket, probe_port


def _port_in_time_wait() -> int:
    """A port whose listener is gone but whose last connection sits in TIME_WAIT (the server closed first).

    The listener is made as the server makes its own (SO_REUSEADDR): Linux lets a new socket bind over
    TIME_WAIT only when both the old one and the new one asked for that.
    """
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server's side closes first: that side keeps TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()
    return port


def test_a_port_left_in_time_wait_by_a_stopped_server_is_free_for_the_probe_and_the_server():
    port = _port_in_time_wait()
    plain = socket.socket()
    try:
        plain.bind(("127.0.0.1", port))  # what the wizard's own probe did: refused for a minute
        refused_without_reuse = False
    except OSError as exc:
        refused_without_reuse = exc.errno == errno.EADDRINUSE
    finally:
        plain.close()
    assert refused_without_reuse, "the kernel did not keep TIME_WAIT; the scenario did not happen"
    assert probe_port("127.0.0.1", port) is None
    bind_socket("127.0.0.1", port, 8).close()


def test_a_port_someone_listens_on_is_refused_as_in_use():
    with contextlib.closing(socket.socket()) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        refusal = probe_port("127.0.0.1", holder.getsockname()[1])
    assert refusal is not None and refusal.errno == errno.EADDRINUSE
