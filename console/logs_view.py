"""The logs tab: a live tail of the app and access logs with level filter, text search, pause and copy.

Lines are read in bounded chunks from where the last read stopped (a rotated
or truncated file is read again from its start); only the last
``MAX_LINES`` are kept, and the view is a model over them, so a long log
never slows the window.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from appliance.clock import parse_iso
from appliance.config.home import Paths

MAX_LINES = 20_000
CHUNK_BYTES = 512 * 1024  # read at most this much per tick; the rest comes on the next ticks
FIRST_READ_BYTES = 256 * 1024  # on opening, show the end of the file, not all of it
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class LogLine:
    log: str
    ts: str
    level: str
    text: str
    raw: str
    local_ts: str = ""  # ``ts`` in this computer's time zone, as the view shows it


def local_timestamp(ts: str) -> str:
    """A log line's UTC ``ts`` in local time, to the millisecond; the text as it is when it is not a time."""
    try:
        moment = parse_iso(ts)
    except ValueError:
        return ts
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def parse_line(log: str, raw: str) -> LogLine:
    """One JSON log line (app or access) as a row; a line that is not JSON is kept as an INFO message."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return LogLine(log, "", "INFO", raw, raw)
    if not isinstance(entry, dict):
        return LogLine(log, "", "INFO", raw, raw)
    level = str(entry.get("level", "INFO")).upper()
    if log == "access" and "msg" not in entry:
        text = " ".join(str(entry.get(k, "")) for k in ("method", "path", "status") if k in entry) or raw
    else:
        text = str(entry.get("msg", raw))
        hidden = ("ts", "level", "logger", "msg", "exc")
        if log == "access":  # the message already says method, path and status
            hidden += ("method", "path", "status", "user_agent", "bytes")
        extras = {k: v for k, v in entry.items() if k not in hidden}
        if extras:
            text += "  " + " ".join(f"{k}={v}" for k, v in extras.items())
        if entry.get("exc"):
            text += "\n" + str(entry["exc"])
    if log == "access" and "status" in entry:
        try:
            status = int(entry["status"])
        except (TypeError, ValueError):
            status = 0
        if status >= 500:
            level = "ERROR"
        elif status >= 400 and level == "INFO":
            level = "WARNING"
    ts = str(entry.get("ts", ""))
    return LogLine(log, ts, level, text, raw, local_timestamp(ts) if ts else "")


class LogFollower:
    """Reads the lines appended to one file since the last call; notices rotation and truncation."""

    def __init__(self, path: Path, first_read_bytes: int = FIRST_READ_BYTES):
        self.path = path
        self.offset: int | None = None
        self.inode: int | None = None
        self.first_read_bytes = first_read_bytes
        self._partial = b""

    def read_new(self, limit: int = CHUNK_BYTES) -> list[str]:
        """Complete new lines (at most about ``limit`` bytes of them); ``[]`` when the file does not exist."""
        try:
            stat = self.path.stat()
        except OSError:
            return []
        if self.inode != stat.st_ino or self.offset is None or stat.st_size < self.offset:
            fresh = self.inode is None
            self.inode = stat.st_ino
            self._partial = b""
            # On opening the console, start near the end; after a rotation, read the new file whole.
            self.offset = max(0, stat.st_size - self.first_read_bytes) if fresh else 0
            skip_partial_first = fresh and self.offset > 0
        else:
            skip_partial_first = False
        if stat.st_size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(limit)
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if skip_partial_first and lines:
            lines = lines[1:]
        return [line.decode("utf-8", "replace") for line in lines if line.strip()]


class LogModel(QAbstractTableModel):
    """The kept lines, and the indices of those that pass the filter (level, text, which log)."""

    COLUMNS = ("Time", "Log", "Level", "Message")

    def __init__(self, max_lines: int = MAX_LINES):
        super().__init__()
        self.lines: deque[LogLine] = deque(maxlen=max_lines)
        self.shown: list[LogLine] = []
        self.min_level = "DEBUG"
        self.search = ""
        self.logs = {"app", "access"}

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.shown)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        line = self.shown[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (line.local_ts or line.ts, line.log, line.level, line.text.split("\n", 1)[0])[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 0 and line.ts:
            return f"{line.ts} (UTC)"
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 3:
            return line.text[:4000]
        if role == Qt.ItemDataRole.ForegroundRole and line.level in ("ERROR", "CRITICAL"):
            return QBrush(QColor("#c62828"))
        if role == Qt.ItemDataRole.ForegroundRole and line.level == "WARNING":
            return QBrush(QColor("#ef6c00"))
        return None

    def _passes(self, line: LogLine) -> bool:
        if line.log not in self.logs:
            return False
        if line.level in LEVELS and LEVELS.index(line.level) < LEVELS.index(self.min_level):
            return False
        return not self.search or self.search in line.text.lower() or self.search in line.raw.lower()

    def set_filter(
        self, *, min_level: str | None = None, search: str | None = None, logs: set[str] | None = None
    ) -> None:
        if min_level is not None:
            self.min_level = min_level
        if search is not None:
            self.search = search.strip().lower()
        if logs is not None:
            self.logs = logs
        self.beginResetModel()
        self.shown = [line for line in self.lines if self._passes(line)]
        self.endResetModel()

    def append(self, lines: list[LogLine]) -> None:
        """Add new lines at the end; the oldest kept lines fall out beyond ``max_lines``.

        Only the rows that change are announced (rows removed at the top, rows inserted at the end), so the
        view keeps its selection and scroll position: no model reset, however full the buffer.
        """
        if not lines:
            return
        limit = self.lines.maxlen or 0
        if len(lines) >= limit:
            # Everything kept so far falls out: nothing of the view can be kept either.
            self.lines.extend(lines)
            self.set_filter()
            return
        overflow = max(0, len(self.lines) + len(lines) - limit)
        if overflow:
            # The shown rows are in the kept lines' order: those that fall out are a prefix of them.
            dropped = sum(1 for index in range(overflow) if self._passes(self.lines[index]))
            if dropped:
                self.beginRemoveRows(QModelIndex(), 0, dropped - 1)
                del self.shown[:dropped]
                self.endRemoveRows()
        self.lines.extend(lines)
        new = [line for line in lines if self._passes(line)]
        if new:
            start = len(self.shown)
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            self.shown.extend(new)
            self.endInsertRows()


class LogsTab(QWidget):
    """Follows ``app.log`` and ``access.log`` of the home with a timer; paused lines wait, none is lost."""

    def __init__(self, paths: Paths, interval_ms: int = 500, parent: QWidget | None = None):
        super().__init__(parent)
        self.followers = {
            "app": LogFollower(paths.logs_dir / "app.log"),
            "access": LogFollower(paths.logs_dir / "access.log"),
        }
        self.model = LogModel()
        self.paused = False
        self._pending: list[LogLine] = []

        self.level_box = QComboBox()
        self.level_box.addItems(list(LEVELS[:4]))
        self.level_box.setCurrentText("DEBUG")
        self.level_box.currentTextChanged.connect(self.on_level_changed)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search…")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.textChanged.connect(self.on_search_changed)
        self.app_box = QCheckBox("App log")
        self.access_box = QCheckBox("Access log")
        for box in (self.app_box, self.access_box):
            box.setChecked(True)
            box.toggled.connect(self.on_logs_toggled)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.on_pause_toggled)
        self.copy_button = QPushButton("Copy selection")
        self.copy_button.clicked.connect(self.on_copy_clicked)
        self.count_label = QLabel()

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Level at least:"))
        bar.addWidget(self.level_box)
        bar.addWidget(self.search_box, 1)
        bar.addWidget(self.app_box)
        bar.addWidget(self.access_box)
        bar.addWidget(self.pause_button)
        bar.addWidget(self.copy_button)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 190)
        header.resizeSection(1, 60)
        header.resizeSection(2, 70)
        header.setStretchLastSection(True)
        self.table.setWordWrap(False)
        QShortcut(QKeySequence.StandardKey.Copy, self.table, activated=self.on_copy_clicked)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count_label)

        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll_once)
        self.timer.start()
        self.poll_once()

    def poll_once(self) -> int:
        """Read what the logs gained since the last call; returns the number of new lines."""
        new: list[LogLine] = []
        for kind, follower in self.followers.items():
            new.extend(parse_line(kind, raw) for raw in follower.read_new())
        new.sort(key=lambda line: line.ts)
        if self.paused:
            self._pending.extend(new)
            del self._pending[: max(0, len(self._pending) - MAX_LINES)]
        else:
            self._show(new)
        self._update_count()
        return len(new)

    def _show(self, lines: list[LogLine]) -> None:
        if not lines:
            return
        bar = self.table.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        self.model.append(lines)
        if at_bottom:
            self.table.scrollToBottom()

    def _update_count(self) -> None:
        waiting = f", {len(self._pending)} waiting (paused)" if self.paused else ""
        self.count_label.setText(f"{len(self.model.shown)} of {len(self.model.lines)} lines shown{waiting}")

    def selected_text(self) -> str:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return "\n".join(self.model.shown[row].raw for row in rows)

    # --- slots -------------------------------------------------------------

    def on_level_changed(self, level: str) -> None:
        self.model.set_filter(min_level=level)
        self._update_count()

    def on_search_changed(self, text: str) -> None:
        self.model.set_filter(search=text)
        self._update_count()

    def on_logs_toggled(self, _checked: bool) -> None:
        logs = {name for name, box in (("app", self.app_box), ("access", self.access_box)) if box.isChecked()}
        self.model.set_filter(logs=logs)
        self._update_count()

    def on_pause_toggled(self, paused: bool) -> None:
        self.paused = paused
        self.pause_button.setText("Resume" if paused else "Pause")
        if not paused:
            pending, self._pending = self._pending, []
            self._show(pending)
        self._update_count()

    def on_copy_clicked(self) -> None:
        text = self.selected_text()
        if text:
            QGuiApplication.clipboard().setText(text)
