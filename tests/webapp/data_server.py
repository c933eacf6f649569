"""A real server with the personas, their tokens and two collections, for the data API tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import LiveServer, Personas, start_server

ITEMS = {
    "name": "items",
    "label": "Items",
    "fields": [
        {"name": "title", "type": "text", "required": True, "unique": True},
        {"name": "quantity", "type": "integer", "min": 0, "filterable": True},
        {"name": "price", "type": "number"},
        {"name": "total", "type": "computed", "formula": "quantity * price"},
        {"name": "status", "type": "select", "choices": ["open", "done"], "default": "open"},
        {"name": "contract", "type": "file", "max_size": 2048, "accept": ["application/pdf", "image/*"]},
    ],
    "permissions": {"editor": ["view", "create", "update:own", "delete:own"], "viewer": ["view"]},
}
# The collection of the CSV import tests, through the test client and in the browser.
CSV_ORDERS = {
    "name": "orders",
    "label": "Orders",
    "fields": [
        {"name": "title", "type": "text", "required": True, "unique": True},
        {"name": "quantity", "type": "integer", "min": 0},
    ],
    "permissions": {"editor": ["view", "create"], "viewer": ["view"]},
}
HIDDEN = {"name": "hidden", "label": "Hidden", "fields": [{"name": "x", "type": "text"}], "permissions": {}}


@dataclass
class DataServer:
    server: LiveServer
    personas: Personas
    tokens: dict[str, str]

    def call(self, who: str | None, method: str, path: str, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None and who in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.server.request(method, path, headers=headers, **kwargs)


def make_data_server(live_server: LiveServer, personas: Personas, api_token_for) -> DataServer:
    tokens = {p.name: api_token_for(p.email) for p in (personas.admin, personas.editor, personas.viewer)}
    tokens["editor_read"] = api_token_for(personas.editor.email, "read")
    data = DataServer(live_server, personas, tokens)
    for definition in (ITEMS, HIDDEN):
        answer = data.call("admin", "POST", "/api/collections", json=definition)
        assert answer.status_code == 201, answer.text
    return data


@contextmanager
def running_data_server(home: Path, personas: Personas, api_token_for, env: dict[str, str]) -> Iterator[DataServer]:
    """A server of its own on ``home`` started with ``env`` (one worker), made a data server, stopped at the end."""
    server = start_server(home, workers=1, env=env)
    try:
        yield make_data_server(server, personas, api_token_for)
    finally:
        server.stop()
        if server.process.stdout:
            server.process.stdout.close()
