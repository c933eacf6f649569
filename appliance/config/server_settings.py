"""The settings of the server itself: listening, workers, the database, logs and uploads, in file order."""

from __future__ import annotations

from appliance.config.setting import (
    Setting,
    host_problem,
    non_negative,
    port_problem,
    positive,
    within,
)

SERVER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "host",
        str,
        "127.0.0.1",
        "Address the server binds to. 127.0.0.1 serves this machine only; 0.0.0.0 opens it to the network.",
        "an IP address or host name",
        host_problem,
    ),
    Setting("port", int, 8765, "TCP port the server listens on.", "a whole number from 1 to 65535", port_problem),
    Setting(
        "workers",
        int,
        0,
        "Worker processes serving HTTP on the shared socket; 0 means one per CPU core.",
        "a whole number from 0 to 64",
        within(0, 64),
    ),
    Setting("threads", int, 8, "Request threads in each worker process.", "a whole number from 1", positive),
    Setting(
        "connection_limit",
        int,
        # 500, not 200: bench/bench_healthz.py showed 56 of 256 keep-alive connections to one worker
        # starved for the whole run at 200 (one worker is all Windows gets); idle connections are cheap
        # in Waitress, and 500 stays well under the common 1024 open-files limit.
        500,
        "Open connections one worker accepts before it stops accepting more (they wait in the listen backlog).",
        "a whole number from 1",
        positive,
    ),
    Setting("backlog", int, 1024, "Listen backlog of the shared socket.", "a whole number from 1", positive),
    Setting(
        "shutdown_grace_seconds",
        float,
        8.0,
        "On SIGTERM, how long in-flight requests may take to finish before workers are stopped.",
        "a number, 0 or more",
        non_negative,
    ),
    Setting(
        "trusted_proxy",
        str,
        "",
        "Address of the reverse proxy whose X-Forwarded-* headers are honoured; empty trusts none.",
    ),
    Setting(
        "database_url",
        str,
        "",
        "Database to use instead of the embedded SQLite file, e.g. postgresql://user:pass@host/db. "
        "DATABASE_URL in the environment is honoured too.",
        secret=True,
        section="database",
    ),
    Setting(
        "sqlite_busy_timeout_ms",
        int,
        5000,
        "How long a SQLite write waits for the lock before giving up.",
        "a whole number from 1",
        positive,
        section="database",
    ),
    Setting(
        "sqlite_synchronous",
        str,
        "full",
        "How SQLite commits: 'full' flushes every commit to disk before it is acknowledged, so an acknowledged "
        "write survives a power cut; 'normal' is faster but can lose the writes of the last moments before a "
        "power cut (never corrupting the database). See bench/bench_synchronous.py.",
        "full or normal",
        choices=("full", "normal"),
        section="database",
    ),
    Setting(
        "migrate_on_start",
        bool,
        True,
        "Apply pending migrations when the server starts; when false the server refuses to serve "
        "an un-migrated database and asks for `appliance migrate`.",
        section="database",
    ),
    Setting(
        "log_level",
        str,
        "INFO",
        "Least severe level written to the app log.",
        "one of DEBUG, INFO, WARNING, ERROR",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        restart=False,
        section="logs",
    ),
    Setting(
        "log_max_bytes",
        int,
        10 * 1024 * 1024,
        "Size at which a log file is rotated.",
        "a whole number of bytes from 1",
        positive,
        section="logs",
    ),
    Setting(
        "log_backups",
        int,
        5,
        "Rotated log files kept per log.",
        "a whole number, 0 or more",
        non_negative,
        section="logs",
    ),
    Setting(
        "min_free_disk_mb",
        int,
        500,
        "`appliance doctor` warns when the home's disk has less free space than this.",
        "a whole number, 0 or more",
        non_negative,
        restart=False,
        section="logs",
    ),
    Setting(
        "max_upload_mb",
        int,
        25,
        "Largest request body an upload may have, in megabytes; bigger ones are refused with 413 before "
        "they are read. A file field's own max_size can only be smaller.",
        "a whole number from 1",
        positive,
        section="data",
    ),
    Setting(
        "max_import_rows",
        int,
        100000,
        "Most data rows one CSV import may have (the API's and the import page's); a longer file is refused "
        "when it is read, before any row is checked. Split bigger files.",
        "a whole number from 1",
        positive,
        restart=False,
        section="data",
    ),
)
