"""(being written)"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("admin_audit", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
