"""``appliance backup create|list|verify|restore`` as a script or a person uses them."""

from __future__ import annotations

import json
import sqlite3

from tests.conftest import run_cli, start_server


def test_backup_create_and_list_print_backup_items_as_json(home):
    made = run_cli("backup", "create", "--json", home=home)
    assert made.returncode == 0, made.stderr
    item = json.loads(made.stdout)
    assert item["verified"] is True and item["name"].startswith("backup-")
    listed = run_cli("backup", "list", "--json", home=home)
    assert [i["name"] for i in json.loads(listed.stdout)] == [item["name"]]
    text = run_cli("backup", "list", home=home)
    assert item["name"] in text.stdout and "verified" in text.stdout


def test_backup_verify_says_what_is_wrong_with_a_damaged_archive(home):
    name = json.loads(run_cli("backup", "create", "--json", home=home).stdout)["name"]
    ok = run_cli("backup", "verify", name, home=home)
    assert ok.returncode == 0 and "verified" in ok.stdout
    archive = home / "backups" / name
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0xFF
    archive.write_bytes(bytes(data))
    bad = run_cli("backup", "verify", name, home=home)
    assert bad.returncode == 1
    assert "FAILED" in bad.stdout
    listed = json.loads(run_cli("backup", "list", "--json", home=home).stdout)
    assert listed[0]["verified"] is False, "the new result is stored beside the archive"


def test_backup_restore_is_refused_while_a_server_runs_and_works_once_it_stopped(home):
    name = json.loads(run_cli("backup", "create", "--json", home=home).stdout)["name"]
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    with con:
        con.execute("INSERT INTO runtime_setting (key, value, updated_at) VALUES ('after', 'x', '2026-01-01')")
    con.close()
    server = start_server(home, workers=1)
    try:
        refused = run_cli("backup", "restore", name, "--yes", home=home)
    finally:
        server.stop()
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error: a server is running on this home")
    assert len(refused.stderr.strip().splitlines()) == 1
    done = run_cli("backup", "restore", name, "--yes", "--json", home=home)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["restored"] == name and outcome["safety_backup"].startswith("safety-")
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    assert con.execute("SELECT count(*) FROM runtime_setting WHERE key='after'").fetchone()[0] == 0
    con.close()


def test_backup_restore_of_an_unknown_archive_fails_in_one_line(home):
    answer = run_cli("backup", "restore", "backup-20200101T000000Z.zip", "--yes", home=home)
    assert answer.returncode == 1
    assert answer.stderr.strip() == f"error: there is no backup named backup-20200101T000000Z.zip in {home / 'backups'}"


# --- a full disk is a disk problem, never a verdict on the archive -------------------------------------

FILE_LIMIT = 1024 * 1024  # no file above 1 MB may be written: the database (about 200 KB) fits, the upload does not


def run_cli_with_full_disk(*args: str, home):
    """``appliance ARGS`` in a child whose every write past :data:`FILE_LIMIT` bytes in one file fails with
    EFBIG, as on a full disk (RLIMIT_FSIZE; Python ignores SIGXFSZ, so the write returns the error)."""
    import resource
    import subprocess

    from tests.conftest import APPLIANCE, REPO, clean_env

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))

    return subprocess.run(
        [*APPLIANCE, *args, "--home", str(home)],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        cwd=REPO,
    )


def store_big_file(home) -> str:
    """A 3 MB upload (zeros: a few KB once compressed in the archive) that a record refers to."""
    import hashlib

    content = b"\0" * (3 * 1024 * 1024)
    digest = hashlib.sha256(content).hexdigest()
    (home / "files" / digest[:2]).mkdir(parents=True, exist_ok=True)
    (home / "files" / digest[:2] / digest).write_bytes(content)
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    with con:
        con.execute(
            "INSERT INTO file_ref (sha256, collection, record_id, field) VALUES (?, 'notes', 1, 'scan')", (digest,)
        )
    con.close()
    return digest


def test_verification_streams_the_files_so_a_full_disk_does_not_stop_a_new_backups_verification(home):
    # Verifying reads each stored file through its checksum without unpacking it (only the database is
    # unpacked, for integrity_check): a disk with no room for a 3 MB file still verifies the backup.
    store_big_file(home)
    answer = run_cli_with_full_disk("backup", "create", home=home)
    assert answer.returncode == 0, answer.stderr
    [archive] = (home / "backups").glob("backup-*.zip")
    listed = json.loads(run_cli("backup", "list", "--json", home=home).stdout)
    assert [(i["name"], i["status"]) for i in listed] == [(archive.name, "verified")]


def test_verifying_again_with_a_full_disk_streams_the_files_too(home):
    store_big_file(home)
    name = json.loads(run_cli("backup", "create", "--json", home=home).stdout)["name"]
    answer = run_cli_with_full_disk("backup", "verify", name, home=home)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "verified" in answer.stdout


def test_a_disk_full_during_a_restore_says_so_and_changes_nothing(home):
    store_big_file(home)
    name = json.loads(run_cli("backup", "create", "--json", home=home).stdout)["name"]
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    with con:
        con.execute("INSERT INTO runtime_setting (key, value, updated_at) VALUES ('after', 'x', '2026-01-01')")
    con.close()
    answer = run_cli_with_full_disk("backup", "restore", name, "--yes", home=home)
    assert answer.returncode == 1
    assert answer.stderr.startswith("error: not enough disk space to restore"), answer.stderr
    con = sqlite3.connect(home / "db" / "appliance.sqlite3")
    assert con.execute("SELECT count(*) FROM runtime_setting WHERE key='after'").fetchone()[0] == 1
    con.close()
    assert not (home / ".restore").exists()


