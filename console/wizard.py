"""The first-run wizard: a new home gets its port (checked free), its first admin, optionally the starter
collections, and then the console starts the server.

The slow steps (hashing the admin's password, loading the starter collections) run off the GUI thread: the
page's Next starts them and refuses for now; when they end well, the page moves on by itself. Back then Next
on the admin page does not create the admin twice: it keeps (or updates) the one it made."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from appliance.accounts.user_changes import create_user, set_password, update_user
from appliance.config.home import Paths, init_home, open_instance
from appliance.config.settings import load_settings, write_settings
from appliance.errors import ApplianceError
from appliance.records.demo import load_starter_collections
from appliance.server.addresses import HTTPS_WARNING, LOCAL_ONLY_HOST, NETWORK_HOST, is_open_to_network, staff_urls
from appliance.server.sockets import port_holder, probe_port
from appliance.storage.db import open_database
from appliance.storage.migrate import apply_migrations
from console.client import run_in_background
from console.offline import offline_database
from console.tab_support import describe_error


def port_problem(port: int, host: str = "127.0.0.1") -> str | None:
    """Why ``port`` cannot be used on ``host`` now (naming the program that holds it), or ``None`` when free."""
    refusal = probe_port(host, port)
    if refusal is None:
        return None
    if refusal.errno == errno.EADDRINUSE:
        holder = port_holder(port)
        return f"Port {port} is already in use" + (f" by {holder}." if holder else ".")
    if refusal.errno in (errno.EACCES, errno.EPERM):
        return f"Port {port} needs administrator rights; choose one from 1024 up."
    return f"Port {port} cannot be used: {refusal.strerror}."


def prepare_home(home: Path) -> None:
    """Create the home's layout and bring its database up to date (what ``appliance init`` does)."""
    init_home(home)
    db = open_database(open_instance(home))
    with db.connection_context():
        apply_migrations(db)


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
        self.setSubTitle(
            "Who opens the appliance in a browser, and at which port. The default port suits most offices."
        )
        self.local_button = QRadioButton("Only this computer")
        self.network_button = QRadioButton("Everyone on the office network")
        self.local_button.setObjectName("only_this_computer")
        self.network_button.setObjectName("office_network")
        self.port_box = QSpinBox()
        self.port_box.setRange(1024, 65535)
        current_host, current_port = self._current()
        self.port_box.setValue(current_port)
        (self.network_button if is_open_to_network(current_host) else self.local_button).setChecked(True)
        self.network_button.toggled.connect(lambda _checked: self.on_port_changed(self.port_box.value()))
        self.port_box.valueChanged.connect(self.on_port_changed)
        self.state = QLabel()
        self.reach = QLabel()
        self.reach.setObjectName("reach")
        self.reach.setWordWrap(True)
        self.warning = QLabel(HTTPS_WARNING)
        self.warning.setObjectName("https_warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #8d5300;")
        self.error = _ErrorLabel()
        form = QFormLayout(self)
        form.addRow("Who opens it:", self.local_button)
        form.addRow("", self.network_button)
        form.addRow("Port:", self.port_box)
        form.addRow(self.state)
        form.addRow(self.reach)
        form.addRow(self.warning)
        form.addRow(self.error)
        self.on_port_changed(self.port_box.value())

    def _current(self) -> tuple[str, int]:
        try:
            settings = load_settings(self.owner.paths.settings_file, {})
            return str(settings.host), int(settings.port)
        except ApplianceError:
            return LOCAL_ONLY_HOST, 8765

    @property
    def host(self) -> str:
        """The listen address the choice means: every address for the office network, else loopback."""
        return NETWORK_HOST if self.network_button.isChecked() else LOCAL_ONLY_HOST

    def on_port_changed(self, port: int) -> None:
        problem = port_problem(port, self.host)
        self.state.setText(problem or f"Port {port} is free.")
        urls = staff_urls(self.host, port)
        if self.network_button.isChecked():
            self.reach.setText(
                "Staff will open " + " or ".join(urls)
                if urls
                else "This computer has no office-network address now; the dashboard shows it once it has."
            )
        else:
            self.reach.setText(f"Only a browser on this computer can open http://127.0.0.1:{port}/.")
        self.warning.setVisible(self.network_button.isChecked())
        self.error.say("")

    def validatePage(self) -> bool:
        port, host = self.port_box.value(), self.host
        problem = port_problem(port, host)
        if problem:
            self.error.say(problem + " Choose another port.")
            return False
        try:
            prepare_home(self.owner.paths.home)
            write_settings(self.owner.paths.settings_file, {"port": port, "host": host})
        except ApplianceError as exc:
            self.error.say(exc.message)
            return False
        self.owner.port, self.owner.host = port, host
        return True


