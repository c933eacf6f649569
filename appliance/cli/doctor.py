"""``appliance doctor``: check an instance and say what to fix.

Each check is a small function returning :class:`CheckResult` items; a check
never raises and never prints a secret (the database URL is shown without its
password, settings marked ``secret`` never with their value). Checks that need
parsed settings are skipped, with a warning, while the settings are bad.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from appliance.cli.desktop_libs import install_command, missing_libraries, needs_xcb
from appliance.config.home import SUBDIRS, Instance, Paths
from appliance.config.registry import registry
from appliance.config.settings import load_settings
from appliance.errors import ApplianceError, SettingsError
from appliance.server.run_files import is_home_locked, read_server_info
from appliance.server.sockets import port_holder, probe_port
from appliance.storage.db import make_database
from appliance.storage.migrate import pending_migrations, unknown_migrations

STATUSES = ("ok", "warn", "fail")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``status`` is ``ok``, ``warn`` or ``fail``; ``fix`` says what to do."""

    name: str
    status: str
    message: str
    fix: str = ""

    def render(self) -> str:
        """One line for a person: status, check, finding and, when not ok, the fix."""
        line = f"[{self.status.upper():4}] {self.name}: {self.message}"
        if self.status != "ok" and self.fix:
            line += f" -- fix: {self.fix}"
        return line

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, "ok", message)


