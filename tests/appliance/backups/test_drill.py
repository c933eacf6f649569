"""Restore drills: a good backup passes without touching the live home, a damaged one fails loudly,
a drill never overlaps a backup, and ``appliance backup drill|list`` show the outcome."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from appliance.backups.archive import create_backup
from appliance.backups.catalogue import exclusive_operation, last_restore_drill, list_backups
from appliance.backups.drill import run_restore_drill
from appliance.backups.format import DB_MEMBER, DRILL_SUFFIX, VERIFY_SUFFIX
from appliance.config.settings import write_settings
from appliance.jobs.runner import run_job
from appliance.storage.db import database
from appliance.storage.models import Alert, JobRun
from tests.appliance.backup_helpers import init_home_one_migration_behind, store_file
from tests.conftest import run_cli
from tests.mailbox import mailbox  # noqa: F401 - the fixture


def live_state(home: Path, parts: tuple[str, ...] = ("db", "files")) -> dict[str, str]:
    """Every file of the live db/ and files/ folders (or of ``parts``) with its checksum."""
    found = {}
    for part in parts:
        for path in sorted((home / part).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def scratch_left(home: Path) -> list[str]:
    return [p.name for p in (home / "backups").iterdir() if p.name.startswith(".")]


def corrupt_database_member(archive: Path) -> None:
    """Flip bytes in the middle of the database member's stored data; the manifest, its checksum in the
    zip comment and the verification file beside the archive are left as they were."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(DB_MEMBER)
    data = bytearray(archive.read_bytes())
    name_length = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    middle = start + info.compress_size // 2
    for offset in range(middle, middle + 16):
        data[offset] ^= 0xFF
    archive.write_bytes(bytes(data))


def test_a_drill_of_a_good_backup_passes_and_leaves_the_live_home_and_the_scratch_area_clean(instance):
    home = instance.home
    store_file(home, b"signed contract")
    backup = create_backup(instance.paths)
    assert backup.verified
    before = live_state(home)
    assert any(name.startswith("files/") for name in before)

    result = run_restore_drill(instance.paths)

    assert result["outcome"] == "ok", result["problems"]
    assert result["backup"] == backup.path.name and result["problems"] == []
    assert result["files_checked"] == 1 and result["tables_checked"] > 5
    assert "integrity ok" in result["message"]
    assert live_state(home) == before, "the live db/ and files/ are untouched"
    assert scratch_left(home) == [], "the scratch home is removed"
    stored = json.loads(backup.path.with_name(backup.path.name + DRILL_SUFFIX).read_text())
    assert stored["outcome"] == "ok" and stored["at"] == result["at"]
    [item] = list_backups(instance.paths)
    expected = {key: result[key] for key in ("at", "backup", "outcome", "message", "duration_seconds")}
    assert item["drill"] == expected and item["verified"]
    assert last_restore_drill(instance.paths) == expected


def test_a_drill_of_a_backup_corrupted_after_verification_fails_alerts_and_mails_the_admins(
    instance,
    personas,
    mailbox,  # noqa: F811
):
    write_settings(instance.home / "appliance.toml", mailbox.settings())
    backup = create_backup(instance.paths)
    assert backup.verified
    corrupt_database_member(backup.path)
    store_file(instance.home, b"an invoice")
    before = live_state(instance.home, ("files",))  # the job run and the alert are written to the live db

    with database.connection_context():
        run = run_job(instance, "restore_drill")
        alerts = list(Alert.select())

    assert run.outcome == "failed"
    assert backup.path.name in run.message and "drill" in run.message
    [alert] = alerts  # the drill's own alert, not a second generic "job failed" one
    assert alert.kind == "restore_drill_failed" and alert.job == "restore_drill" and alert.emailed
    [message] = mailbox.wait_for(1)
    subject = " ".join(str(message["Subject"]).split())  # a long subject is folded
    assert subject == f"[Office Appliance] Restore drill of {backup.path.name} failed"
    assert message["To"] == personas.admin.email
    assert DB_MEMBER in message.get_payload(decode=True).decode()
    drill = last_restore_drill(instance.paths)
    assert drill["outcome"] == "failed" and drill["backup"] == backup.path.name
    verification = json.loads(backup.path.with_name(backup.path.name + VERIFY_SUFFIX).read_text())
    assert verification["ok"] is False, "the listing no longer calls the damaged archive verified"
    assert list_backups(instance.paths)[0]["status"] == "failed"
    assert live_state(instance.home, ("files",)) == before
    assert scratch_left(instance.home) == []


def test_a_drill_never_runs_while_a_backup_holds_the_lock(instance):
    backup = create_backup(instance.paths)
    with database.connection_context():
        with exclusive_operation(instance.paths, "scheduled backup"):
            run = run_job(instance, "restore_drill")
        assert run.outcome == "skipped" and "busy" in run.message
        assert JobRun.select().where(JobRun.job == "restore_drill").count() == 1
        assert Alert.select().count() == 0
    assert not backup.path.with_name(backup.path.name + DRILL_SUFFIX).exists()
    assert last_restore_drill(instance.paths) is None


def test_a_drill_with_no_verified_backup_says_there_is_nothing_to_drill(instance):
    with database.connection_context():
        run = run_job(instance, "restore_drill")
    assert run.outcome == "ok" and run.message == "nothing to drill: there is no verified backup to drill yet"


def test_backup_drill_and_list_from_the_command_line(home):
    made = run_cli("backup", "create", "--json", home=home)
    assert made.returncode == 0, made.stderr
    name = json.loads(made.stdout)["name"]

    drilled = run_cli("backup", "drill", "--json", home=home)
    assert drilled.returncode == 0, drilled.stderr
    result = json.loads(drilled.stdout)
    assert result["backup"] == name and result["outcome"] == "ok"

    listed = run_cli("backup", "list", "--json", home=home)
    [item] = json.loads(listed.stdout)
    assert item["drill"]["outcome"] == "ok" and item["drill"]["at"] == result["at"]
    text = run_cli("backup", "list", home=home)
    assert f"drill passed {result['at']}" in text.stdout

    missing = run_cli("backup", "drill", "backup-19990101T000000Z.zip", home=home)
    assert missing.returncode == 1 and "there is no backup named" in missing.stderr
    assert scratch_left(home) == []


def test_a_drill_of_an_older_archive_migrates_it_and_still_matches_its_manifest(home, tmp_path):
    import shutil

    from appliance.config.home import Paths

    old_home = tmp_path / "old-home"
    names = init_home_one_migration_behind(old_home)
    older = create_backup(Paths(old_home)).path
    archive = home / "backups" / older.name
    shutil.copy(older, archive)

    result = run_restore_drill(Paths(home), archive)

    assert result["outcome"] == "ok", result["problems"]
    assert result["migrations_applied"] == [names[-1]]
    assert "1 migration(s) applied" in result["message"]
    assert json.loads(archive.with_name(archive.name + DRILL_SUFFIX).read_text())["outcome"] == "ok"
    assert scratch_left(home) == []
