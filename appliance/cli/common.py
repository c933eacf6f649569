"""What every ``appliance`` subcommand shares: ``--home``, ``--json``, the opened instance, one-line failures."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
import peewee

from appliance.config.home import Instance, open_instance, resolve_home
from appliance.errors import ApplianceError, MigrationRequired
from appliance.storage.db import describe_database_error, open_database
from appliance.storage.migrate import pending_migrations


def _remember_home(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.meta["appliance.home"] = value
    return value


home_option = click.option(
    "--home",
    type=click.Path(file_okay=False),
    expose_value=False,
    is_eager=True,
    callback=_remember_home,
    help="Instance home folder (else APPLIANCE_HOME, else the platform's user data folder).",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def current_home() -> Path:
    """The home chosen by ``--home`` (on the group or the command), ``APPLIANCE_HOME`` or the default."""
    ctx = click.get_current_context()
    return resolve_home(ctx.meta.get("appliance.home"))


def current_instance() -> Instance:
    """The opened instance of :func:`current_home`; a bad home or setting becomes a one-line failure."""
    return open_instance(current_home())


@contextmanager
def migrated_database(instance: Instance) -> Iterator[None]:
    """Open ``instance``'s database for one command; :class:`MigrationRequired` (naming the command that
    fixes it) when migrations are pending."""
    db = open_database(instance)
    with db.connection_context():
        pending = pending_migrations(db)
        if pending:
            raise MigrationRequired(
                f"the database needs {len(pending)} migration(s); run `appliance migrate --home {instance.home}` first"
            )
        yield


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line reason to stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def reports_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an :class:`ApplianceError` into a one-line reason and its exit status (1 for most)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ApplianceError as exc:
            fail(exc.message, exc.exit_status)
        except peewee.DatabaseError as exc:
            fail(f"cannot use the database: {describe_database_error(exc)}")

    return wrapper


def command(group: click.Group, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """Declare a subcommand of ``group`` that takes ``--home`` and reports errors in one line."""

    def decorate(func: Callable[..., Any]) -> click.Command:
        declared: click.Command = group.command(*args, **kwargs)(home_option(reports_errors(func)))
        return declared

    return decorate


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
