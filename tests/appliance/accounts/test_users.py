"""Users and roles: validation, case-insensitive emails, the last-admin rule, audit events."""

from __future__ import annotations

import pytest

from appliance.accounts import user_changes, users
from appliance.accounts.roles import BUILTIN_ROLES, create_role, delete_role, list_roles, role_exists
from appliance.errors import BadRequest, Conflict, NotFound, ValidationFailed
from appliance.storage.models import AuditEvent, User


def add(email="ann@example.com", role="editor", password="a-long-enough-password", name="Ann"):
    return user_changes.create_user(email, name, role, password, actor="test")


def test_emails_are_stored_lower_case_and_compare_case_insensitively(instance):
    user = add("Ann.Smith@Example.COM")
    assert user.email == "ann.smith@example.com"
    assert users.find_user_by_email("  ANN.smith@example.com ").id == user.id
    with pytest.raises(Conflict) as caught:
        add("ANN.SMITH@example.com")
    assert caught.value.fields == {"email": "This email is taken."}


def test_a_new_user_names_every_bad_field_at_once_and_nothing_is_written(instance):
    with pytest.raises(ValidationFailed) as caught:
        user_changes.create_user("not-an-email", "", "wizard", "short", actor="test")
    assert set(caught.value.fields) == {"email", "name", "role", "password"}
    assert caught.value.fields["password"] == "Use at least 10 characters."
    assert User.select().count() == 0
    assert AuditEvent.select().count() == 0


def test_the_password_may_not_be_the_email(instance):
    with pytest.raises(ValidationFailed) as caught:
        add("longer.name@example.com", password="Longer.Name@example.com")
    assert caught.value.fields == {"password": "Do not use your email address as your password."}


def test_a_created_user_is_audited_and_serialized_without_its_hash(instance):
    user = add()
    body = users.serialize_user(user)
    assert set(body) >= {"id", "email", "name", "role", "active", "created_at"}
    assert "password_hash" not in body and "argon2" not in str(body)
    assert body["created_at"].endswith("Z")
    event = AuditEvent.get(AuditEvent.action == "user.created")
    assert (event.actor, event.target) == ("test", "ann@example.com")


def test_built_in_roles_exist_and_admins_can_add_custom_ones(instance):
    assert [r.name for r in list_roles()][:3] == list(BUILTIN_ROLES)
    create_role("accountant", "Accountant", actor="test")
    assert role_exists("accountant")
    assert add(role="accountant").role == "accountant"
    with pytest.raises(Conflict):
        create_role("accountant", "Again", actor="test")
    with pytest.raises(ValidationFailed) as caught:
        create_role("Bad Name", "", actor="test")
    assert set(caught.value.fields) == {"name", "label"}


def test_a_role_in_use_or_built_in_cannot_be_removed(instance):
    create_role("temp", "Temp", actor="test")
    user = add(role="temp")
    with pytest.raises(Conflict):
        delete_role("temp", actor="test")
    with pytest.raises(Conflict):
        delete_role("viewer", actor="test")
    user_changes.update_user(user.id, {"role": "viewer"}, actor="test")
    delete_role("temp", actor="test")
    assert not role_exists("temp")


@pytest.mark.parametrize(
    "change, verb",
    [
        (lambda uid: user_changes.disable_user(uid, actor="test"), "disabled"),
        (lambda uid: user_changes.update_user(uid, {"role": "viewer"}, actor="test"), "demoted"),
        (lambda uid: user_changes.delete_user(uid, actor="test"), "deleted"),
    ],
)
def test_the_last_active_admin_can_be_neither_disabled_demoted_nor_deleted(instance, change, verb):
    admin = add("boss@example.com", role="admin")
    before = AuditEvent.select().count()
    with pytest.raises(Conflict) as caught:
        change(admin.id)
    assert verb in caught.value.message
    again = users.get_user(admin.id)
    assert (again.role, again.active) == ("admin", True)
    assert AuditEvent.select().count() == before


def test_an_admin_can_be_demoted_while_another_admin_is_active(instance):
    first = add("one@example.com", role="admin")
    second = add("two@example.com", role="admin")
    user_changes.update_user(first.id, {"role": "editor"}, actor="test")
    with pytest.raises(Conflict):
        user_changes.disable_user(second.id, actor="test")
    # A disabled admin does not count as the one that is left.
    user_changes.update_user(first.id, {"role": "admin"}, actor="test")
    user_changes.disable_user(first.id, actor="test")
    with pytest.raises(Conflict):
        user_changes.delete_user(second.id, actor="test")


def test_role_changes_disabling_and_password_changes_move_the_session_version_on(instance):
    user = add()
    version = user.session_version
    user_changes.update_user(user.id, {"role": "viewer"}, actor="test")
    user_changes.disable_user(user.id, actor="test")
    user_changes.enable_user(user.id, actor="test")
    user_changes.set_password(user.id, "another-long-password", actor="test")
    user_changes.sign_out_everywhere(user.id)
    assert users.get_user(user.id).session_version == version + 5
    user_changes.update_user(user.id, {"name": "Ann B."}, actor="test")
    assert users.get_user(user.id).session_version == version + 5


def test_an_update_with_an_unknown_field_or_bad_value_changes_nothing(instance):
    user = add()
    with pytest.raises(BadRequest):
        user_changes.update_user(user.id, {"name": "New", "password_hash": "x"}, actor="test")
    with pytest.raises(ValidationFailed) as caught:
        user_changes.update_user(user.id, {"name": "New", "active": "yes"}, actor="test")
    assert caught.value.fields == {"active": "Use true or false."}
    assert users.get_user(user.id).name == "Ann"


