"""One-time account links: invitations, password resets, their expiry, single use and voiding (real SQLite,
a controlled clock)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from appliance.accounts import passwords
from appliance.accounts.account_links import pending_invitations
from appliance.accounts.invitations import accept_invitation, check_invitation, invite_user
from appliance.accounts.password_resets import (
    ResetRules,
    check_reset_link,
    complete_password_reset,
    create_reset_link,
    request_password_reset,
)
from appliance.accounts.sessions import Timeouts, authenticate_session, start_session
from appliance.accounts.sign_in import sign_in
from appliance.accounts.throttle import ThrottleRules
from appliance.accounts.tokens import authenticate_token, create_token, digest_of
from appliance.accounts.user_changes import disable_user, enable_user
from appliance.accounts.users import get_user
from appliance.errors import Conflict, LinkNotUsable, NotAuthenticated, Throttled, ValidationFailed
from appliance.storage.db import database
from appliance.storage.models import AccountLink, AuditEvent
from tests.fakes import FakeClock

NEW_PASSWORD = "a-brand-new-passphrase"


@pytest.fixture
def db(instance, personas):
    with database.connection_context():
        yield personas


def actions(target: str) -> list[str]:
    return [e.action for e in AuditEvent.select().where(AuditEvent.target == target).order_by(AuditEvent.id)]


def test_an_invited_user_exists_with_no_usable_password_and_sets_their_own_through_the_link(db):
    admin = get_user(db.admin.id)
    made = invite_user("Erin@Example.com", "Erin", "editor", actor=admin)
    assert made.user.email == "erin@example.com" and made.user.active
    assert AccountLink.get(AccountLink.user == made.user.id).digest == digest_of(made.secret)  # never the secret
    assert not AccountLink.select().where(AccountLink.digest == made.secret).exists()
    assert pending_invitations([made.user.id, db.editor.id]) == {made.user.id}
    with pytest.raises(NotAuthenticated):  # no password works before the invitation is used
        sign_in("erin@example.com", "any-guess-at-all", address=None, rules=ThrottleRules())
    assert check_invitation(made.secret).id == made.user.id

    user = accept_invitation(made.secret, NEW_PASSWORD)
    assert passwords.verify_password(user.password_hash, NEW_PASSWORD)
    assert sign_in("erin@example.com", NEW_PASSWORD, address=None, rules=ThrottleRules()).id == user.id
    assert pending_invitations([user.id]) == set()
    assert actions("erin@example.com")[:4] == ["user.created", "user.invited", "sign_in.failed", "invitation.used"]


def test_a_used_invitation_link_is_refused_plainly(db):
    made = invite_user("erin@example.com", "Erin", "editor", actor="test")
    accept_invitation(made.secret, NEW_PASSWORD)
    with pytest.raises(LinkNotUsable, match="used already") as caught:
        accept_invitation(made.secret, "another-passphrase-1")
    assert caught.value.extra["reason"] == "used"
    assert passwords.verify_password(get_user(made.user.id).password_hash, NEW_PASSWORD)


def test_an_invitation_link_works_for_72_hours_and_then_says_it_expired(db):
    clock = FakeClock()
    made = invite_user("erin@example.com", "Erin", "editor", actor="test", now=clock.now())
    clock.advance(hours=71, minutes=59)
    assert check_invitation(made.secret, now=clock.now()).id == made.user.id
    clock.advance(minutes=2)
    with pytest.raises(LinkNotUsable, match="expired"):
        accept_invitation(made.secret, NEW_PASSWORD, now=clock.now())


def test_a_refused_password_leaves_the_invitation_usable(db):
    made = invite_user("erin@example.com", "Erin", "editor", actor="test")
    for bad, message in (("short", "at least 10"), ("erin@example.com", "email"), ("password123", "common")):
        with pytest.raises(ValidationFailed) as caught:
            accept_invitation(made.secret, bad)
        assert message in caught.value.fields["password"]
    assert accept_invitation(made.secret, NEW_PASSWORD).id == made.user.id


def test_inviting_again_replaces_the_link_and_takes_the_new_name_and_role(db):
    first = invite_user("erin@example.com", "Erin", "editor", actor="test")
    again = invite_user("erin@example.com", "Erin Smith", "viewer", actor="test")
    assert again.again and again.user.id == first.user.id
    assert (again.user.name, again.user.role) == ("Erin Smith", "viewer")
    with pytest.raises(LinkNotUsable, match="newer link replaced it"):
        check_invitation(first.secret)
    assert check_invitation(again.secret).id == first.user.id
    event = AuditEvent.select().where(AuditEvent.action == "user.invited").order_by(AuditEvent.id.desc()).get()
    assert json.loads(event.details) == {"role": "viewer", "again": True}


def test_an_existing_account_cannot_be_invited(db):
    with pytest.raises(Conflict) as caught:
        invite_user(db.editor.email, "Bob", "editor", actor="test")
    assert "reset link" in caught.value.fields["email"]


def test_bad_invitation_fields_are_named_and_change_nothing(db):
    count = AccountLink.select().count()
    with pytest.raises(ValidationFailed) as caught:
        invite_user("not-an-email", "", "nobody", actor="test")
    assert set(caught.value.fields) == {"email", "name", "role"}
    assert AccountLink.select().count() == count


def test_disabling_a_user_voids_their_links_and_enabling_does_not_revive_them(db):
    made = invite_user("erin@example.com", "Erin", "editor", actor="test")
    reset = create_reset_link(db.editor.id, actor="test")
    disable_user(made.user.id, actor="test")
    disable_user(db.editor.id, actor="test")
    enable_user(made.user.id, actor="test")
    enable_user(db.editor.id, actor="test")
    with pytest.raises(LinkNotUsable, match="disabled"):
        check_invitation(made.secret)
    with pytest.raises(LinkNotUsable, match="disabled"):
        complete_password_reset(reset.secret, NEW_PASSWORD)


def test_a_disabled_user_gets_no_reset_link(db):
    with pytest.raises(Conflict):
        create_reset_link(db.disabled.id, actor="test")
    assert request_password_reset(db.disabled.email) is None


def test_a_reset_link_sets_a_new_password_ends_every_session_keeps_tokens_and_lifts_a_lock(db, instance):
    timeouts = Timeouts.from_settings(instance.settings)
    editor = get_user(db.editor.id)
    session_key = start_session(editor, timeouts)
    _token, token_secret = create_token(editor.id, "script", scope="read", actor="test")
    rules = ResetRules()
    made = request_password_reset("  BOB@example.com ", address="10.0.0.9", rules=rules)
    assert made is not None and made.user.id == editor.id
    assert check_reset_link(made.secret).id == editor.id

    user = complete_password_reset(made.secret, NEW_PASSWORD, address="10.0.0.9")
    assert passwords.verify_password(user.password_hash, NEW_PASSWORD)
    assert authenticate_session(session_key, timeouts) is None
    assert authenticate_token(token_secret) is not None
    with pytest.raises(LinkNotUsable, match="used already"):
        complete_password_reset(made.secret, "yet-another-passphrase")
    assert actions("bob@example.com")[-2:] == ["password_reset.requested", "password_reset.completed"]


def test_a_reset_link_works_for_one_hour(db):
    clock = FakeClock()
    made = create_reset_link(db.editor.id, actor="test", now=clock.now())
    clock.advance(minutes=59)
    assert check_reset_link(made.secret, now=clock.now()).id == db.editor.id
    clock.advance(minutes=2)
    with pytest.raises(LinkNotUsable, match="expired"):
        complete_password_reset(made.secret, NEW_PASSWORD, now=clock.now())


def test_using_one_link_voids_the_users_other_links(db):
    first = create_reset_link(db.editor.id, actor="test")
    made = request_password_reset(db.editor.email)
    assert made is not None
    with pytest.raises(LinkNotUsable, match="newer link replaced it"):
        check_reset_link(first.secret)
    complete_password_reset(made.secret, NEW_PASSWORD)


def test_an_unknown_address_gets_the_same_treatment_but_no_link(db):
    assert request_password_reset("nobody@example.com", address="10.0.0.1") is None
    assert not AccountLink.select().where(AccountLink.kind == "reset").exists()
    event = AuditEvent.select().where(AuditEvent.action == "password_reset.requested").get()
    assert json.loads(event.details) == {"account": False}


def test_reset_requests_are_throttled_per_email_known_or_not_and_per_address(db):
    clock = FakeClock()
    rules = ResetRules(per_email=2, per_address=3, window=dt.timedelta(hours=1))
    for email in (db.editor.email, "nobody@example.com"):
        for _ in range(2):
            request_password_reset(email, address=f"10.0.0.{len(email)}", rules=rules, now=clock.now())
        with pytest.raises(Throttled) as caught:
            request_password_reset(email, address="10.9.9.9", rules=rules, now=clock.now())
        assert 0 < caught.value.extra["retry_after"] <= 3600
    # Per address: three different emails from one address, then refused.
    for n in range(3):
        request_password_reset(f"someone{n}@example.com", address="10.1.1.1", rules=rules, now=clock.now())
    with pytest.raises(Throttled):
        request_password_reset("someone9@example.com", address="10.1.1.1", rules=rules, now=clock.now())
    # A refused request makes no link; after the window the email may ask again.
    links = AccountLink.select().count()
    with pytest.raises(Throttled):
        request_password_reset(db.editor.email, address="10.2.2.2", rules=rules, now=clock.now())
    assert AccountLink.select().count() == links
    clock.advance(hours=1, seconds=1)
    assert request_password_reset(db.editor.email, address="10.2.2.2", rules=rules, now=clock.now()) is not None


def test_a_secret_that_is_not_one_is_refused_without_a_lookup_error(db):
    for secret in (None, "", "x" * 5000, 42, "no-such-link"):
        with pytest.raises(LinkNotUsable, match="not valid"):
            check_reset_link(secret)
