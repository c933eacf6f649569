"""App and access logs as JSON lines under ``<home>/logs``, rotated by size.

Only the server's parent process writes the files (several processes
rotating one file would lose lines). Workers write each record as one JSON
line on their stdout, tagged with the log it belongs to; the parent relays
those lines into the rotating files.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import sys
import threading
from pathlib import Path
from typing import IO

from appliance.config.home import Instance

APP_LOG = "app.log"
ACCESS_LOG = "access.log"
ACCESS_LOGGER = "appliance.access"

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC ISO 8601), level, logger, msg, any extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _PassThrough(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def _rotating(path: Path, max_bytes: int, backups: int) -> logging.Handler:
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(_PassThrough())
    return handler


class LogFiles:
    """The parent's two rotating files; ``write(kind, line)`` appends one JSON line."""

    def __init__(self, instance: Instance):
        logs = instance.paths.logs_dir
        logs.mkdir(exist_ok=True)
        settings = instance.settings
        self._handlers = {
            "app": _rotating(logs / APP_LOG, settings.log_max_bytes, settings.log_backups),
            "access": _rotating(logs / ACCESS_LOG, settings.log_max_bytes, settings.log_backups),
        }

    def write(self, kind: str, line: str) -> None:
        handler = self._handlers.get(kind, self._handlers["app"])
        handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self) -> None:
        for handler in self._handlers.values():
            handler.close()


class _FileJsonHandler(logging.Handler):
    def __init__(self, files: LogFiles, kind: str):
        super().__init__()
        self.files = files
        self.kind = kind
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.files.write(self.kind, self.format(record))
        except Exception:
            self.handleError(record)


class _PipeHandler(logging.Handler):
    """Writes ``{"log": kind, ...record}`` lines to a stream the parent reads."""

    def __init__(self, stream: IO[str], kind: str):
        super().__init__()
        self.stream = stream
        self.kind = kind
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            with _PIPE_LOCK:
                self.stream.write(f'{{"log":"{self.kind}",' + line[1:] + "\n")
                self.stream.flush()
        except BrokenPipeError:
            # The parent is gone (killed); this worker is about to stop too. Nobody
            # is left to read the line, and a traceback per line helps no one.
            pass
        except Exception:
            self.handleError(record)


_PIPE_LOCK = threading.Lock()


def _configure(app_handler: logging.Handler, access_handler: logging.Handler, level: str) -> None:
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(app_handler)
    root.setLevel(level)
    # Waitress logs every queue-depth warning; keep them, but at the app level.
    access = logging.getLogger(ACCESS_LOGGER)
    access.handlers = [access_handler]
    access.propagate = False
    access.setLevel(logging.INFO)


def configure_parent_logging(instance: Instance) -> LogFiles:
    """Send this process's logs to the rotating files; returns them for relaying worker lines."""
    files = LogFiles(instance)
    _configure(_FileJsonHandler(files, "app"), _FileJsonHandler(files, "access"), instance.settings.log_level)
    return files


def configure_worker_logging(level: str, stream: IO[str] | None = None) -> None:
    """Send this worker's logs as tagged JSON lines to ``stream`` (stdout by default)."""
    stream = stream or sys.stdout
    _configure(_PipeHandler(stream, "app"), _PipeHandler(stream, "access"), level)


def relay_worker_output(stream: IO[bytes], files: LogFiles) -> None:
    """Copy tagged lines from a worker's stdout into the files until the stream ends.

    A line that is not a tagged JSON record (a stray print) goes to the app log
    as a message of its own, so nothing a worker says is lost.
    """
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if not line:
            continue
        kind = "app"
        if line.startswith('{"log":"'):
            try:
                record = json.loads(line)
                kind = record.pop("log")
                line = json.dumps(record, ensure_ascii=False)
            except (ValueError, KeyError):
                kind = "app"
        else:
            line = json.dumps(
                {
                    "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "level": "INFO",
                    "logger": "worker.stdout",
                    "msg": line,
                }
            )
        files.write(kind, line)
