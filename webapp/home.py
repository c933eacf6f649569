"""The start page ``/``: for now a greeting and the ways on; the data area lists collections here."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    return render_template("home.html")
