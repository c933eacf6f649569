"""The listening socket: binding it, naming the process that holds a port, the URL it is reached at."""

from __future__ import annotations

import errno
import os
import socket

import psutil

from appliance.errors import PortInUse, StartupRefused


def _listens_on(process: psutil.Process, port: int) -> bool:
    try:
        return any(
            c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
            for c in process.net_connections(kind="inet")
        )
    except psutil.Error:
        return False


def port_holder(port: int) -> str | None:
    """Describe the process listening on ``port`` ("python3 (pid 1234)"), when it can be seen.

    Several processes share a listening socket (our own server: a parent and its
    workers); the one named is the eldest ancestor that still listens on it.
    """
    try:
        pid = next(
            (
                conn.pid
                for conn in psutil.net_connections(kind="inet")
                if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid
            ),
            None,
        )
    except (psutil.Error, OSError):
        return None
    if pid is None:
        return None
    try:
        holder = psutil.Process(pid)
        parent = holder.parent()
        while parent is not None and _listens_on(parent, port):
            holder, parent = parent, parent.parent()
        return f"{holder.name()} (pid {holder.pid})"
    except psutil.Error:
        return f"pid {pid}"


def _bound(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` exactly as the server binds it; raises the ``OSError`` of a refusal."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name == "posix":
        # Lets a restarted server bind while old connections sit in TIME_WAIT;
        # on Linux it never lets two live listeners share the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def probe_port(host: str, port: int) -> OSError | None:
    """Whether the server could bind ``host:port`` now: ``None`` when it could, else the refusal.

    The one probe for the console's wizard and ``appliance doctor``: it binds the
    way :func:`bind_socket` does, so a port whose last connections still sit in
    TIME_WAIT after a server stopped is free here too, as it is for the server.
    """
    try:
        _bound(host, port).close()
    except OSError as exc:
        return exc
    return None


def bind_socket(host: str, port: int, backlog: int) -> socket.socket:
    """Bind and listen. Raises :class:`PortInUse` naming the port (and its holder) when it is taken,
    :class:`StartupRefused` when it cannot be used otherwise."""
    try:
        sock = _bound(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            holder = port_holder(port)
            who = f" by {holder}" if holder else ""
            raise PortInUse(f"port {port} on {host} is already in use{who}; choose another with --port") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise StartupRefused(
                f"not allowed to listen on port {port} on {host} (ports below 1024 need privileges)"
            ) from None
        raise StartupRefused(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(backlog)
    return sock


def url_for(host: str, port: int) -> str:
    """The URL to print and to write in server.json: a wildcard address becomes this machine's loopback."""
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"
