"""The first-run link: one hour, one use, dead as soon as an admin exists."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.accounts import setup_links
from appliance.accounts.user_changes import create_user
from appliance.errors import NotFound, ValidationFailed
from appliance.storage.models import User
from tests.fakes import FakeClock


def test_a_setup_link_creates_the_first_admin(instance):
    secret = setup_links.create_setup_link()
    setup_links.check_setup_link(secret)
    admin = setup_links.complete_setup(secret, "Boss@Example.com", "Boss", "a-long-enough-password")
    assert (admin.email, admin.role) == ("boss@example.com", "admin")
    assert setup_links.create_setup_link() is None


def test_a_used_link_stays_dead_even_when_no_admin_is_left(instance):
    """Single use on its own: not only because an admin now exists, but because the link is spent."""
    secret = setup_links.create_setup_link()
    admin = setup_links.complete_setup(secret, "boss@example.com", "Boss", "a-long-enough-password")
    User.delete().where(User.id == admin.id).execute()  # no admin any more, as on a new instance
    assert setup_links.needs_setup()
    with pytest.raises(NotFound):
        setup_links.check_setup_link(secret)
    with pytest.raises(NotFound):
        setup_links.complete_setup(secret, "second@example.com", "Second", "a-long-enough-password")
    assert User.select().count() == 0


def test_the_password_is_hashed_before_the_write_transaction(instance, monkeypatch):
    from appliance.accounts import passwords
    from appliance.storage.db import database

    seen = []
    original = passwords.hash_password
    monkeypatch.setattr(passwords, "hash_password", lambda pw: seen.append(database.in_transaction()) or original(pw))
    secret = setup_links.create_setup_link()
    setup_links.complete_setup(secret, "boss@example.com", "Boss", "a-long-enough-password")
    assert seen == [False]


def test_a_refused_form_leaves_the_link_usable(instance):
    secret = setup_links.create_setup_link()
    with pytest.raises(ValidationFailed):
        setup_links.complete_setup(secret, "boss@example.com", "Boss", "short")
    assert setup_links.complete_setup(secret, "boss@example.com", "Boss", "a-long-enough-password")


def test_a_link_expires_after_an_hour(instance):
    clock = FakeClock()
    secret = setup_links.create_setup_link(now=clock.now())
    setup_links.check_setup_link(secret, now=clock.now() + dt.timedelta(minutes=59))
    with pytest.raises(NotFound):
        setup_links.check_setup_link(secret, now=clock.now() + dt.timedelta(minutes=61))


def test_a_new_link_replaces_the_old_one(instance):
    old = setup_links.create_setup_link()
    new = setup_links.create_setup_link()
    with pytest.raises(NotFound):
        setup_links.check_setup_link(old)
    setup_links.check_setup_link(new)


def test_an_admin_made_otherwise_kills_the_link(instance):
    secret = setup_links.create_setup_link()
    create_user("boss@example.com", "Boss", "admin", "a-long-enough-password", actor="cli")
    with pytest.raises(NotFound):
        setup_links.check_setup_link(secret)
