"""The settings tab: every declared setting as a form, validated by the registry, written to ``appliance.toml``.

Nothing is written unless every changed value passes; the tab then says
which of the changes need a server restart and offers it. Opening the bind
address to the network shows a warning before saving. Each field has a label
and help shown under it, worded as on the admin settings page
(:mod:`appliance.config.labels`); a setting with fixed choices is a
drop-down of the values the registry accepts.

``backup_schedule`` is not shown: it only seeds the 'backup' job when that job
is first created, so editing it later would change nothing. The job's real
schedule is edited in the Jobs tab; the backups section says so and links there.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from appliance.config.home import Paths
from appliance.config.labels import GROUPS, setting_choices, setting_group, setting_help, setting_label
from appliance.config.registry import registry
from appliance.config.settings import load_settings, write_settings
from appliance.config.values import form_message, parse_text
from appliance.errors import ApplianceError, SettingsError
from appliance.server.addresses import HTTPS_WARNING, is_open_to_network, staff_urls
from console.client import run_in_background
from console.supervisor import RUNNING, STARTING, UNREACHABLE, Supervisor

# Settings this form leaves out, with why: see the module's docstring.
HIDDEN = {"backup_schedule"}
# The sections shown first, in this order; the rest follow as declared.
FIRST_SECTIONS = ("server", "mail", "backups")


def network_warning(host: str, port: int | None = None) -> str | None:
    """The warning for a bind address that serves more than this machine (with where staff open it), or ``None``."""
    if not is_open_to_network(host):
        return None
    where = host.strip() or "every address"
    urls = staff_urls(host, port) if port else []
    reach = f" Staff open {' or '.join(urls)}." if urls else ""
    return f"Listening on {where} opens the appliance to the office network.{reach} {HTTPS_WARNING}"


class SettingsTab(QWidget):
    """The form; ``restart_requested`` asks the window to restart the server."""

    restart_requested = Signal()
    jobs_tab_requested = Signal()
    saved = Signal(list)

    def __init__(self, paths: Paths, supervisor: Supervisor | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.paths = paths
        self.supervisor = supervisor
        self.editors: dict[str, QLineEdit | QCheckBox | QComboBox] = {}
        self.errors: dict[str, QLabel] = {}
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}

        form_host = QWidget()
        outer = QVBoxLayout(form_host)
        settings = registry()
        sections: list[str] = [s for s in FIRST_SECTIONS if any(x.section == s for x in settings.values())]
        sections += [s for s in dict.fromkeys(x.section for x in settings.values()) if s not in sections]
        # Basic first; Advanced (tuning, limits) in a part of its own, hidden until asked for.
        self.advanced_button = QPushButton("Show advanced settings")
        self.advanced_button.setObjectName("show-advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_part = QWidget()
        self.advanced_part.setObjectName("advanced-settings")
        advanced_layout = QVBoxLayout(self.advanced_part)
        advanced_layout.setContentsMargins(0, 0, 0, 0)
        self.advanced_button.toggled.connect(self.on_advanced_toggled)
        self.advanced_part.hide()
        for group, title in GROUPS:
            if group == "advanced":
                outer.addWidget(self.advanced_button)
            self._add_group(group, title, sections, outer if group == "basic" else advanced_layout)
        outer.addWidget(self.advanced_part)
        self._finish_form(form_host)

    def _add_group(self, group: str, title: str, sections: list[str], outer: QVBoxLayout) -> None:
        """One group box per section holding the group's settings of that section."""
        settings = registry()
        for section in sections:
            members = [
                x
                for x in settings.values()
                if x.section == section and x.name not in HIDDEN and setting_group(x.name) == group
            ]
            if not members:
                continue
            box = QGroupBox(
                f"{section.capitalize()} ({title.lower()})" if group == "advanced" else section.capitalize()
            )
            form = QFormLayout(box)
            for setting in members:
                editor: QLineEdit | QCheckBox | QComboBox
                if setting.type is bool:
                    editor = QCheckBox()
                elif setting.choices:
                    editor = QComboBox()
                    for value, text in setting_choices(setting):
                        editor.addItem(text, value)
                else:
                    editor = QLineEdit()
                    if setting.secret:
                        editor.setEchoMode(QLineEdit.EchoMode.Password)
                    editor.setPlaceholderText(setting.describe_accepted())
                editor.setObjectName(setting.name)
                tip = setting_help(setting)
                editor.setToolTip(tip)
                error = QLabel()
                error.setStyleSheet("color: #c62828;")
                error.setWordWrap(True)
                error.hide()
                help_label = QLabel(tip)
                help_label.setObjectName(f"{setting.name}-help")
                help_label.setWordWrap(True)
                help_label.setStyleSheet("color: #616161; font-size: 9pt;")
                cell = QVBoxLayout()
                cell.setSpacing(2)
                cell.addWidget(editor)
                cell.addWidget(help_label)
                cell.addWidget(error)
                label = QLabel(setting_label(setting.name) + (" *" if setting.restart else ""))
                label.setToolTip(setting.name)
                form.addRow(label, cell)
                self.editors[setting.name] = editor
                self.errors[setting.name] = error
            if section == "server" and group == "basic":
                self.host_warning = QLabel()
                self.host_warning.setWordWrap(True)
                self.host_warning.setStyleSheet("color: #ef6c00;")
                self.host_warning.hide()
                form.addRow(self.host_warning)
            if section == "backups" and group == "basic":
                jobs_note = QLabel(
                    "When backups run is the schedule of the 'backup' job: change it in the Jobs tab "
                    "(select 'backup', then Edit schedule…)."
                )
                jobs_note.setObjectName("backup-schedule-note")
                jobs_note.setWordWrap(True)
                self.jobs_button = QPushButton("Open the Jobs tab")
                self.jobs_button.clicked.connect(self.jobs_tab_requested)
                form.insertRow(0, jobs_note, self.jobs_button)
            if section == "mail" and group == "basic":
                self.test_mail_button = QPushButton("Send test email")
                self.test_mail_button.setToolTip("Sends with the saved settings: save your changes first.")
                self.test_mail_button.clicked.connect(self.on_test_mail_clicked)
                self.test_mail_to = QLineEdit()
                self.test_mail_to.setPlaceholderText("send the test to this address")
                row = QHBoxLayout()
                row.addWidget(self.test_mail_to, 1)
                row.addWidget(self.test_mail_button)
                form.addRow(row)
            outer.addWidget(box)

    def _finish_form(self, form_host: QWidget) -> None:
        host_editor = self.editors.get("host")
        if isinstance(host_editor, QLineEdit):
            host_editor.textChanged.connect(self.on_host_changed)
        port_editor = self.editors.get("port")
        if isinstance(port_editor, QLineEdit):
            port_editor.textChanged.connect(lambda _text: self.on_host_changed(self._host_text()))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form_host)

        self.message = QLabel("Settings marked * take effect after a restart.")
        self.message.setObjectName("settings-message")
        self.message.setWordWrap(True)
        self.save_button = QPushButton("Save")
        self.revert_button = QPushButton("Revert")
        self.restart_button = QPushButton("Restart the server now")
        self.restart_button.hide()
        self.save_button.clicked.connect(self.on_save_clicked)
        self.revert_button.clicked.connect(self.load)
        self.restart_button.clicked.connect(self.on_restart_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.message, 1)
        buttons.addWidget(self.restart_button)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)

        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addLayout(buttons)
        self.load()

    def load(self) -> None:
        """Fill the form from the file (and say which values the environment overrides)."""
        try:
            settings = load_settings(self.paths.settings_file)
        except SettingsError as exc:
            self.message.setText(f"The settings file cannot be read: {exc.message}")
            return
        self.values = dict(settings.values)
        self.sources = dict(settings.sources)
        for name, editor in self.editors.items():
            value = self.values.get(name)
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QComboBox):
                text = "" if value is None else str(value)
                if editor.findData(text) < 0:
                    editor.addItem(text, text)  # a value the file holds is shown as it is, even if refused
                editor.setCurrentIndex(editor.findData(text))
            else:
                editor.setText("" if value is None else str(value))
            self.errors[name].hide()
            if self.sources.get(name, "").startswith("environment"):
                editor.setEnabled(False)
                editor.setToolTip(f"Set by {self.sources[name]}; change it there.")
        self.on_host_changed(self.values.get("host", "127.0.0.1"))

    def _read_form(self) -> tuple[dict[str, Any], dict[str, str]]:
        changes: dict[str, Any] = {}
        problems: dict[str, str] = {}
        settings = registry()
        for name, editor in self.editors.items():
            if not editor.isEnabled():
                continue
            setting = settings[name]
            try:
                if isinstance(editor, QCheckBox):
                    value = editor.isChecked()
                elif isinstance(editor, QComboBox):
                    value = parse_text(setting, str(editor.currentData()))
                else:
                    value = parse_text(setting, editor.text())
            except SettingsError as exc:
                problems[name] = form_message(setting, exc)
                continue
            if value != self.values.get(name):
                changes[name] = value
        return changes, problems

    def save(self) -> list[str] | None:
        """Validate and write the changed values; returns their names, or ``None`` when something is refused."""
        for label in self.errors.values():
            label.hide()
        changes, problems = self._read_form()
        if problems:
            for name, text in problems.items():
                self.errors[name].setText(text)
                self.errors[name].show()
            if any(setting_group(name) == "advanced" for name in problems):
                self.advanced_button.setChecked(True)  # a refused value is never hidden
            self.message.setText(f"Nothing was saved: {len(problems)} value(s) need fixing.")
            return None
        if not changes:
            self.message.setText("Nothing changed.")
            return []
        try:
            write_settings(self.paths.settings_file, changes)
        except SettingsError as exc:
            name = exc.extra.get("setting")
            if name in self.errors:
                self.errors[name].setText(exc.message)
                self.errors[name].show()
            self.message.setText(f"Nothing was saved: {exc.message}")
            return None
        self.values.update(changes)
        settings = registry()
        needs_restart = [n for n in changes if settings[n].restart]
        running = self.supervisor is not None and self.supervisor.state in (RUNNING, STARTING, UNREACHABLE)
        text = f"Saved: {', '.join(sorted(changes))}."
        if needs_restart and running:
            text += f" A restart is needed for: {', '.join(sorted(needs_restart))}."
            self.restart_button.show()
        else:
            self.restart_button.hide()
        self.message.setText(text)
        self.saved.emit(sorted(changes))
        return sorted(changes)

    # --- slots -------------------------------------------------------------------

    def on_save_clicked(self) -> None:
        self.save()

    def on_restart_clicked(self) -> None:
        self.restart_button.hide()
        self.restart_requested.emit()

    def _host_text(self) -> str:
        editor = self.editors.get("host")
        return editor.text() if isinstance(editor, QLineEdit) else str(self.values.get("host", ""))

    def on_advanced_toggled(self, shown: bool) -> None:
        self.advanced_part.setVisible(shown)
        self.advanced_button.setText("Hide advanced settings" if shown else "Show advanced settings")

    def on_host_changed(self, host: str) -> None:
        if not hasattr(self, "host_warning"):
            return
        editor = self.editors.get("port")
        port_text = editor.text().strip() if isinstance(editor, QLineEdit) else ""
        warning = network_warning(host, int(port_text) if port_text.isdigit() else None)
        self.host_warning.setText(f"⚠ {warning}" if warning else "")
        self.host_warning.setVisible(bool(warning))

    def on_test_mail_clicked(self) -> None:
        """Send a test email with the saved settings, off the GUI thread."""
        to = self.test_mail_to.text().strip()
        if not to:
            self.message.setText("Enter the address the test email should go to.")
            return
        self.test_mail_button.setEnabled(False)
        self.message.setText(f"Sending a test email to {to}…")
        home = self.paths.home

        def send() -> None:
            from appliance.config.home import open_instance
            from appliance.jobs.mail import send_mail

            body = "This is a test email from the Office Appliance console. If you can read it, mail works."
            send_mail(open_instance(home).settings, [to], "Office Appliance test email", body)

        def done(_result: object) -> None:
            self.test_mail_button.setEnabled(True)
            self.message.setText(f"The test email to {to} was sent.")

        def failed(exc: Exception) -> None:
            self.test_mail_button.setEnabled(True)
            reason = exc.message if isinstance(exc, ApplianceError) else str(exc)
            self.message.setText(f"The test email could not be sent: {reason}")

        run_in_background(send, done, failed, owner=self)
