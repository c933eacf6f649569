"""``appliance users ...`` and ``appliance tokens ...`` in a child process, as a script would run them."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli


def test_users_create_list_disable_enable_and_set_password(home):
    created = run_cli(
        "users",
        "create",
        "Boss@Example.com",
        "--role",
        "admin",
        "--password-stdin",
        home=home,
        input="a-long-enough-password\n",
    )
    assert created.returncode == 0, created.stderr
    assert "boss@example.com" in created.stdout
    run_cli(
        "users",
        "create",
        "ann@example.com",
        "--role",
        "editor",
        "--name",
        "Ann",
        "--password-stdin",
        home=home,
        input="another-long-password\n",
    )
    listed = json.loads(run_cli("users", "list", "--json", home=home).stdout)
    assert [(u["email"], u["role"], u["active"]) for u in listed] == [
        ("ann@example.com", "editor", True),
        ("boss@example.com", "admin", True),
    ]
    assert all("password_hash" not in u for u in listed)
    assert run_cli("users", "disable", "ANN@example.com", home=home).returncode == 0
    assert run_cli("users", "enable", "ann@example.com", home=home).returncode == 0
    changed = run_cli(
        "users", "set-password", "ann@example.com", "--password-stdin", home=home, input="a-third-long-password\n"
    )
    assert changed.returncode == 0, changed.stderr


def test_users_create_says_which_rule_failed_in_one_line(home):
    result = run_cli(
        "users", "create", "ann@example.com", "--role", "editor", "--password-stdin", home=home, input="password123\n"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: password: This password is too common; choose one that is harder to guess."
    unknown = run_cli("users", "disable", "nobody@example.com", home=home)
    assert unknown.returncode == 1 and "nobody@example.com" in unknown.stderr


def test_without_a_terminal_the_password_must_come_on_stdin(home):
    result = run_cli("users", "create", "ann@example.com", "--role", "editor", home=home, input="")
    assert result.returncode == 1
    assert "--password-stdin" in result.stderr


def test_the_last_admin_cannot_be_disabled_from_the_cli(home):
    run_cli(
        "users",
        "create",
        "boss@example.com",
        "--role",
        "admin",
        "--password-stdin",
        home=home,
        input="a-long-enough-password\n",
    )
    result = run_cli("users", "disable", "boss@example.com", home=home)
    assert result.returncode == 1
    assert "last active admin" in result.stderr


def test_tokens_create_list_and_revoke(home):
    run_cli(
        "users",
        "create",
        "ann@example.com",
        "--role",
        "editor",
        "--password-stdin",
        home=home,
        input="a-long-enough-password\n",
    )
    made = run_cli(
        "tokens",
        "create",
        "ann@example.com",
        "--name",
        "backup script",
        "--scope",
        "read",
        "--expires-days",
        "7",
        home=home,
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("oat_") and "\n" not in secret
    listed = json.loads(run_cli("tokens", "list", "--json", home=home).stdout)
    assert [(t["name"], t["scope"], t["user"]) for t in listed] == [("backup script", "read", "ann@example.com")]
    assert secret not in json.dumps(listed)
    as_json = json.loads(run_cli("tokens", "create", "ann@example.com", "--name", "x", "--json", home=home).stdout)
    assert as_json["token"].startswith("oat_") and as_json["scope"] == "write"
    assert run_cli("tokens", "revoke", str(listed[0]["id"]), home=home).returncode == 0
    again = run_cli("tokens", "revoke", str(listed[0]["id"]), home=home)
    assert again.returncode == 1 and "No token" in again.stderr


def test_users_list_on_a_home_without_users_says_how_to_create_the_first_admin(home):
    listed = run_cli("users", "list", home=home)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == (
        f"no users yet; create the first admin with: appliance users create YOU@EXAMPLE.COM --role admin --home {home}"
    )


def test_users_unlock_lifts_a_lock_out_from_failed_sign_ins(instance, personas):
    from appliance.accounts.sign_in import sign_in
    from appliance.accounts.throttle import ThrottleRules
    from appliance.audit import list_events
    from appliance.errors import NotAuthenticated, Throttled

    rules = ThrottleRules.from_settings(instance.settings)
    editor = personas.editor
    for _ in range(rules.account_failures):
        with pytest.raises(NotAuthenticated):
            sign_in(editor.email, "wrong-password-x", address="10.0.0.9", rules=rules)
    with pytest.raises(Throttled):
        sign_in(editor.email, editor.password, address="10.0.0.9", rules=rules)

    unlocked = run_cli("users", "unlock", editor.email.upper(), "--json", home=instance.home)
    assert unlocked.returncode == 0, unlocked.stderr
    assert json.loads(unlocked.stdout)["email"] == editor.email
    assert sign_in(editor.email, editor.password, address="10.0.0.9", rules=rules).id == editor.id
    assert [event.actor for event in list_events(action="user.unlocked")] == ["cli"]
    plain = run_cli("users", "unlock", editor.email, home=instance.home)
    assert plain.returncode == 0 and f"unlocked {editor.email}" in plain.stdout
    unknown = run_cli("users", "unlock", "nobody@example.com", home=instance.home)
    assert unknown.returncode == 1 and "nobody@example.com" in unknown.stderr
