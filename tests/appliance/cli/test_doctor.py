"""``appliance doctor`` through the real CLI: a healthy home passes, each broken one fails with its fix."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from appliance.cli.doctor import CheckResult, redact_url
from tests.conftest import APPLIANCE, REPO, clean_env, run_cli, start_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def doctor(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``appliance doctor`` on ``home`` with the configured port set to a free one unless given."""
    env.setdefault("APPLIANCE_PORT", str(free_port()))
    return run_cli("doctor", *args, home=home, env=clean_env(**env))


def lines_with(result: subprocess.CompletedProcess, status: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"[{status.upper():4}]")]


def test_a_healthy_home_passes_every_check_with_exit_status_0(home: Path) -> None:
    result = doctor(home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines_with(result, "fail") == []
    for name in ("home", "secret.key", "settings", "database", "migrations", "port", "disk"):
        assert any(f"] {name}:" in line for line in lines_with(result, "ok")), name
    assert "integrity_check" in result.stdout


def test_json_output_lists_each_check_with_status_and_fix(home: Path) -> None:
    result = doctor(home, "--json")
    assert result.returncode == 0
    checks = json.loads(result.stdout)
    assert {c["status"] for c in checks} == {"ok"}
    assert all(set(c) == {"name", "status", "message", "fix"} for c in checks)


def test_a_missing_home_fails_and_says_to_run_init(tmp_path: Path) -> None:
    result = doctor(tmp_path / "nowhere")
    assert result.returncode == 1
    assert "does not exist" in result.stdout
    assert "appliance init --home" in result.stdout


def test_a_corrupt_database_file_fails_the_database_check(home: Path) -> None:
    db_file = home / "db" / "appliance.sqlite3"
    for extra in ("-wal", "-shm"):
        Path(f"{db_file}{extra}").unlink(missing_ok=True)
    db_file.write_bytes(b"this is not a database at all " * 200)
    result = doctor(home)
    assert result.returncode == 1
    [line] = [line for line in lines_with(result, "fail") if "] database:" in line]
    assert "cannot be read as a SQLite database" in line
    assert "restore" in line
    assert "1 check(s) failed" in result.stderr


def test_a_bad_setting_fails_naming_the_setting_without_a_traceback(home: Path) -> None:
    (home / "appliance.toml").write_text('port = "eighty"\n', encoding="utf-8")
    result = run_cli("doctor", home=home)
    assert result.returncode == 1
    [line] = [line for line in lines_with(result, "fail") if "] settings:" in line]
    assert "'port'" in line and "eighty" in line and "fix:" in line
    assert "Traceback" not in result.stderr
    assert any("not checked" in line for line in lines_with(result, "warn"))


def test_a_pending_migration_fails_and_says_to_migrate(home: Path) -> None:
    with sqlite3.connect(home / "db" / "appliance.sqlite3") as conn:
        conn.execute("DELETE FROM schema_migration WHERE name = '0001_settings'")
    conn.close()
    result = doctor(home)
    assert result.returncode == 1
    [line] = [line for line in lines_with(result, "fail") if "] migrations:" in line]
    assert "pending migration(s): 0001_settings" in line
    assert f"appliance migrate --home {home}" in line


def test_a_database_from_a_newer_version_fails_and_says_to_upgrade(home: Path) -> None:
    with sqlite3.connect(home / "db" / "appliance.sqlite3") as conn:
        conn.execute("INSERT INTO schema_migration (name, applied) VALUES ('9999_from_the_future', '2030-01-01')")
    conn.close()
    result = doctor(home)
    assert result.returncode == 1
    [line] = [line for line in lines_with(result, "fail") if "] migrations:" in line]
    assert "newer version (9999_from_the_future)" in line
    assert "upgrade" in line


def test_a_port_taken_by_another_process_fails_naming_the_holder(home: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        result = doctor(home, APPLIANCE_PORT=str(port))
    assert result.returncode == 1
    [line] = [line for line in lines_with(result, "fail") if "] port:" in line]
    assert f"port {port} on 127.0.0.1 is already in use by" in line
    assert f"(pid {os.getpid()})" in line
    assert "choose another port" in line


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_secret_key_readable_by_others_fails_with_the_chmod_fix(home: Path) -> None:
    (home / "secret.key").chmod(0o644)
    result = doctor(home)
    assert result.returncode == 1
    [line] = [line for line in lines_with(result, "fail") if "] secret.key:" in line]
    assert "mode 0644" in line
    assert f"chmod 600 {home / 'secret.key'}" in line
    assert (home / "secret.key").read_text().strip() not in result.stdout


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_an_unwritable_folder_fails_naming_it(home: Path) -> None:
    backups = home / "backups"
    backups.chmod(0o555)
    argv = [*APPLIANCE, "doctor", "--home", str(home)]
    if os.geteuid() == 0:
        # Root writes anywhere; drop every capability for the child so the folder's
        # mode is really enforced (user nobody cannot run this Python under /root).
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without util-linux setpriv to drop capabilities")
        argv = [setpriv, "--bounding-set=-all", "--inh-caps=-all", *argv]
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=clean_env(APPLIANCE_PORT=str(free_port())),
            cwd=REPO,
            timeout=60,
        )
    finally:
        backups.chmod(0o755)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = [line for line in lines_with(result, "fail") if "backups/" in line]
    assert "not writable by this user" in line
    assert "chown" in line
    assert not any("] folder files/" in line for line in lines_with(result, "fail"))


def test_an_unreachable_postgresql_url_fails_without_printing_its_password(home: Path) -> None:
    url = f"postgresql://office:hunter2secret@127.0.0.1:{free_port()}/office"
    result = doctor(home, APPLIANCE_DATABASE_URL=url)
    assert result.returncode == 1
    [line] = [line for line in lines_with(result, "fail") if "] database:" in line]
    assert "cannot connect to postgresql://office:***@127.0.0.1:" in line
    assert "hunter2secret" not in result.stdout + result.stderr


def test_a_stale_server_json_warns_but_does_not_fail(home: Path) -> None:
    (home / "run" / "server.json").write_text(json.dumps({"pid": 999999, "port": 1}))
    result = doctor(home)
    assert result.returncode == 0
    [line] = [line for line in lines_with(result, "warn") if "] run files:" in line]
    assert "stale" in line and "delete" in line


def test_the_port_held_by_this_homes_own_running_server_is_ok(home: Path) -> None:
    port = free_port()
    # click keeps the last --port, so this overrides start_server's --port 0.
    server = start_server(home, workers=1, extra_args=("--port", str(port)))
    try:
        result = doctor(home, APPLIANCE_PORT=str(port))
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout
    [line] = [line for line in lines_with(result, "ok") if "] port:" in line]
    assert f"served by this home's server (pid {server.process.pid})" in line
    assert lines_with(result, "warn") == []


def test_too_little_free_disk_fails_and_close_to_the_minimum_warns(home: Path) -> None:
    result = doctor(home, APPLIANCE_MIN_FREE_DISK_MB=str(10**12))
    assert result.returncode == 1
    [line] = [line for line in lines_with(result, "fail") if "] disk:" in line]
    assert "MB free" in line and "fix:" in line
    free_mb = shutil.disk_usage(home).free // (1024 * 1024)
    result = doctor(home, APPLIANCE_MIN_FREE_DISK_MB=str(free_mb * 2 // 3))
    assert result.returncode == 0
    [line] = [line for line in lines_with(result, "warn") if "] disk:" in line]
    assert "close to min_free_disk_mb" in line


def test_redact_url_hides_the_password_and_the_query() -> None:
    assert redact_url("postgresql://u:p4ss@db.example:5433/x?password=p4ss") == "postgresql://u:***@db.example:5433/x"
    assert redact_url("postgresql://db/x") == "postgresql://db/x"


def test_a_result_renders_its_fix_only_when_not_ok() -> None:
    assert "fix" not in CheckResult("x", "ok", "fine", "do y").render()
    assert CheckResult("x", "fail", "broken", "do y").render() == "[FAIL] x: broken -- fix: do y"


def test_a_home_path_with_uri_characters_checks_its_own_database(tmp_path: Path) -> None:
    home = tmp_path / "odd#name?x=1"
    assert run_cli("init", home=home).returncode == 0
    result = run_cli("doctor", home=home)
    [line] = [line for line in result.stdout.splitlines() if "] database:" in line]
    assert line.startswith("[OK  ]") and f"{home}/db/appliance.sqlite3 passes" in line
    assert not (tmp_path / "odd").exists()
