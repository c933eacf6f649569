"""``appliance backup ...`` and ``appliance jobs ...``: backups and scheduled jobs from the command line.

``backup create|list|verify|drill|restore`` and ``jobs list|run`` call the same
services as the API and the pages. ``jobs run`` runs the job in this process
with the same no-overlap guarantee as the server's scheduler (a per-job OS lock).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from appliance.backups.catalogue import describe_backup, list_backups, resolve_archive
from appliance.backups.restore import recover_if_idle, restore_backup
from appliance.backups.signing import FOREIGN_WARNING
from appliance.backups.verify import verify_backup
from appliance.cli.common import command, current_instance, fail, json_option, migrated_database, print_json
from appliance.clock import shown_time
from appliance.errors import Conflict
from appliance.jobs.builtin import drill_backup, take_backup
from appliance.jobs.definitions import current_settings, ensure_jobs, job_items, serialize_run
from appliance.jobs.runner import run_job
from appliance.storage.locks import is_locked
from appliance.text import format_bytes


def _backup_line(item: dict[str, Any]) -> str:
    problems = (item.get("verification") or {}).get("problems") or []
    why = f" ({problems[0]})" if problems else ""
    return f"{item['name']}  {item['created_at']}  {format_bytes(item['size']):>9}  {item['status']}{why}"


@click.group("backup")
def backup_group() -> None:
    """Make, list, verify and restore backups."""


@command(backup_group, "create")
@json_option
def backup_create(as_json: bool) -> None:
    """Write a backup now and verify it; exits non-zero when verification fails."""

    instance = current_instance()
    recover_if_idle(instance.paths)
    with migrated_database(instance):
        item = take_backup(instance, kind="manual", actor="cli")
    if as_json:
        print_json(item)
    else:
        click.echo(_backup_line(item))
        offsite = item["verification"].get("offsite")
        if offsite:
            click.echo(f"offsite copy: {'checked' if offsite['ok'] else 'FAILED: ' + str(offsite.get('error'))}")
    if not item["verified"]:
        click.echo(
            f"error: the backup failed verification and was kept aside in {instance.paths.backups_dir / 'failed'}",
            err=True,
        )
        sys.exit(1)


@command(backup_group, "list")
@json_option
def backup_list(as_json: bool) -> None:
    """List the backups in the backups folder, newest first, with their verification result."""

    items = list_backups(current_instance().paths)
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo("no backups yet")
    for item in items:
        click.echo(_backup_line(item) + _drill_note(item.get("drill")))


def _drill_note(drill: dict[str, Any] | None) -> str:
    if not drill:
        return ""
    return f"  drill {'passed' if drill['outcome'] == 'ok' else 'FAILED'} {drill['at']}"


ACCEPT_FOREIGN_HELP = (
    "Go on with an archive not signed by this instance (from another installation, or made or changed by "
    "someone else): it replaces every user, password and record with what it holds."
)


def _warn_foreign(accept_foreign: bool) -> None:
    if accept_foreign:
        click.echo(f"warning: --accept-foreign: {FOREIGN_WARNING}", err=True)


@command(backup_group, "verify")
@click.argument("archive")
@click.option("--accept-foreign", is_flag=True, help=ACCEPT_FOREIGN_HELP)
@json_option
def backup_verify(archive: str, accept_foreign: bool, as_json: bool) -> None:
    """Check ARCHIVE (a name in the backups folder, or a path): signature, checksums, integrity, row counts."""

    paths = current_instance().paths
    path = resolve_archive(paths, archive)
    # Under the backup lock (refused while a backup or restore runs); stored beside the archive when
    # it is in the backups folder. A full disk is an error, not a verdict on the archive.
    _warn_foreign(accept_foreign)
    result = verify_backup(paths, path, accept_foreign=accept_foreign)
    if as_json:
        print_json({"name": path.name, **result})
    elif result["ok"]:
        click.echo(f"{path.name}: verified ({result['members_checked']} members, integrity ok)")
    else:
        click.echo(f"{path.name}: FAILED")
        for problem in result["problems"]:
            click.echo(f"  - {problem}")
    if not result["ok"]:
        sys.exit(1)


@command(backup_group, "drill")
@click.argument("archive", required=False)
@json_option
def backup_drill(archive: str | None, as_json: bool) -> None:
    """Restore ARCHIVE (default: the newest verified backup) into a scratch folder and check it,
    without touching the live data; exits non-zero when the drill fails (an alert is raised then)."""

    instance = current_instance()
    path = resolve_archive(instance.paths, archive) if archive else None
    with migrated_database(instance):
        result = drill_backup(instance, path)
    if as_json:
        print_json(result)
    elif result["outcome"] == "ok":
        click.echo(f"{result['backup']}: drill passed in {result['duration_seconds']:.1f} s: {result['message']}")
    else:
        click.echo(f"{result['backup']}: drill FAILED")
        for problem in result["problems"]:
            click.echo(f"  - {problem}")
    if result["outcome"] != "ok":
        sys.exit(1)


@command(backup_group, "restore")
@click.argument("archive")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-safety-backup", is_flag=True, help="Do not back up the current state first.")
@click.option("--accept-foreign", is_flag=True, help=ACCEPT_FOREIGN_HELP)
@click.option(
    "--with-settings", is_flag=True, help="Bring back the settings (appliance.toml) too; by default they are kept."
)
@click.option(
    "--with-secrets",
    is_flag=True,
    help="With --with-settings and an archive of another instance: bring back its secret settings too.",
)
@json_option
def backup_restore(
    archive: str,
    yes: bool,
    no_safety_backup: bool,
    accept_foreign: bool,
    with_settings: bool,
    with_secrets: bool,
    as_json: bool,
) -> None:
    """Replace the database and files with those of ARCHIVE; refused while a server runs on this home.

    The settings (appliance.toml) are kept unless --with-settings."""

    if with_secrets and not with_settings:
        raise click.UsageError("--with-secrets goes with --with-settings")
    paths = current_instance().paths
    path = resolve_archive(paths, archive)
    # Checked before asking, so nobody answers a question whose answer is then refused.
    # (restore_backup checks again under the lock: a server may start in between.)
    if is_locked(paths.server_lock):
        raise Conflict("a server is running on this home: stop it first, then restore")
    if not yes:
        made = shown_time(describe_backup(path)["created_at"]) or "the time of the backup"
        click.echo(
            f"Users, settings kept in the database, job schedules and records go back to how they were at {made}."
        )
        click.echo(
            "The settings file (appliance.toml) is replaced by the archive's."
            if with_settings
            else "The settings file (appliance.toml) is kept as it is (add --with-settings to bring it back too)."
        )
        try:
            agreed = click.confirm(f"Replace the data of {paths.home} with {path.name}?", default=False)
        except click.Abort:
            if sys.stdin is not None and sys.stdin.isatty():
                fail("not restored; nothing was changed")
            fail(
                "not restored: there was no answer to the confirmation (no terminal); add --yes to restore without asking"
            )
        if not agreed:
            fail("not restored; nothing was changed")
    _warn_foreign(accept_foreign)
    outcome = restore_backup(
        paths,
        path,
        safety_backup=not no_safety_backup,
        accept_foreign=accept_foreign,
        with_settings=with_settings,
        with_secrets=with_secrets,
    )
    if as_json:
        print_json(outcome)
        return
    click.echo(f"restored {outcome['restored']}")
    if outcome["safety_backup"]:
        click.echo(f"the state before the restore is in {outcome['safety_backup']}")
    for name in outcome["migrations_applied"]:
        click.echo(f"applied migration {name}")
    if outcome["settings"] == "kept":
        click.echo("the settings (appliance.toml) were kept as they were")
    else:
        click.echo(f"the settings (appliance.toml) were restored from {outcome['restored']}")
    if outcome["secrets_left_out"]:
        click.echo(
            "left out the secret settings "
            + ", ".join(outcome["secrets_left_out"])
            + " (the archive comes from another instance; their current values are kept): "
            "add --with-secrets to bring them back too"
        )


@click.group("jobs")
def jobs_group() -> None:
    """List scheduled jobs and run one now."""


@command(jobs_group, "list")
@json_option
def jobs_list(as_json: bool) -> None:
    """List the jobs with their schedule, last and next run."""

    instance = current_instance()
    with migrated_database(instance):
        ensure_jobs(current_settings(instance))
        items = job_items()
    if as_json:
        print_json(items)
        return
    for item in items:
        state = "enabled" if item["enabled"] else "disabled"
        click.echo(
            f"{item['name']:<16} {item['schedule']:<14} {state:<9} last: {item['last_outcome'] or '-':<8} "
            f"next: {item['next_run'] or '-'}"
        )


@command(jobs_group, "run")
@click.argument("name")
@json_option
def jobs_run(name: str, as_json: bool) -> None:
    """Run job NAME here and now (refused while a run of it goes on); exits non-zero when it fails."""

    instance = current_instance()
    with migrated_database(instance):
        ensure_jobs(current_settings(instance))
        run = run_job(instance, name, trigger="cli")
        item = serialize_run(run)
    if as_json:
        print_json(item)
    else:
        click.echo(f"{name}: {item['outcome']} in {item['duration_seconds']:.1f} s: {item['message']}")
    if item["outcome"] != "ok":
        sys.exit(1)
