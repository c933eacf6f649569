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