def test_backup_verify_is_refused_while_a_backup_runs(home):
    from appliance.backups.catalogue import exclusive_operation
    from appliance.config.home import Paths

    name = json.loads(run_cli("backup", "create", "--json", home=home).stdout)["name"]
    with exclusive_operation(Paths(home), "scheduled backup"):
        answer = run_cli("backup", "verify", name, home=home)
    assert answer.returncode == 1
    assert answer.stderr.startswith("error: busy: another backup or restore is running"), answer.stderr


def test_restore_checks_for_a_running_server_before_it_asks(home):
    from appliance.config.home import Paths
    from appliance.storage.locks import FileLock

    name = json.loads(run_cli("backup", "create", "--json", home=home).stdout)["name"]
    paths = Paths(home)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(paths.server_lock)  # what a running server holds
    assert lock.acquire()
    try:
        refused = run_cli("backup", "restore", name, input="y\n", home=home)
    finally:
        lock.release()
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: a server is running on this home: stop it first, then restore"
    assert "Replace the data" not in refused.stdout


def test_restore_with_no_answer_refuses_in_one_line_and_a_no_changes_nothing(home):
    name = json.loads(run_cli("backup", "create", "--json", home=home).stdout)["name"]
    silent = run_cli("backup", "restore", name, input="", home=home)
    assert silent.returncode == 1
    assert silent.stderr.strip().splitlines() == [
        "error: not restored: there was no answer to the confirmation (no terminal); add --yes to restore without asking"
    ]
    assert "Aborted!" not in silent.stderr + silent.stdout
    declined = run_cli("backup", "restore", name, input="n\n", home=home)
    assert declined.returncode == 1 and declined.stderr.strip() == "error: not restored; nothing was changed"
    assert not list((home / "backups").glob("safety-*"))


def test_the_restore_question_says_what_goes_back_to_the_backup_time(home):
    item = json.loads(run_cli("backup", "create", "--json", home=home).stdout)
    answer = run_cli("backup", "restore", item["name"], input="y\n", home=home)
    assert answer.returncode == 0, answer.stderr
    made = item["created_at"][:16].replace("T", " ")
    assert (
        f"Users, settings kept in the database, job schedules and records go back to how they were at {made} UTC."
        in answer.stdout
    )
    assert f"restored {item['name']}" in answer.stdout


def test_backup_list_shows_sizes_the_one_way_the_appliance_shows_them():
    from appliance.cli.ops import _backup_line

    item = {"name": "backup-20260105T020000Z.zip", "created_at": "2026-01-05T02:00:00Z", "status": "verified"}
    assert "512 bytes" in _backup_line(item | {"size": 512})
    assert "10 MB" in _backup_line(item | {"size": 10 * 1024 * 1024})
    assert "1.5 KB" in _backup_line(item | {"size": 1536})


def test_backup_restore_keeps_the_settings_unless_with_settings_and_says_which(home):
    from appliance.config.settings import write_settings

    write_settings(home / "appliance.toml", {"port": 8811})
    name = json.loads(run_cli("backup", "create", "--json", home=home).stdout)["name"]
    write_settings(home / "appliance.toml", {"port": 8812})
    kept = run_cli("backup", "restore", name, input="y\n", home=home)
    assert kept.returncode == 0, kept.stderr
    assert "The settings file (appliance.toml) is kept as it is (add --with-settings" in kept.stdout
    assert "the settings (appliance.toml) were kept as they were" in kept.stdout
    assert "port = 8812" in (home / "appliance.toml").read_text()
    back = run_cli("backup", "restore", name, "--yes", "--with-settings", home=home)
    assert back.returncode == 0, back.stderr
    assert f"the settings (appliance.toml) were restored from {name}" in back.stdout
    assert "port = 8811" in (home / "appliance.toml").read_text()
    alone = run_cli("backup", "restore", name, "--yes", "--with-secrets", home=home)
    assert alone.returncode != 0 and "--with-secrets goes with --with-settings" in alone.stderr


def test_backup_restore_of_a_foreign_archive_leaves_its_secrets_out_and_says_so(home, tmp_path):
    import shutil

    from appliance.backups.archive import create_backup
    from appliance.config.home import Paths, init_home
    from appliance.config.settings import write_settings

    other = tmp_path / "other-home"
    init_home(other)
    shutil.copyfile(home / "db" / "appliance.sqlite3", other / "db" / "appliance.sqlite3")
    write_settings(other / "appliance.toml", {"smtp_password": "theirs"})
    theirs = create_backup(Paths(other)).path
    write_settings(home / "appliance.toml", {"smtp_password": "ours"})
    args = ("backup", "restore", str(theirs), "--yes", "--accept-foreign", "--with-settings")
    answer = run_cli(*args, home=home)
    assert answer.returncode == 0, answer.stderr
    assert "left out the secret settings smtp_password" in answer.stdout and "--with-secrets" in answer.stdout
    assert 'smtp_password = "ours"' in (home / "appliance.toml").read_text()
    answer = run_cli(*args, "--with-secrets", home=home)
    assert answer.returncode == 0, answer.stderr
    assert "left out" not in answer.stdout
    assert 'smtp_password = "theirs"' in (home / "appliance.toml").read_text()
