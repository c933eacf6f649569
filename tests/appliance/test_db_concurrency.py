"""Concurrent writers wait for each other instead of failing with "database is locked"."""

from __future__ import annotations

import threading

from appliance.db import database


def test_read_then_write_transactions_in_many_threads_all_succeed(instance):
    with database.connection_context():
        database.execute_sql("CREATE TABLE counter (n INTEGER)")
        database.execute_sql("INSERT INTO counter VALUES (0)")
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def bump() -> None:
        barrier.wait()
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