class _BackgroundPage(QWizardPage):
    """A page whose Next runs slow work off the GUI thread, then moves on by itself when it succeeded."""

    def __init__(self, wizard: FirstRunWizard):
        super().__init__()
        self.owner = wizard
        self.working = False
        self._passed = False
        self.error = _ErrorLabel()
        self.progress = QLabel()
        self.progress.setObjectName("progress")
        self.progress.hide()

    def _run(self, text: str, work: Callable[[], Any], on_done: Callable[[Any], None]) -> bool:
        """Start ``work``; ``on_done(result)`` then Next again (it passes). Returns ``False`` (not yet)."""
        self.working = True
        self.error.say("")
        self.progress.setText(text)
        self.progress.show()
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)

        def done(result: Any) -> None:
            self._finish()
            on_done(result)
            if self.owner.currentPage() is self:  # not if the person went Back meanwhile
                self._passed = True
                self.owner.next()

        def failed(exc: Exception) -> None:
            self._finish()
            if isinstance(exc, ApplianceError):
                details = "; ".join(f"{field}: {text}" for field, text in exc.fields.items())
                self.error.say(exc.message + (f" — {details}" if details else ""))
            else:
                self.error.say(describe_error(exc))

        run_in_background(work, done, failed, owner=self)
        return False

    def _finish(self) -> None:
        self.working = False
        self.progress.hide()
        QGuiApplication.restoreOverrideCursor()

    def _take_pass(self) -> bool:
        """Whether the work just ended well (Next was pressed again by the page itself)."""
        passed, self._passed = self._passed, False
        return passed


def _fingerprint(email: str, name: str, password: str) -> tuple[str, str, str]:
    """What the admin page entered, to tell whether it changed since the admin was created (no password kept)."""
    return email.strip().lower(), name, hashlib.sha256(password.encode()).hexdigest()


class AdminPage(_BackgroundPage):
    def __init__(self, wizard: FirstRunWizard):
        super().__init__(wizard)
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
        # The admin this page made (Back then Next keeps or updates it) and what was entered for it.
        self.user_id: int | None = None
        self.created: tuple[str, str, str] | None = None
        form = QFormLayout(self)
        form.addRow("Email:", self.email)
        form.addRow("Name:", self.name)
        form.addRow("Password:", self.password)
        form.addRow("Password again:", self.confirm)
        form.addRow(self.progress)
        form.addRow(self.error)

    def validatePage(self) -> bool:
        if self._take_pass():
            return True
        if self.working:
            return False
        if self.password.text() != self.confirm.text():
            self.error.say("The two passwords differ.")
            return False
        entered = _fingerprint(self.email.text(), self.name.text(), self.password.text())
        if self.created == entered:
            self.error.say("")
            return True  # back, then next again with nothing changed: the admin exists already
        paths, user_id, created = self.owner.paths, self.user_id, self.created
        email, name, password = self.email.text(), self.name.text(), self.password.text()

        def work() -> tuple[int, str]:
            with offline_database(paths):
                if user_id is None:
                    user = create_user(email, name, "admin", password, actor=None)
                else:
                    user = update_user(user_id, {"email": email, "name": name})
                    if created is None or created[2] != entered[2]:
                        user = set_password(user_id, password, must_change=False)
                return user.id, user.email

        def done(result: tuple[int, str]) -> None:
            self.user_id, self.owner.admin_email = result
            self.created = entered

        what = "Creating the administrator…" if user_id is None else "Updating the administrator…"
        return self._run(what, work, done)


class StarterPage(_BackgroundPage):
    def __init__(self, wizard: FirstRunWizard):
        super().__init__(wizard)
        self.setTitle("Starter collections")
        self.load_box = QCheckBox("Load the starter collections (customers, inventory, orders)")
        layout = QVBoxLayout(self)
        layout.addWidget(self.load_box)
        layout.addWidget(self.progress)
        layout.addWidget(self.error)

    def validatePage(self) -> bool:
        if self._take_pass():
            return True
        if self.working:
            return False
        if not self.load_box.isChecked():
            return True
        paths = self.owner.paths

        def work() -> dict:
            with offline_database(paths) as instance:
                # Creates only the collections that do not exist yet: Back then Next loads nothing twice.
                return load_starter_collections(instance).to_dict()

        def done(result: dict) -> None:
            self.owner.loaded_starters = True
            self.owner.starter_result = result

        return self._run("Loading the starter collections…", work, done)


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
        reach = "everyone on the office network" if is_open_to_network(self.owner.host) else "this computer only"
        self.summary.setText(
            f"The appliance will listen on port {self.owner.port}, for {reach}. Sign in as {self.owner.admin_email} "
            "at the address the dashboard shows."
        )


class FirstRunWizard(QWizard):
    """Sets up a new home. After ``accept()``: ``port``, ``host``, ``admin_email``, ``start_server``."""

    def __init__(self, paths: Paths, parent: QWidget | None = None):
        super().__init__(parent)
        self.paths = paths
        self.port = 0
        self.host = LOCAL_ONLY_HOST
        self.admin_email = ""
        self.loaded_starters = False
        self.starter_result: dict | None = None
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
