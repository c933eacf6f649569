"""The console application: one instance per home, the first-run wizard, then the main window.

``run_console(home)`` is the entry used by ``appliance console`` (console/commands.py)
and by the launcher the installer makes.
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QDialog

from appliance.accounts.users import has_active_admin
from appliance.config.home import Paths
from console.offline import offline_database
from console.window import MainWindow
from console.wizard import FirstRunWizard

RAISE = b"raise\n"


def instance_key(home: Path) -> str:
    """The local-socket name of the console of ``home`` (same home, same name; short enough for every OS)."""
    digest = hashlib.sha256(str(Path(home).expanduser().absolute()).encode()).hexdigest()[:20]
    return f"office-appliance-console-{digest}"


class SingleInstance(QObject):
    """Makes sure one console runs per home: the first ``claim``s the name, a later one asks it to come forward.

    ``activated`` is emitted in the first instance when another launch asked
    it to show itself.
    """

    activated = Signal()

    def __init__(self, home: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.key = instance_key(home)
        self.server: QLocalServer | None = None
        self._connections: list[QLocalSocket] = []

    def claim(self, timeout_ms: int = 500) -> bool:
        """``True`` when this is the first console of the home; ``False`` after waking the one that runs."""
        socket = QLocalSocket()
        socket.connectToServer(self.key)
        if socket.waitForConnected(timeout_ms):
            socket.write(RAISE)
            socket.flush()
            socket.waitForBytesWritten(timeout_ms)
            socket.disconnectFromServer()
            return False
        # Nobody answered: a name left by a console that crashed is stale, take it over.
        QLocalServer.removeServer(self.key)
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not self.server.listen(self.key):
            return True  # cannot listen (odd platform): run anyway rather than refuse to open
        self.server.newConnection.connect(self.on_new_connection)
        return True

    def on_new_connection(self) -> None:
        while self.server is not None and self.server.hasPendingConnections():
            connection = self.server.nextPendingConnection()
            self._connections.append(connection)
            connection.readyRead.connect(self.on_ready_read)
            if connection.bytesAvailable():
                self._read(connection)

    def on_ready_read(self) -> None:
        connection = self.sender()
        if isinstance(connection, QLocalSocket):
            self._read(connection)

    def _read(self, connection: QLocalSocket) -> None:
        if bytes(connection.readAll().data()).startswith(RAISE.strip()):
            self.activated.emit()

    def release(self) -> None:
        """Give the name up (the console is quitting)."""
        for connection in self._connections:
            connection.readyRead.disconnect(self.on_ready_read)
            connection.abort()
        self._connections = []
        if self.server is not None:
            self.server.close()
            self.server = None


def needs_first_run(paths: Paths) -> bool:
    """Whether the home is new: not initialised, or without an active admin to sign in with."""
    if not paths.secret_key.exists() or not paths.db_dir.is_dir():
        return True
    if not paths.database_file.exists():
        return True
    try:
        with offline_database(paths):
            return not has_active_admin()
    except Exception:
        # A database that cannot be read (no migrations yet, an old schema) is the wizard's to set up.
        return True


def run_console(home: Path) -> int:
    """Open the console of ``home`` (or bring the open one forward); returns the exit status."""
    app = QApplication.instance() or QApplication([])
    app.setApplicationName("Office Appliance")
    app.setQuitOnLastWindowClosed(False)
    paths = Paths(Path(home))
    single = SingleInstance(paths.home)
    if not single.claim():
        print(f"The console of {paths.home} is already open; it was brought to the front.")
        return 0
    start_server = True
    if needs_first_run(paths):
        wizard = FirstRunWizard(paths)
        if wizard.exec() != QDialog.DialogCode.Accepted:
            single.release()
            return 1
        start_server = wizard.start_server
    window = MainWindow(paths, standalone=True)
    single.activated.connect(window.bring_to_front)
    # Ctrl+C in the terminal or SIGTERM from the session: stop the server this console started, then quit.
    # Python runs signal handlers only between bytecodes, so a timer lets it look in now and then.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: window.on_quit_requested())
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(300)
    window.show()
    window.start_watching(start_server=start_server)
    try:
        return app.exec()
    finally:
        single.release()