def _warn(name: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(name, "warn", message, fix)


def _fail(name: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(name, "fail", message, fix)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (query strings dropped: they may hold one too)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}{':***' if parts.password is not None else ''}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- the home ------------------------------------------------------------------


def check_home(home: Path) -> list[CheckResult]:
    """The home exists and was initialised (settings file, secret, db folder)."""
    name = "home"
    init = f"appliance init --home {home}"
    if not home.exists():
        return [_fail(name, f"{home} does not exist", f"run `{init}`")]
    if not home.is_dir():
        return [_fail(name, f"{home} is not a folder", "point --home at a folder")]
    paths = Paths(home)
    missing = [p.name for p in (paths.secret_key, paths.settings_file) if not p.exists()]
    missing += [f"{d}/" for d in SUBDIRS if not (home / d).is_dir()]
    if missing:
        return [_fail(name, f"{home} is not fully initialised (missing {', '.join(missing)})", f"run `{init}`")]
    return [_ok(name, f"{home} is initialised")]


def _probe_write(folder: Path) -> str | None:
    """Why ``folder`` cannot be written now, or ``None`` when a file could be created in it."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".doctor-probe.")
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(probe)
    return None


def check_folders(home: Path) -> list[CheckResult]:
    """The home and each sub-folder exist and the current user can write them."""
    results = []
    for folder in [home, *(home / name for name in SUBDIRS)]:
        label = "home folder" if folder == home else f"folder {folder.name}/"
        if not folder.is_dir():
            results.append(_fail(label, f"{folder} is missing", f"run `appliance init --home {home}` to create it"))
            continue
        why = _probe_write(folder)
        if why is not None:
            results.append(
                _fail(
                    label,
                    f"{folder} is not writable by this user ({why})",
                    f"give the user running the appliance write access, e.g. `chown -R <user> {folder}`",
                )
            )
        else:
            results.append(_ok(label, f"{folder} is writable"))
    return results


def check_private_files(home: Path) -> list[CheckResult]:
    """secret.key and run/control.token (when present) are readable by their owner only (POSIX)."""
    if os.name != "posix":  # pragma: no cover - Windows keeps ACLs, not modes
        return []
    paths = Paths(home)
    results = []
    for path, label in ((paths.secret_key, "secret.key"), (paths.control_token, "control.token")):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            if path == paths.secret_key:
                results.append(_fail(label, f"{path} is missing", f"run `appliance init --home {home}`"))
            continue
        if mode & 0o077:
            results.append(
                _fail(
                    label,
                    f"{path} has mode {mode:04o}; others can read it",
                    f"run `chmod 600 {path}`",
                )
            )
        else:
            results.append(_ok(label, f"mode {mode:04o}"))
    return results


# --- settings ------------------------------------------------------------------


def load_checked_settings(home: Path) -> tuple[Instance | None, CheckResult]:
    """Parse the settings; a bad one is a failing result naming it, never an exception."""
    paths = Paths(home)
    try:
        settings = load_settings(paths.settings_file)
    except SettingsError as exc:
        name = exc.extra.get("setting")
        setting = registry().get(str(name)) if name else None
        message = exc.message
        if setting is not None and setting.secret:
            # The message quotes the value; this one is secret.
            message = (
                f"setting '{setting.name}' has a value that cannot be used; expected {setting.describe_accepted()}"
            )
        where = f"{paths.settings_file} or the APPLIANCE_* environment"
        return None, _fail("settings", message, f"correct it in {where}")
    return Instance(paths, settings), _ok("settings", f"{paths.settings_file} parses")


# --- the database ----------------------------------------------------------------


def _sqlite_integrity(path: Path) -> CheckResult:
    name = "database"
    if not path.exists():
        return _fail(name, f"{path} does not exist", f"run `appliance migrate --home {path.parent.parent}`")
    try:
        # A plain read-only connection: doctor must not change the journal mode or write.
        conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, timeout=5)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if not os.access(path.parent, os.W_OK):
            # A WAL database needs its folder writable even to be read; the file is not at fault.
            return _fail(name, f"{path} cannot be opened: {path.parent} is read-only", f"make {path.parent} writable")
        return _fail(
            name,
            f"{path} cannot be read as a SQLite database ({exc})",
            "restore the latest backup (`appliance backup restore ARCHIVE`) or move the file away and run `appliance migrate`",
        )
    if rows != ["ok"]:
        shown = "; ".join(rows[:3]) + (" ..." if len(rows) > 3 else "")
        return _fail(
            name, f"integrity check failed: {shown}", "restore the latest backup (`appliance backup restore ARCHIVE`)"
        )
    return _ok(name, f"{path} passes PRAGMA integrity_check")


def check_database(instance: Instance) -> list[CheckResult]:
    """The database opens and is sound; then no migration is pending or unknown."""
    url = instance.settings.database_url
    results: list[CheckResult] = []
    if url:
        shown = redact_url(url)
        try:
            db = make_database(instance)
            db.connect()
            db.execute_sql("SELECT 1").fetchone()
        except ApplianceError as exc:
            return [_fail("database", exc.message, "set database_url to a postgresql:// URL")]
        except Exception as exc:  # any driver error: report it, never crash
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            password = urlsplit(url).password
            if password:
                text = text.replace(url, shown).replace(password, "***")
            return [
                _fail(
                    "database",
                    f"cannot connect to {shown}: {text}",
                    "check that PostgreSQL runs and that database_url / DATABASE_URL is right",
                )
            ]
        results.append(_ok("database", f"connected to {shown}"))
    else:
        result = _sqlite_integrity(instance.paths.database_file)
        results.append(result)
        if result.status != "ok":
            return results
        db = make_database(instance)
    try:
        with db.connection_context():
            pending = pending_migrations(db)
            newer = unknown_migrations(db)
    except Exception as exc:
        results.append(_fail("migrations", f"cannot read the migration history: {exc}", "restore the latest backup"))
        return results
    finally:
        if not db.is_closed():
            db.close()
    if newer:
        results.append(
            _fail(
                "migrations",
                f"the database was migrated by a newer version ({', '.join(newer)})",
                "upgrade Office Appliance to the version that wrote this database",
            )
        )
    if pending:
        results.append(
            _fail(
                "migrations",
                f"{len(pending)} pending migration(s): {', '.join(pending)}",
                f"run `appliance migrate --home {instance.home}`",
            )
        )
    if not newer and not pending:
        results.append(_ok("migrations", "the schema is up to date"))
    return results


# --- the port and the run files -------------------------------------------------------


def _port_free(host: str, port: int) -> bool | None:
    """Whether the server could bind ``host:port`` now; ``None`` when the answer is not "in use"."""
    refusal = probe_port(host, port)
    if refusal is None:
        return True
    return False if refusal.errno == errno.EADDRINUSE else None


def check_port(instance: Instance) -> list[CheckResult]:
    """The configured port is free, or held by this home's own running server."""
    host, port = instance.settings.host, instance.settings.port
    info = read_server_info(instance.paths)
    if info and info.get("port") == port:
        return [_ok("port", f"port {port} is served by this home's server (pid {info.get('pid')})")]
    free = _port_free(host, port)
    if free:
        return [_ok("port", f"port {port} on {host} is free")]
    if free is None:
        return [
            _fail(
                "port",
                f"cannot listen on {host}:{port} (not allowed or address unknown)",
                "choose a port from 1024 up with the 'port' setting, and a local address for 'host'",
            )
        ]
    holder = port_holder(port)
    who = f" by {holder}" if holder else " by another program"
    return [
        _fail(
            "port",
            f"port {port} on {host} is already in use{who}",
            "stop that program or choose another port with the 'port' setting (APPLIANCE_PORT)",
        )
    ]


def check_run_files(instance: Instance) -> list[CheckResult]:
    """A ``server.json`` with no server holding the home's lock is stale."""
    server_json = instance.paths.server_json
    if server_json.exists() and not is_home_locked(instance.paths.server_lock):
        return [
            _warn(
                "run files",
                f"{server_json} is stale: no server is running on this home",
                f"harmless, the next start replaces it; or delete {server_json}",
            )
        ]
    return []


def check_disk(instance: Instance) -> list[CheckResult]:
    """Free space on the home's filesystem against ``min_free_disk_mb``: a failure below it (backups
    and writes are about to fail), a warning below twice it."""
    minimum = instance.settings.min_free_disk_mb
    free_mb = shutil.disk_usage(instance.home).free // (1024 * 1024)
    fix = "free some space (old backups in backups/, logs) or move the home to a bigger disk"
    if free_mb < minimum:
        return [_fail("disk", f"only {free_mb} MB free on the home's disk (min_free_disk_mb is {minimum})", fix)]
    if free_mb < 2 * minimum:
        return [_warn("disk", f"{free_mb} MB free on the home's disk, close to min_free_disk_mb ({minimum})", fix)]
    return [_ok("disk", f"{free_mb} MB free")]


# --- all of them ------------------------------------------------------------------------


def _guarded(check: Callable[[Instance], list[CheckResult]], instance: Instance, name: str) -> Iterable[CheckResult]:
    """Run one check; an unexpected exception becomes a failing result rather than a traceback."""
    try:
        return check(instance)
    except Exception as exc:
        return [_fail(name, f"the check itself failed: {type(exc).__name__}: {exc}", "report this as a bug")]


def check_desktop(missing: list[str] | None = None) -> list[CheckResult]:
    """Whether the desktop console can open a window: Qt's X11 plugin loaded the way the loader does it.

    A warning, not a failure: a server without a desktop never opens the console.
    """
    name = "desktop console"
    missing = missing_libraries() if missing is None else missing
    if missing:
        command = install_command(missing)
        return [
            _warn(
                name,
                f"Qt's X11 plugin cannot load: {', '.join(missing)} missing, so `appliance console` cannot open a window",
                " ".join(command) if command else "install the packages that provide these libraries",
            )
        ]
    where = "" if needs_xcb() else " (no X11 display here now)"
    return [_ok(name, f"Qt's X11 plugin finds every library it needs{where}")]


def run_checks(home: Path) -> list[CheckResult]:
    """Every check of ``home`` in order; a failing result means ``appliance doctor`` exits non-zero."""
    home = Path(home)
    results = check_home(home)
    if results[0].status == "fail" and not home.is_dir():
        return results
    results += check_folders(home)
    results += check_private_files(home)
    instance, settings_result = load_checked_settings(home)
    results.append(settings_result)
    if instance is None:
        results.append(
            _warn(
                "other checks",
                "database, migrations, port and disk were not checked",
                "fix the settings and run `appliance doctor` again",
            )
        )
        return results
    if not Paths(home).db_dir.is_dir():
        return results
    results += _guarded(check_database, instance, "database")
    results += _guarded(check_port, instance, "port")
    results += _guarded(check_run_files, instance, "run files")
    results += _guarded(check_disk, instance, "disk")
    results += check_desktop()
    return results
