"""The page layout: Bootstrap served by the app itself (no CDN), the navigation, form helpers.

Other areas add their pages to the navigation with :func:`add_nav_link`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee
from flask import Flask, current_app, session
from flask_bootstrap import Bootstrap5
from flask_login import current_user

from appliance.clock import shown_time
from appliance.collections.access import list_collections
from appliance.errors import ApplianceError


@dataclass(frozen=True)
class NavLink:
    label: str
    path: str
    admin_only: bool = False


def add_nav_link(app: Flask, label: str, path: str, *, admin_only: bool = False) -> None:
    """Show a link in the top navigation (to admins only when ``admin_only``)."""
    app.extensions.setdefault("appliance.nav", []).append(NavLink(label, path, admin_only))


def _nav_links() -> list[NavLink]:
    if not current_user.is_authenticated:
        return []
    links = current_app.extensions.get("appliance.nav", [])
    return [link for link in links if current_user.is_admin or not link.admin_only]


# The most collections the menu names one by one; with more, an "All collections" link (the start page) ends it.
MENU_COLLECTIONS = 6


def _collection_links() -> list[NavLink]:
    """For signed-in staff (not admins, who have the admin pages): the collections they may view, by label."""
    if not current_user.is_authenticated or current_user.is_admin:
        return []
    try:
        visible = list_collections(current_user.user)
    except (ApplianceError, peewee.DatabaseError):
        return []  # an error page (a database in trouble) still renders, with the plain menu
    collections = sorted(visible, key=lambda c: (c.label or c.name).casefold())
    links = [NavLink(c.label or c.name, f"/c/{c.name}") for c in collections[:MENU_COLLECTIONS]]
    if len(collections) > MENU_COLLECTIONS:
        links.append(NavLink("All collections", "/#collections"))
    return links


def form_number(text: str) -> Any:
    """A form's text as a whole number when it is one, else the text as typed (so the service's check names
    it in its own words)."""
    try:
        return int(text.strip())
    except ValueError:
        return text


def form_errors(exc: ApplianceError) -> dict[str, str]:
    """Messages to show beside the fields of a form: field errors, else one for the whole form (``_form``)."""
    return dict(exc.fields) if exc.fields else {"_form": exc.message}


def keep_once(key: str, value: Any) -> None:
    """Keep ``value`` (a one-time secret: a new token, a generated password) for the next page only.

    Post/Redirect/Get: the form's answer redirects, the page it leads to shows the value with
    :func:`take_once`, so a refresh neither repeats the action nor shows the secret again.
    """
    session[f"once:{key}"] = value


def take_once(key: str) -> Any:
    """The value kept by :func:`keep_once` under ``key``, removed from the session; ``None`` when none."""
    return session.pop(f"once:{key}", None)


def init_app(app: Flask) -> None:
    app.config.update(
        BOOTSTRAP_SERVE_LOCAL=True,
        BOOTSTRAP_BOOTSWATCH_THEME=None,
    )
    Bootstrap5(app)
    add_nav_link(app, "Home", "/")
    add_nav_link(app, "Users", "/admin/users", admin_only=True)
    # Every page shows a time one way: 2026-11-25 13:51 UTC.
    app.add_template_filter(shown_time, "when")

    @app.context_processor
    def _layout_context() -> dict:
        return {"nav_links": _nav_links(), "collection_links": _collection_links()}
