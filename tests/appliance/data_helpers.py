"""Helpers for the data tests (collections, records, listing, files): users made directly, a sample collection."""

from __future__ import annotations

from appliance.clock import utcnow
from appliance.collections.definitions import create_collection
from appliance.storage.models import User


def make_users() -> dict[str, User]:
    """An admin, an editor, a second editor and a viewer, written straight to the user table (no password hashing)."""
    out = {}
    for key, role in (("admin", "admin"), ("editor", "editor"), ("editor2", "editor"), ("viewer", "viewer")):
        out[key] = User.create(email=f"{key}@example.com", name=key, role=role, password_hash="!", created_at=utcnow())
    return out


ORDER_FIELDS = [
    {"name": "title", "type": "text", "required": True, "unique": True, "max": 80},
    {"name": "notes", "type": "long_text"},
    {"name": "quantity", "type": "integer", "min": 0, "filterable": True},
    {"name": "unit_price", "type": "number", "min": 0},
    {"name": "discount", "type": "number", "default": 0},
    {"name": "total", "type": "computed", "formula": "quantity * unit_price * (1 - discount)"},
    {"name": "paid", "type": "boolean"},
    {"name": "due", "type": "date"},
    {"name": "sent_at", "type": "datetime"},
    {"name": "contact", "type": "email"},
    {"name": "site", "type": "url"},
    {"name": "status", "type": "select", "choices": ["open", "paid"], "default": "open", "filterable": True},
    {"name": "extra", "type": "json"},
]


def make_orders(admin, **overrides):
    data = {
        "name": "orders",
        "label": "Orders",
        "fields": ORDER_FIELDS,
        "permissions": {"editor": ["view", "create", "update:own", "delete:own"], "viewer": ["view"]},
    }
    data.update(overrides)
    return create_collection(data, admin)
