"""The first-run wizard: a new home gets its port (checked free), its first admin, optionally the starter
collections, and then the console starts the server."""

from __future__ import annotations

import contextlib
import errno
import socket
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from appliance.errors import ApplianceError
from appliance.home import Paths, init_home, open_instance
from appliance.server import port_holder
from appliance.settings import load_settings, write_settings


def port_problem(port: int, host: str = "127.0.0.1") -> str | None:
    """Why ``port`` cannot be used on ``host`` now (naming the program that holds it), or ``None`` when free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.closing(socket.socket(family, socket.SOCK_STREAM)) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                holder = port_holder(port)
                return f"Port {port} is already in use" + (f" by {holder}." if holder else ".")
            if exc.errno in (errno.EACCES, errno.EPERM):
                return f"Port {port} needs administrator rights; choose one from 1024 up."
            return f"Port {port} cannot be used: {exc.strerror}."
    return None


def prepare_home(home: Path) -> None:
    """Create the home's layout and bring its database up to date (what ``appliance init`` does)."""
    from appliance.db import open_database
    from appliance.migrate import apply_migrations

    init_home(home)
    db = open_database(open_instance(home))
    with db.connection_context():
        apply_migrations(db)


def starter_loader():
    """The core's loader of the starter collections, or ``None`` when this version has none."""
    for module_name, name in (
        ("appliance.demo", "load_starter_collections"),
        ("appliance.collections", "load_starter_collections"),
    ):
        with contextlib.suppress(ImportError):
            module = __import__(module_name, fromlist=[name])
            loader = getattr(module, name, None)
            if loader is not None:
                return loader
    return None


class _ErrorLabel(QLabel):
    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("error")
        self.setWordWrap(True)
        self.setStyleSheet("color: #c62828;")

    def say(self, text: str) -> None:
        self.setText(text)
        self.setVisible(bool(text))


class PortPage(QWizardPage):
    def __init__(self, wizard: FirstRunWizard):
        super().__init__()
        self.owner = wizard
        self.setTitle("Where the appliance listens")
        self.setSubTitle("Staff open the appliance in their browsers at this port. The default suits most offices.")
        self.port_box = QSpinBox()
        self.port_box.setRange(1024, 65535)
        self.port_box.setValue(self._current_port())
        self.port_box.valueChanged.connect(self.on_port_changed)
        self.state = QLabel()
        self.error = _ErrorLabel()
        form = QFormLayout(self)
        form.addRow("Port:", self.port_box)
        form.addRow(self.state)
        form.addRow(self.error)
        self.on_port_changed(self.port_box.value())

    def _current_port(self) -> int:
        try:
            return int(load_settings(self.owner.paths.settings_file, {}).port)
        except ApplianceError:
            return 8765

    def on_port_changed(self, port: int) -> None:
        problem = port_problem(port)
        self.state.setText(problem or f"Port {port} is free.")
        self.error.say("")

    def validatePage(self) -> bool:
        port = self.port_box.value()
        problem = port_problem(port)
        if problem:
            self.error.say(problem + " Choose another port.")
            return False
        try:
            prepare_home(self.owner.paths.home)
            write_settings(self.owner.paths.settings_file, {"port": port})
        except ApplianceError as exc:
            self.error.say(exc.message)
            return False
        self.owner.port = port
        return True


class AdminPage(QWizardPage):
    def __init__(self, wizard: FirstRunWizard):
        super().__init__()
        self.owner = wizard
        self.setTitle("The first administrator")
        self.setSubTitle("This account signs in to the web pages and can add everyone else.")
        self.email = QLineEdit()
        self.name = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm = QLineEdit()
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        for editor, name in (
            (self.email, "email"),
            (self.name, "name"),
            (self.password, "password"),
            (self.confirm, "confirm"),
        ):
            editor.setObjectName(name)
        self.error = _ErrorLabel()
        form = QFormLayout(self)
        form.addRow("Email:", self.email)
        form.addRow("Name:", self.name)
        form.addRow("Password:", self.password)
        form.addRow("Password again:", self.confirm)
        form.addRow(self.error)

    def validatePage(self) -> bool:
        if self.password.text() != self.confirm.text():
            self.error.say("The two passwords differ.")
            return False
        try:
            from appliance.users import create_user
            from console.offline import offline_database
        except ImportError:
            self.error.say("This version cannot create users yet.")
            return False
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            with offline_database(self.owner.paths):
                user = create_user(self.email.text(), self.name.text(), "admin", self.password.text(), actor=None)
        except ApplianceError as exc:
            details = "; ".join(f"{field}: {text}" for field, text in exc.fields.items())
            self.error.say(f"{exc.message}" + (f" — {details}" if details else ""))
            return False
        finally:
            QGuiApplication.restoreOverrideCursor()
        self.owner.admin_email = user.email
        self.error.say("")
        return True


class StarterPage(QWizardPage):
    def __init__(self, wizard: FirstRunWizard):
        super().__init__()
        self.owner = wizard
        self.setTitle("Starter collections")
        self.load_box = QCheckBox("Load the starter collections (customers, inventory, orders)")
        self.error = _ErrorLabel()
        layout = QVBoxLayout(self)
        layout.addWidget(self.load_box)
        if starter_loader() is None:
            self.load_box.setEnabled(False)
            layout.addWidget(QLabel("This version has no starter collections to load."))
        layout.addWidget(self.error)

    def validatePage(self) -> bool:
        if not self.load_box.isChecked():
            return True
        loader = starter_loader()
        try:
            from console.offline import offline_database

            with offline_database(self.owner.paths) as instance:
                loader(instance)
        except ApplianceError as exc:
            self.error.say(exc.message)
            return False
        self.owner.loaded_starters = True
        return True


class DonePage(QWizardPage):
    def __init__(self, wizard: FirstRunWizard):
        super().__init__()
        self.owner = wizard
        self.setTitle("Ready")
        self.start_box = QCheckBox("Start the server now")
        self.start_box.setChecked(True)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.start_box)

    def initializePage(self) -> None:
        self.summary.setText(
            f"The appliance will listen on port {self.owner.port}. Sign in as {self.owner.admin_email} "
            "at the address the dashboard shows."
        )


class FirstRunWizard(QWizard):
    """Sets up a new home. After ``accept()``: ``port``, ``admin_email``, ``start_server``."""

    def __init__(self, paths: Paths, parent: QWidget | None = None):
        super().__init__(parent)
        self.paths = paths
        self.port = 0
        self.admin_email = ""
        self.loaded_starters = False
        self.setWindowTitle("Set up Office Appliance")
        self.port_page = PortPage(self)
        self.admin_page = AdminPage(self)
        self.starter_page = StarterPage(self)
        self.done_page = DonePage(self)
        for page in (self.port_page, self.admin_page, self.starter_page, self.done_page):
            self.addPage(page)

    @property
    def start_server(self) -> bool:
        return self.done_page.start_box.isChecked()
