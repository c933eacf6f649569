"""The database handle and the models' base class.

``database`` is a peewee ``DatabaseProxy`` initialised once per process by
:func:`open_database`: SQLite in WAL mode with foreign keys, a busy timeout
and ``synchronous`` from the ``sqlite_synchronous`` setting, PostgreSQL when ``database_url`` (or
``DATABASE_URL``) names one. Connections are per thread; the web layer opens
and closes one around each request, jobs around each run.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import peewee
from playhouse.db_url import connect as connect_url

from appliance.config.home import Instance
from appliance.errors import HomeError, SettingsError

database = peewee.DatabaseProxy()


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


SYNCHRONOUS = {"normal": 1, "full": 2}


def sqlite_pragmas(busy_timeout_ms: int, synchronous: str = "full") -> dict[str, Any]:
    """The pragmas every SQLite connection gets; ``synchronous`` is the ``sqlite_synchronous`` setting
    (``full``: a commit is on disk before it is acknowledged; ``normal``: in WAL mode a commit acknowledged
    just before a power cut can be lost, never corrupted; see README "Durability").

    WAL is not among them: it is a property of the database file, set once by
    :func:`open_database`; setting it again on every connection costs about
    half a millisecond per request.
    """
    return {
        "foreign_keys": 1,
        "busy_timeout": busy_timeout_ms,
        "synchronous": SYNCHRONOUS[synchronous],
    }


# How long a thread waits for another thread of the same process to finish its
# transaction. Longer than SQLite's busy timeout on purpose: waiting here is fair
# (first come, first served) where SQLite's busy handler is not, and a write that
# waits a little longer beats one refused with "database is locked".
THREAD_WRITE_WAIT_SECONDS = 30.0


class SerialisedSqliteDatabase(peewee.SqliteDatabase):
    """SQLite where at most one thread of this process at a time is inside a transaction.

    SQLite's busy handler polls with growing sleeps and lets a lucky newcomer in
    ahead of a writer that has waited long: with many request threads some writes
    then wait past the busy timeout and fail. Queueing the threads of a process on
    one lock leaves SQLite to arbitrate only between processes (the workers).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._transaction_lock = threading.Lock()
        self._holds = threading.local()

    def begin(self, lock_type: str | None = None) -> None:
        if not self._transaction_lock.acquire(timeout=THREAD_WRITE_WAIT_SECONDS):
            raise peewee.OperationalError("database is locked: another transaction of this process took too long")
        self._holds.lock = True
        try:
            super().begin(lock_type)
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if getattr(self._holds, "lock", False):
            self._holds.lock = False
            self._transaction_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()


def make_database(instance: Instance) -> peewee.Database:
    """A new (unconnected) database object for this instance's settings."""
    url = instance.settings.database_url
    if url:
        if not url.startswith(("postgres://", "postgresql://", "postgresext://", "postgresqlext://")):
            raise SettingsError(
                "setting 'database_url': only PostgreSQL URLs (postgresql://...) are supported", setting="database_url"
            )
        connected: peewee.Database = connect_url(url)  # playhouse is untyped
        return connected
    return SerialisedSqliteDatabase(
        str(instance.paths.database_file),
        pragmas=sqlite_pragmas(instance.settings.sqlite_busy_timeout_ms, instance.settings.sqlite_synchronous),
        # Every transaction begins IMMEDIATE: it takes the write lock up front, so
        # a second writer waits out the busy timeout. A deferred transaction that
        # reads and then writes cannot wait: SQLite answers "database is locked"
        # at once when another writer got there first.
        lock_type="IMMEDIATE",
        autoconnect=True,
    )


def open_database(instance: Instance) -> peewee.Database:
    """Initialise the process-wide :data:`database` proxy for ``instance`` and return the real database."""
    db = make_database(instance)
    database.initialize(db)
    if isinstance(db, peewee.SqliteDatabase):
        with db.connection_context():
            mode = db.execute_sql("PRAGMA journal_mode=wal").fetchone()[0]
        if mode != "wal":
            raise HomeError(f"the database at {instance.paths.database_file} cannot use WAL mode (it reports {mode!r})")
    return db


def write_transaction() -> Any:
    """A transaction for a write (``database.atomic()``; on SQLite it begins IMMEDIATE, see :func:`make_database`)."""
    return database.atomic()


def is_sqlite(db: peewee.Database | None = None) -> bool:
    target = db if db is not None else database.obj
    return isinstance(target, peewee.SqliteDatabase)


def ping() -> None:
    """Run a trivial query; raises ``peewee.DatabaseError`` when the database does not answer."""
    database.execute_sql("SELECT 1").fetchone()


_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def describe_database_error(exc: BaseException) -> str:
    """A one-line reason for a database error, with any password in a URL masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _PASSWORD_IN_URL.sub(r"\1***@", text)
