"""The ``appliance`` command.

The core's own commands live here; the web and desktop faces add theirs
(``serve``, ``console``) through the ``appliance.commands`` entry-point group
declared in ``pyproject.toml``, so this module never imports them.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import click

from appliance import __version__
from appliance.actors import ADMIN_ROLE, Actor
from appliance.cli.accounts import first_admin_command, tokens_group, users_group
from appliance.cli.common import command, current_home, current_instance, home_option, json_option, print_json
from appliance.cli.doctor import run_checks
from appliance.cli.mcp_stdio import mcp_command
from appliance.cli.ops import backup_group, jobs_group
from appliance.config.home import init_home, open_instance
from appliance.errors import MigrationRequired
from appliance.records.demo import load_demo, load_starter_collections
from appliance.storage.db import open_database
from appliance.storage.migrate import apply_migrations, pending_migrations, schema_version
from appliance.storage.models import User


class ApplianceGroup(click.Group):
    """A group that also lists the commands other packages register as entry points."""

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group="appliance.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        ep = self._plugins().get(name)
        return ep.load() if ep is not None else None


@click.group(cls=ApplianceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@home_option
@click.version_option(__version__, prog_name="appliance")
def main() -> None:
    """Office Appliance: a self-hosted backend for a small office."""


@command(main, "init")
def init_command() -> None:
    """Create the instance home (settings, secret, database, migrations); safe to run twice."""
    home = current_home()
    created = init_home(home)
    instance = open_instance(home)
    db = open_database(instance)
    with db.connection_context():
        applied = apply_migrations(db)
    for item in created:
        click.echo(f"created {item}")
    for name in applied:
        click.echo(f"applied migration {name}")
    click.echo(f"home ready at {home}")


@command(main, "migrate")
@json_option
def migrate_command(as_json: bool) -> None:
    """Apply pending migrations."""
    instance = current_instance()
    db = open_database(instance)
    with db.connection_context():
        applied = apply_migrations(db)
        version = schema_version(db)
    if as_json:
        print_json({"applied": applied, "schema_version": version})
        return
    for name in applied:
        click.echo(f"applied migration {name}")
    click.echo(f"schema version {version}" + ("" if applied else " (nothing to apply)"))


@command(main, "doctor")
@json_option
def doctor_command(as_json: bool) -> None:
    """Check the instance and say what to fix; exits non-zero when a check fails."""
    results = run_checks(current_home())
    if as_json:
        print_json([r.to_dict() for r in results])
    else:
        for result in results:
            click.echo(result.render())
    failed = [r for r in results if r.status == "fail"]
    if failed:
        if not as_json:
            click.echo(f"{len(failed)} check(s) failed", err=True)
        sys.exit(1)


main.add_command(users_group)
main.add_command(tokens_group)
main.add_command(mcp_command)
main.add_command(backup_group)
main.add_command(jobs_group)


@command(main, "demo")
@click.option("--no-records", is_flag=True, help="Only the starter collections, without the demo records.")
@json_option
def demo_command(no_records: bool, as_json: bool) -> None:
    """Add the starter collections (customers, inventory, orders) and their demo records; safe to run twice.

    Collections that exist are kept as they are; demo records go in only while
    all three collections are empty, so nothing is ever duplicated.
    """
    instance = current_instance()
    db = open_database(instance)
    with db.connection_context():
        if pending_migrations(db):
            raise MigrationRequired(
                f"the database needs migrations; run `appliance migrate --home {instance.home}` first"
            )
        actor = Actor(None, ADMIN_ROLE, "cli")  # audited as "cli", like the other commands that change data
        result = (load_starter_collections if no_records else load_demo)(instance, actor=actor)
    if as_json:
        print_json(result.to_dict())
        return
    if result.created:
        click.echo(f"created collections {', '.join(result.created)}")
    if result.existing:
        click.echo(f"kept existing collections {', '.join(result.existing)}")
    if result.records:
        click.echo("added demo records: " + ", ".join(f"{n} {name}" for name, n in result.records.items()))
    if result.skipped_records:
        click.echo(result.skipped_records)
    with db.connection_context():
        has_users = User.select().exists()
    if not has_users:
        click.echo(f"no users yet; to sign in, create the first admin with: {first_admin_command()}")
