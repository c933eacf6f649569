"""Concurrent writers wait for each other instead of failing with "database is locked"."""

from __future__ import annotations

import threading

from appliance.storage.db import database


def test_read_then_write_transactions_in_many_threads_all_succeed(instance):
    with database.connection_context():
        database.execute_sql("CREATE TABLE counter (n INTEGER)")
        database.execute_sql("INSERT INTO counter VALUES (0)")
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def bump() -> None:
        barrier.wait(timeout=30)
        try:
            with database.connection_context():
                for _ in range(10):
                    with database.atomic():
                        # Read, then write: the pattern that fails at once in a deferred transaction.
                        (n,) = database.execute_sql("SELECT n FROM counter").fetchone()
                        database.execute_sql("UPDATE counter SET n = ?", (n + 1,))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with database.connection_context():
        assert database.execute_sql("SELECT n FROM counter").fetchone()[0] == 80


def test_a_thread_waits_its_turn_instead_of_outwaiting_sqlites_busy_timeout(home):
    from appliance.config.home import open_instance
    from appliance.storage.db import open_database

    # A busy timeout far shorter than the other thread's transaction: SQLite alone would refuse.
    instance = open_instance(home, {"APPLIANCE_SQLITE_BUSY_TIMEOUT_MS": "50"})
    db = open_database(instance)
    with db.connection_context():
        db.execute_sql("CREATE TABLE t (n INTEGER)")
    inside = threading.Event()
    errors: list[BaseException] = []

    def long_writer() -> None:
        with db.connection_context(), db.atomic():
            db.execute_sql("INSERT INTO t VALUES (1)")
            inside.set()
            threading.Event().wait(0.4)  # hold the write lock well past SQLite's 50 ms busy timeout

    def second_writer() -> None:
        inside.wait(timeout=30)
        try:
            with db.connection_context(), db.atomic():
                db.execute_sql("INSERT INTO t VALUES (2)")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=long_writer), threading.Thread(target=second_writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.connection_context():
        assert sorted(r[0] for r in db.execute_sql("SELECT n FROM t")) == [1, 2]
    db.close()
