"""The settings file in backups: every archive holds it (checksummed, secrets named); a restore keeps the
current settings unless asked, leaves a foreign archive's secrets out unless asked, and refuses a settings
file this version cannot read before anything changes."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import tomllib
import zipfile
from pathlib import Path

import pytest

from appliance.backups.archive import create_backup
from appliance.backups.format import MANIFEST, SETTINGS_MEMBER
from appliance.backups.restore import restore_backup
from appliance.backups.verify import verify_archive
from appliance.config.home import Paths, init_home
from appliance.config.settings import load_settings, write_settings
from appliance.errors import BadRequest


def settings_of(home: Path) -> dict:
    return tomllib.loads((home / "appliance.toml").read_text())


def marker(home: Path) -> str | None:
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    try:
        row = con.execute("SELECT value FROM runtime_setting WHERE key='marker'").fetchone()
    finally:
        con.close()
    return row[0] if row else None


def set_marker(home: Path, value: str) -> None:
    con = sqlite3.connect(home / "db" / "appliance.sqlite3", timeout=30)
    with con:
        con.execute(
            "INSERT OR REPLACE INTO runtime_setting (key, value, updated_at) VALUES ('marker', ?, '2026-01-01')",
            (value,),
        )
    con.close()


@pytest.fixture
def archived_home(home: Path) -> tuple[Path, Path]:
    """A home whose archive holds port 8801 and SMTP password 'then'; the live settings are now 8802 / 'now'."""
    write_settings(home / "appliance.toml", {"port": 8801, "smtp_password": "then", "smtp_host": "mail.then"})
    set_marker(home, "then")
    archive = create_backup(Paths(home)).path
    write_settings(home / "appliance.toml", {"port": 8802, "smtp_password": "now", "smtp_host": "mail.now"})
    set_marker(home, "now")
    return home, archive


def test_every_archive_holds_the_settings_file_listed_with_its_checksum_and_its_secret_names(archived_home, tmp_path):
    home, archive = archived_home
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read(MANIFEST))
        data = zf.read(SETTINGS_MEMBER)
    assert tomllib.loads(data.decode())["port"] == 8801
    assert manifest["members"][SETTINGS_MEMBER] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert manifest["settings"] == {"member": SETTINGS_MEMBER, "secrets": ["smtp_password"]}
    assert verify_archive(archive, tmp_path, paths=Paths(home))["ok"]

    # The settings file is covered like any member: changed after the backup, the archive is refused.
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(changed, "w") as dst:
        dst.comment = src.comment
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(info.filename, body.replace(b"8801", b"8809") if info.filename == SETTINGS_MEMBER else body)
    result = verify_archive(changed, tmp_path, paths=Paths(home), accept_foreign=True)
    assert not result["ok"] and f"member {SETTINGS_MEMBER} does not match its checksum" in result["problems"][0]


def test_a_restore_keeps_the_current_settings_unless_asked_to_bring_them_back(archived_home):
    home, archive = archived_home
    outcome = restore_backup(Paths(home), archive)
    assert marker(home) == "then"
    assert outcome["settings"] == "kept" and outcome["secrets_left_out"] == []
    assert settings_of(home)["port"] == 8802 and settings_of(home)["smtp_password"] == "now"

    outcome = restore_backup(Paths(home), archive, with_settings=True)
    assert outcome["settings"] == "restored"
    assert settings_of(home)["port"] == 8801 and settings_of(home)["smtp_password"] == "then"
    assert stat.S_IMODE((home / "appliance.toml").stat().st_mode) == 0o600
    assert load_settings(home / "appliance.toml", environ={}).smtp_host == "mail.then"
    assert not (home / ".restore").exists()


def test_a_foreign_archives_secrets_are_left_out_unless_asked_for(home, tmp_path):
    other = tmp_path / "other-home"
    init_home(other)  # its own secret.key: its archives are foreign here
    shutil.copyfile(home / "db" / "appliance.sqlite3", other / "db" / "appliance.sqlite3")
    write_settings(other / "appliance.toml", {"smtp_host": "mail.theirs", "smtp_password": "theirs"})
    theirs = create_backup(Paths(other)).path
    write_settings(home / "appliance.toml", {"smtp_host": "mail.ours", "smtp_password": "ours", "port": 8803})

    outcome = restore_backup(Paths(home), theirs, accept_foreign=True, with_settings=True)
    assert outcome["secrets_left_out"] == ["smtp_password"]
    restored = settings_of(home)
    assert restored["smtp_host"] == "mail.theirs"
    assert restored["smtp_password"] == "ours", "the current secret is kept"
    assert "port" not in restored, "the archive's settings file, not a merge with the current one"

    outcome = restore_backup(Paths(home), theirs, accept_foreign=True, with_settings=True, with_secrets=True)
    assert outcome["secrets_left_out"] == []
    assert settings_of(home)["smtp_password"] == "theirs"


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ('port = "eight"\n', "port"),
        ("not_a_setting_here = 1\n", "unknown setting 'not_a_setting_here'"),
        ("port = [unclosed\n", "is not valid TOML"),
    ],
)
def test_an_archived_settings_file_that_does_not_parse_is_refused_and_nothing_changes(home, broken, reason):
    (home / "appliance.toml").write_text(broken)
    set_marker(home, "then")
    archive = create_backup(Paths(home)).path
    (home / "appliance.toml").write_text("port = 8804\n")
    set_marker(home, "now")
    before = sorted(p.name for p in (home / "backups").iterdir())

    with pytest.raises(BadRequest, match="settings") as refused:
        restore_backup(Paths(home), archive, with_settings=True)
    assert reason in refused.value.message and "nothing was changed" in refused.value.message
    assert marker(home) == "now" and (home / "appliance.toml").read_text() == "port = 8804\n"
    assert sorted(p.name for p in (home / "backups").iterdir()) == before, "not even a safety backup"
    assert not (home / ".restore").exists()

    restore_backup(Paths(home), archive)  # without the settings the archive restores
    assert marker(home) == "then" and (home / "appliance.toml").read_text() == "port = 8804\n"
