"""A real SMTP server (aiosmtpd) on a free loopback port, collecting what it receives."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

import pytest

from tests.waiting import eventually


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def wait_for(self, count: int = 1, timeout: float = 10) -> list[Message]:
        """Wait until at least ``count`` messages arrived; returns them (all that arrived)."""
        return eventually(
            lambda: self.messages if len(self.messages) >= count else None,
            timeout=timeout,
            interval=0.02,
            message=lambda: f"{len(self.messages)} of {count} messages arrived",
        )

    def settings(self, **extra: object) -> dict[str, object]:
        """Settings that send through this server without TLS."""
        return {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": "none",
            "smtp_sender": "appliance@example.com",
            **extra,
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        self.box.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    box = Mailbox("127.0.0.1", free_port())

    def authenticate(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            box.logins.append((user, password))
            return AuthResult(success=(user, password) == ("mailer", "s3cret"), handled=False)
        return AuthResult(success=False, handled=False)

    controller = Controller(
        _Handler(box),
        hostname=box.host,
        port=box.port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def certificate(tmp_path, monkeypatch) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (made by the openssl tool), trusted by this process
    through ``SSL_CERT_FILE``, as an office's own mail server certificate would be installed."""
    import subprocess

    cert, key = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return str(cert), str(key)


@pytest.fixture(params=["starttls", "tls"])
def tls_mailbox(request, certificate) -> Iterator[tuple[Mailbox, str]]:
    """A real SMTP server speaking STARTTLS (required) or implicit TLS; yields it and the security setting."""
    import ssl

    from aiosmtpd.controller import Controller

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    box = Mailbox("127.0.0.1", free_port())
    if request.param == "starttls":
        controller = Controller(
            _Handler(box), hostname=box.host, port=box.port, tls_context=context, require_starttls=True
        )
    else:
        controller = Controller(_Handler(box), hostname=box.host, port=box.port, ssl_context=context)
    controller.start()
    try:
        yield box, request.param
    finally:
        controller.stop()
