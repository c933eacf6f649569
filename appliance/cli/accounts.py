"""``appliance users ...`` and ``appliance tokens ...``: accounts from the command line.

The same services as the pages and the API; the actor of their audit events
is ``cli``. A password comes from ``--password-stdin`` (one line) or an
interactive prompt, never from the command line where ``ps`` would show it.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from appliance.accounts import passwords
from appliance.accounts.tokens import create_token, list_tokens, revoke_token, serialize_token
from appliance.accounts.totp import reset_totp
from appliance.accounts.user_changes import create_user, disable_user, enable_user, set_password, unlock_user
from appliance.accounts.users import get_user_by_email, list_users, serialize_user
from appliance.cli.common import command, current_home, current_instance, json_option, migrated_database, print_json
from appliance.errors import BadRequest, ValidationFailed

ACTOR = "cli"


@contextmanager
def _accounts_database() -> Iterator[None]:
    """Open the instance's database (migrated) and the password hasher for one command."""
    instance = current_instance()
    passwords.configure_from_settings(instance.settings)
    with migrated_database(instance):
        yield


def _read_password(from_stdin: bool, confirm: bool = True) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise BadRequest("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise BadRequest("no terminal to ask for the password; pass it on standard input with --password-stdin")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


def _fields_message(exc: ValidationFailed) -> str:
    return "; ".join(f"{name}: {message}" for name, message in exc.fields.items()) or exc.message


@click.group("users")
def users_group() -> None:
    """Add, list, disable, enable and unlock users; set their passwords; reset their two-factor sign-in."""


@command(users_group, "create")
@click.argument("email")
@click.option("--role", required=True, help="admin, editor, viewer or a custom role.")
@click.option("--name", default=None, help="Display name (default: the part of the email before @).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
def users_create(email: str, role: str, name: str | None, password_stdin: bool, as_json: bool) -> None:
    """Add a user (with --role admin on a new instance, this replaces the set-up link)."""
    with _accounts_database():
        password = _read_password(password_stdin)
        try:
            user = create_user(email, name or email.partition("@")[0], role, password, actor=ACTOR)
        except ValidationFailed as exc:
            raise ValidationFailed(exc.fields, message=_fields_message(exc)) from None
        if as_json:
            print_json(serialize_user(user))
        else:
            click.echo(f"created user {user.email} (id {user.id}, role {user.role})")


def first_admin_command() -> str:
    """The command that creates the first admin of the current home (what to do when there are no users)."""

    return f"appliance users create YOU@EXAMPLE.COM --role admin --home {shlex.quote(str(current_home()))}"


@command(users_group, "list")
@json_option
def users_list(as_json: bool) -> None:
    """List every user."""
    with _accounts_database():
        users = [serialize_user(u) for u in list_users()]
    if as_json:
        print_json(users)
        return
    if not users:
        click.echo(f"no users yet; create the first admin with: {first_admin_command()}")
    for u in users:
        state = "active" if u["active"] else "disabled"
        click.echo(f"{u['id']:>4}  {u['email']:<40} {u['role']:<10} {state:<8} {u['name']}")


@command(users_group, "set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--must-change", is_flag=True, help="Make the user choose a new password at the next sign-in.")
def users_set_password(email: str, password_stdin: bool, must_change: bool) -> None:
    """Set a user's password (ends their sessions)."""
    with _accounts_database():
        user = get_user_by_email(email)
        password = _read_password(password_stdin)
        try:
            set_password(user.id, password, actor=ACTOR, must_change=must_change)
        except ValidationFailed as exc:
            raise ValidationFailed(exc.fields, message=_fields_message(exc)) from None
    click.echo(f"password of {user.email} set; their sessions have ended")


@command(users_group, "disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Stop a user signing in and end their sessions."""
    with _accounts_database():
        user = disable_user(get_user_by_email(email).id, actor=ACTOR)
    click.echo(f"disabled {user.email}")


@command(users_group, "enable")
@click.argument("email")
def users_enable(email: str) -> None:
    """Let a disabled user sign in again."""
    with _accounts_database():
        user = enable_user(get_user_by_email(email).id, actor=ACTOR)
    click.echo(f"enabled {user.email}")


@command(users_group, "unlock")
@click.argument("email")
@json_option
def users_unlock(email: str, as_json: bool) -> None:
    """Lift a user's sign-in lock-out (after too many failed sign-ins) and forget their failures."""
    with _accounts_database():
        user = unlock_user(get_user_by_email(email).id, actor=ACTOR)
        body = serialize_user(user)
    if as_json:
        print_json(body)
    else:
        click.echo(f"unlocked {user.email}; they may sign in again")


@command(users_group, "reset-2fa")
@click.argument("email")
@json_option
def users_reset_2fa(email: str, as_json: bool) -> None:
    """Turn a user's two-factor sign-in off (a lost phone without recovery codes); they set it up again."""
    with _accounts_database():
        user = reset_totp(get_user_by_email(email).id, actor=ACTOR)
        body = {**serialize_user(user), "totp": False}
    if as_json:
        print_json(body)
    else:
        click.echo(f"two-factor sign-in of {user.email} is off; they sign in with their password and set it up again")


@click.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke API tokens."""


@command(tokens_group, "create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for, e.g. the script that uses it.")
@click.option("--scope", type=click.Choice(["read", "write"]), default="write", show_default=True)
@click.option("--expires-days", type=int, default=None, help="Days until it expires (default: the setting).")
@click.option("--mcp", is_flag=True, help="Usable by AI agents at /mcp (and through 'appliance mcp').")
@click.option("--collections", default=None, help="With --mcp: only these collections (comma-separated).")
@click.option("--tools", default=None, help="With --mcp: only these tools (comma-separated).")
@click.option("--approval", is_flag=True, help="With --mcp: the agent's writes wait for an admin's approval.")
@json_option
def tokens_create(
    email: str,
    name: str,
    scope: str,
    expires_days: int | None,
    mcp: bool,
    collections: str | None,
    tools: str | None,
    approval: bool,
    as_json: bool,
) -> None:
    """Print a new API token for the user; it is shown this once only."""
    with _accounts_database():
        days = expires_days if expires_days is not None else current_instance().settings.token_default_days
        user = get_user_by_email(email)
        try:
            token, secret = create_token(
                user.id,
                name,
                scope=scope,
                expires_days=days,
                mcp=mcp,
                mcp_tools=tools,
                mcp_collections=collections,
                mcp_approval=approval,
                actor=ACTOR,
            )
        except ValidationFailed as exc:
            raise ValidationFailed(exc.fields, message=_fields_message(exc)) from None
        body = {**serialize_token(token), "token": secret}
    if as_json:
        print_json(body)
        return
    click.echo(secret)
    click.echo(
        f"token {body['id']} ({scope}) for {user.email}, expires {body['expires_at']}; it is not shown again",
        err=True,
    )


@command(tokens_group, "list")
@click.option("--user", "email", default=None, help="Only this user's tokens.")
@json_option
def tokens_list(email: str | None, as_json: bool) -> None:
    """List API tokens (never their secrets)."""
    with _accounts_database():
        user_id = get_user_by_email(email).id if email else None
        tokens = [serialize_token(t) for t in list_tokens(user_id)]
    if as_json:
        print_json(tokens)
        return
    if not tokens:
        click.echo("no tokens")
    for t in tokens:
        used = t["last_used_at"] or "never used"
        click.echo(
            f"{t['id']:>4}  {t['prefix']}…  {t['scope']:<5} {t['user']:<32} {t['name']:<24} "
            f"expires {t['expires_at']}  last used {used}"
        )


@command(tokens_group, "revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token at once, by its id (see `tokens list`)."""
    with _accounts_database():
        revoke_token(token_id, actor=ACTOR)
    click.echo(f"revoked token {token_id}")
