"""API tokens: shown once, stored as a digest, scoped, expiring, revocable; last use written once a minute."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.accounts import tokens
from appliance.accounts.user_changes import create_user, disable_user
from appliance.errors import NotFound, ValidationFailed
from appliance.storage.models import ApiToken
from tests.conftest import counting_queries
from tests.fakes import FakeClock


@pytest.fixture
def ann(instance):
    return create_user("ann@example.com", "Ann", "editor", "a-long-enough-password", actor="test")


def test_a_token_is_stored_only_as_its_digest(ann):
    token, secret = tokens.create_token(ann.id, "script", scope="read", expires_days=30)
    row = ApiToken.get_by_id(token.id)
    assert secret.startswith("oat_") and len(secret) > 40
    assert secret not in (row.digest, row.prefix, row.name)
    assert row.digest == tokens.digest_of(secret)
    assert "digest" not in tokens.serialize_token(row) and secret not in str(tokens.serialize_token(row))


def test_authenticating_a_token_is_one_query(ann, instance):
    _token, secret = tokens.create_token(ann.id, "script")
    tokens.authenticate_token(secret)  # first use writes last_used_at
    with counting_queries() as queries:
        found = tokens.authenticate_token(secret)
        assert found.user.email == "ann@example.com"  # the user came with the same query
    assert len(queries) == 1


def test_last_used_is_written_at_most_once_a_minute(ann):
    clock = FakeClock()
    token, secret = tokens.create_token(ann.id, "script", now=clock.now())
    tokens.authenticate_token(secret, now=clock.now())
    first = ApiToken.get_by_id(token.id).last_used_at
    clock.advance(seconds=30)
    tokens.authenticate_token(secret, now=clock.now())
    assert ApiToken.get_by_id(token.id).last_used_at == first
    clock.advance(seconds=31)
    tokens.authenticate_token(secret, now=clock.now())
    assert ApiToken.get_by_id(token.id).last_used_at > first


def test_expired_unknown_and_disabled_users_tokens_are_refused(ann, instance):
    clock = FakeClock()
    _token, secret = tokens.create_token(ann.id, "script", expires_days=1, now=clock.now())
    assert tokens.authenticate_token(secret, now=clock.now()) is not None
    assert tokens.authenticate_token(secret, now=clock.now() + dt.timedelta(days=1, seconds=1)) is None
    assert tokens.authenticate_token("oat_" + "x" * 43) is None
    assert tokens.authenticate_token("") is None
    create_user("boss@example.com", "Boss", "admin", "a-long-enough-password", actor="test")
    _token, live = tokens.create_token(ann.id, "other")
    disable_user(ann.id, actor="test")
    assert tokens.authenticate_token(live) is None


def test_bad_token_inputs_name_their_fields(ann):
    with pytest.raises(ValidationFailed) as caught:
        tokens.create_token(ann.id, " ", scope="admin", expires_days=0)
    assert set(caught.value.fields) == {"name", "scope", "expires_days"}
    assert ApiToken.select().count() == 0


def test_only_the_owner_or_an_admin_may_revoke_a_token(ann):
    bob = create_user("bob@example.com", "Bob", "editor", "a-long-enough-password", actor="test")
    boss = create_user("boss@example.com", "Boss", "admin", "a-long-enough-password", actor="test")
    token, secret = tokens.create_token(ann.id, "script")
    with pytest.raises(NotFound):
        tokens.revoke_token(token.id, actor=bob)
    tokens.revoke_token(token.id, actor=boss)
    assert tokens.authenticate_token(secret) is None
    mine, _ = tokens.create_token(ann.id, "mine")
    tokens.revoke_token(mine.id, actor=ann)
    assert ApiToken.select().count() == 0
