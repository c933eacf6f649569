"""The tray icon: the server's state as a colour, a menu (start/stop, open in browser, open console, quit)
and desktop notifications for what needs the admin (a crash, a failed backup, a missed run)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from console.dashboard import STATE_COLOURS, STATE_WORDS
from console.supervisor import CRASHED, RUNNING, STOPPED


def state_icon(state: str, size: int = 64) -> QIcon:
    """A filled circle in the state's colour."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(STATE_COLOURS.get(state, "#757575")))
    painter.setPen(QColor("#ffffff"))
    painter.drawEllipse(4, 4, size - 8, size - 8)
    painter.end()
    return QIcon(pixmap)


class Tray(QObject):
    """Owns the QSystemTrayIcon; its menu's actions emit signals the window acts on."""

    start_requested = Signal()
    stop_requested = Signal()
    open_browser_requested = Signal()
    open_console_requested = Signal()
    quit_requested = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.icon = QSystemTrayIcon(parent)
        self.menu = QMenu()
        self.state_action = QAction("Stopped", self.menu)
        self.state_action.setEnabled(False)
        self.start_action = QAction("Start server", self.menu)
        self.stop_action = QAction("Stop server", self.menu)
        self.browser_action = QAction("Open in browser", self.menu)
        self.console_action = QAction("Open console", self.menu)
        self.quit_action = QAction("Quit console", self.menu)
        self.start_action.triggered.connect(self.start_requested)
        self.stop_action.triggered.connect(self.stop_requested)
        self.browser_action.triggered.connect(self.open_browser_requested)
        self.console_action.triggered.connect(self.open_console_requested)
        self.quit_action.triggered.connect(self.quit_requested)
        self.menu.addAction(self.state_action)
        self.menu.addSeparator()
        for action in (self.start_action, self.stop_action, self.browser_action, self.console_action):
            self.menu.addAction(action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self.on_activated)
        self.notifications: list[tuple[str, str]] = []
        self.set_state(STOPPED)

    def show(self) -> None:
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    @property
    def available(self) -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def set_state(self, state: str) -> None:
        self.state = state
        words = STATE_WORDS.get(state, state)
        self.icon.setIcon(state_icon(state))
        self.icon.setToolTip(f"Office Appliance: {words}")
        self.state_action.setText(f"Server: {words}")
        self.start_action.setEnabled(state in (STOPPED, CRASHED))
        self.stop_action.setEnabled(state not in (STOPPED,))
        self.browser_action.setEnabled(state == RUNNING)

    def notify(self, title: str, message: str, critical: bool = True) -> None:
        """A desktop notification (kept in ``notifications`` too, for the record and for tests)."""
        self.notifications.append((title, message))
        kind = QSystemTrayIcon.MessageIcon.Critical if critical else QSystemTrayIcon.MessageIcon.Information
        if self.icon.isVisible():
            self.icon.showMessage(title, message, kind, 10_000)

    def on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.open_console_requested.emit()