def test_changing_the_email_to_a_taken_one_is_a_conflict(instance):
    add("a@example.com")
    b = add("b@example.com")
    with pytest.raises(Conflict):
        user_changes.update_user(b.id, {"email": "A@example.com"}, actor="test")


def test_change_password_checks_the_current_one_and_the_policy(instance):
    user = add()
    with pytest.raises(ValidationFailed) as caught:
        user_changes.change_password(user.id, "wrong-current-password", "a-new-long-password")
    assert "current_password" in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:
        user_changes.change_password(user.id, "a-long-enough-password", "qwertyuiop")
    assert caught.value.fields == {"new_password": "This password is too common; choose one that is harder to guess."}
    user_changes.change_password(user.id, "a-long-enough-password", "a-new-long-password")


def test_deleting_a_user_keeps_their_audit_events_with_the_email(instance):
    admin = add("boss@example.com", role="admin")
    user = add()
    user_changes.update_user(user.id, {"name": "Ann B."}, actor=user)
    user_changes.delete_user(user.id, actor=admin)
    with pytest.raises(NotFound):
        users.get_user(user.id)
    event = AuditEvent.get(AuditEvent.action == "user.updated")
    assert (event.actor_id, event.actor) == (None, "ann@example.com")
    assert AuditEvent.get(AuditEvent.action == "user.deleted").actor == "boss@example.com"


def test_list_users_searches_email_and_name(instance):
    add("ann@example.com", name="Ann")
    add("bob@example.com", name="Robert Smith")
    assert [u.email for u in users.list_users(search="SMITH")] == ["bob@example.com"]
    assert [u.email for u in users.list_users(search="example")] == ["ann@example.com", "bob@example.com"]


def count_transactions(run):
    """Run ``run()`` and return how many top-level transactions it opened."""
    from appliance.storage.db import database

    begins = []
    original = database.obj.begin

    def counting(*args, **kwargs):
        begins.append(args)
        return original(*args, **kwargs)

    database.obj.begin = counting
    try:
        run()
    finally:
        del database.obj.begin
    return len(begins)


def test_fields_and_a_new_password_change_in_one_transaction(instance):
    from appliance.accounts import passwords

    user = add()
    begins = count_transactions(
        lambda: user_changes.update_user(
            user.id, {"name": "Ann B.", "role": "viewer"}, password="a-reset-long-password"
        )
    )
    assert begins == 1
    again = users.get_user(user.id)
    assert (again.name, again.role, again.must_change_password) == ("Ann B.", "viewer", True)
    assert passwords.verify_password(again.password_hash, "a-reset-long-password")
    actions = [e.action for e in AuditEvent.select().order_by(AuditEvent.id)][-2:]
    assert actions == ["user.role_changed", "user.password_reset"]


def test_a_refused_password_or_field_changes_neither_the_fields_nor_the_password(instance):
    from appliance.accounts import passwords

    boss = add("boss@example.com", role="admin")
    with pytest.raises(ValidationFailed) as caught:
        user_changes.update_user(boss.id, {"name": "Big Boss"}, password="short")
    assert caught.value.fields == {"password": "Use at least 10 characters."}
    with pytest.raises(Conflict):  # the last admin cannot be demoted: the password stays too
        user_changes.update_user(boss.id, {"role": "viewer"}, password="a-reset-long-password")
    again = users.get_user(boss.id)
    assert (again.name, again.role) == ("Ann", "admin")
    assert passwords.verify_password(again.password_hash, "a-long-enough-password")
    with pytest.raises(BadRequest):
        user_changes.update_user(boss.id, {"name": "X"}, must_change_password=True)


def test_a_role_granted_by_a_collection_cannot_be_removed(instance):
    from appliance.collections.definitions import create_collection, update_collection

    boss = add("boss@example.com", role="admin")
    create_role("clerk", "Clerk", actor="test")
    create_collection(
        {
            "name": "invoices",
            "label": "Invoices",
            "fields": [{"name": "title", "type": "text"}],
            "permissions": {"clerk": ["view"]},
        },
        boss,
    )
    with pytest.raises(Conflict) as caught:
        delete_role("clerk", actor="test")
    assert "invoices" in caught.value.message
    assert role_exists("clerk")
    update_collection("invoices", {"permissions": {}}, boss)
    delete_role("clerk", actor="test")
    assert not role_exists("clerk")
    with pytest.raises(NotFound):
        delete_role("clerk", actor="test")


def test_listing_users_by_an_unknown_role_is_refused(instance):
    add()
    with pytest.raises(BadRequest):
        list(users.list_users(role="nosuch"))
    assert [u.email for u in users.list_users(role="editor")] == ["ann@example.com"]


def test_a_wrong_current_password_is_audited_and_throttled_like_a_sign_in(instance):
    from appliance.accounts.throttle import ThrottleRules
    from appliance.errors import Throttled

    user = add()
    rules = ThrottleRules()
    for _ in range(5):
        with pytest.raises(ValidationFailed):
            user_changes.change_password(user.id, "wrong-current-password", "a-new-long-password", address="10.0.0.1")
    failed = AuditEvent.select().where(AuditEvent.action == "user.password_change_failed")
    assert failed.count() == 5 and all(e.actor == "ann@example.com" for e in failed)
    assert AuditEvent.select().where(AuditEvent.action == "sign_in.locked").count() == 1
    # Locked: even the right current password is refused now, and so is a sign-in.
    with pytest.raises(Throttled):
        user_changes.change_password(
            user.id, "a-long-enough-password", "a-new-long-password", address="10.0.0.1", rules=rules
        )
    from appliance.accounts.sign_in import sign_in

    with pytest.raises(Throttled):
        sign_in("ann@example.com", "a-long-enough-password", address="10.0.0.2", rules=rules)
