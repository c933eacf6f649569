"""``DATABASE_URL`` selects PostgreSQL: migrations apply there and a real server is ready on it.

The test starts its own PostgreSQL server (Debian's ``postgresql`` package:
``initdb`` and ``pg_ctl``) in a temporary folder, listening on 127.0.0.1 on a
free port with its unix socket in that folder. As root (CI) the server runs as
the ``postgres`` user through ``runuser``. Each test gets a fresh database.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest

from appliance.storage.migrate import known_migrations
from tests.conftest import clean_env, run_cli, start_server

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(os.name != "posix", reason="the test server needs POSIX")]

PASSWORD = "pg-s3cret-not-for-logs"


def _pg_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(os.path.realpath(initdb)).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    port: int
    socket_dir: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def admin(self, dbname: str = "postgres"):
        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = True
        return conn

    def new_database(self) -> str:
        """Create an empty database owned by the 'office' role; return its URL (with the password)."""
        name = f"appliance_{next(self._names)}"
        conn = self.admin()
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} OWNER office")
        conn.close()
        return f"postgresql://office:{PASSWORD}@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = _pg_bin_dir()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed; `make test` installs them")
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root; run the server as the package's postgres user.
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="appliance-pg-"))
    data, sock_dir = base / "data", base / "sock"
    sock_dir.mkdir()
    if as_postgres:
        for path in (base, sock_dir):
            os.chown(path, pg_user.pw_uid, pg_user.pw_gid)
    port = _free_port()
    started = False
    try:
        subprocess.run(
            [
                *as_postgres,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=base,
        )
        options = f"-p {port} -h 127.0.0.1 -k {sock_dir} -c fsync=off -c full_page_writes=off"
        pg_ctl = [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data)]
        subprocess.run(
            [*pg_ctl, "-l", str(base / "log"), "-o", options, "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
            timeout=90,
            cwd=base,
        )
        started = True
        server = PostgresServer(port, sock_dir)
        conn = server.admin()
        with conn.cursor() as cur:
            cur.execute("CREATE ROLE office LOGIN PASSWORD %s", (PASSWORD,))
        conn.close()
        yield server
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        raise RuntimeError(f"starting PostgreSQL failed: {exc.stderr!r} {log}") from None
    finally:
        if started:
            subprocess.run(
                [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
                cwd=base,
            )
        shutil.rmtree(base, ignore_errors=True)


def _tables(url_conn) -> set[str]:
    with url_conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cur.fetchall()}


def test_migrate_applies_every_migration_to_the_database_url(postgres: PostgresServer, home: Path) -> None:
    url = postgres.new_database()
    result = run_cli("migrate", "--json", home=home, env=clean_env(DATABASE_URL=url))
    assert result.returncode == 0, result.stdout + result.stderr
    shipped = [m.name for m in known_migrations()]
    report = json.loads(result.stdout)
    assert report["applied"] == shipped
    assert report["schema_version"] == max(m.idx for m in known_migrations())

    conn = postgres.admin(url.rsplit("/", 1)[1])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM schema_migration ORDER BY name")
            assert [row[0] for row in cur.fetchall()] == shipped
        assert {"schema_migration", "runtime_setting"} <= _tables(conn)
    finally:
        conn.close()

    again = run_cli("migrate", home=home, env=clean_env(DATABASE_URL=url))
    assert again.returncode == 0
    assert "nothing to apply" in again.stdout
    assert PASSWORD not in result.stdout + result.stderr + again.stdout + again.stderr


def test_a_real_server_on_postgresql_answers_readyz(postgres: PostgresServer, home: Path) -> None:
    url = postgres.new_database()
    server = start_server(home, workers=1, env={"DATABASE_URL": url})
    try:
        response = server.get("/readyz")
        assert response.status_code == 200
        assert response.json()["status"] == "ready"
        assert server.get("/healthz").status_code == 200
    finally:
        assert server.stop() == 0
    # The server migrated the empty database on start (migrate_on_start).
    conn = postgres.admin(url.rsplit("/", 1)[1])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM schema_migration")
            assert cur.fetchone()[0] == len(known_migrations())
    finally:
        conn.close()


def test_doctor_checks_the_postgresql_database_without_printing_the_password(
    postgres: PostgresServer, home: Path
) -> None:
    url = postgres.new_database()
    env = clean_env(DATABASE_URL=url, APPLIANCE_PORT=str(_free_port()))
    before = run_cli("doctor", home=home, env=env)
    assert before.returncode == 1
    assert "pending migration(s)" in before.stdout
    assert run_cli("migrate", home=home, env=env).returncode == 0
    after = run_cli("doctor", home=home, env=env)
    assert after.returncode == 0, after.stdout
    assert f"connected to postgresql://office:***@127.0.0.1:{postgres.port}/" in after.stdout
    assert PASSWORD not in before.stdout + before.stderr + after.stdout + after.stderr
