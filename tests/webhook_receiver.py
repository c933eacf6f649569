"""A real HTTP receiver on a loopback port that checks every signature the Standard Webhooks way.

Written from the specification (https://www.standardwebhooks.com/), not from
the appliance's own signing code: the signed content is
``{webhook-id}.{webhook-timestamp}.{body}``, the key the base64-decoded part
of the secret after ``whsec_``, the signature ``v1,`` + base64(HMAC-SHA256),
and the header may hold several space-separated signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    msg_id, timestamp, header = headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    for part in header.split(" "):
        version, _, value = part.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secret: str = ""
    answers: list[int] = field(default_factory=list)  # statuses to answer next, in turn; then 200
    always: int = 200
    delay: float = 0.0  # seconds to wait before answering (a slow receiver)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 500) -> None:
        self.answers.extend([status] * count)

    def next_status(self) -> int:
        with self.lock:
            return self.answers.pop(0) if self.answers else self.always

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
    box: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            target = box["receiver"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verified = verify_standard_webhook(target.secret, headers, body)
            except (KeyError, ValueError, IndexError):
                verified = False
            status = target.next_status()
            if target.delay:
                time.sleep(target.delay)  # a slow receiver, on purpose
            with target.lock:
                target.received.append(Received(headers, body, verified, status))
            answer = b'{"ok": true}' if status < 300 else b"receiver failed on purpose"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender went away (a killed server): nothing to answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook?source=appliance")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box["receiver"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
