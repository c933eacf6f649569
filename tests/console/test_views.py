"""The logs tail, the traffic figures, the settings form, single instance and the first-run wizard."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from appliance.config.home import Paths
from appliance.config.settings import load_settings
from console.app import SingleInstance, needs_first_run
from console.logs_view import LogsTab
from console.settings_tab import SettingsTab
from console.traffic import Sample, TrafficTab, interval_between
from console.wizard import FirstRunWizard
from tests.console.conftest import free_port
from tests.mailbox import mailbox  # noqa: F401 - fixture


def _line(level: str, msg: str, ts: str = "2026-01-05T12:00:00.000Z") -> str:
    return json.dumps({"ts": ts, "level": level, "logger": "test", "msg": msg}) + "\n"


def test_the_logs_tab_follows_filters_pauses_and_copies(qtbot, tmp_path: Path):
    paths = Paths(tmp_path)
    paths.logs_dir.mkdir()
    app_log = paths.logs_dir / "app.log"
    app_log.write_text(_line("INFO", "server started") + _line("ERROR", "disk on fire"))
    tab = LogsTab(paths, interval_ms=60_000)
    qtbot.addWidget(tab)
    assert len(tab.model.shown) == 2
    with app_log.open("a") as fh:
        fh.write(_line("WARNING", "slow request"))
        fh.write('{"ts": "2026-01-05T12:00:01Z", "level": "INFO", "msg": "half a li')  # not finished yet
    (paths.logs_dir / "access.log").write_text(
        json.dumps({"ts": "2026-01-05T12:00:02Z", "level": "INFO", "method": "GET", "path": "/x", "status": 500}) + "\n"
    )
    assert tab.poll_once() == 2
    assert [line.level for line in tab.model.shown] == ["INFO", "ERROR", "WARNING", "ERROR"]

    tab.level_box.setCurrentText("WARNING")
    assert [line.text for line in tab.model.shown][:2] == ["disk on fire", "slow request"]
    tab.search_box.setText("FIRE")
    assert [line.text for line in tab.model.shown] == ["disk on fire"]
    tab.search_box.setText("")
    tab.level_box.setCurrentText("DEBUG")

    tab.pause_button.click()
    with app_log.open("a") as fh:
        fh.write('ne"}\n')
    tab.poll_once()
    assert len(tab.model.shown) == 4 and "1 waiting" in tab.count_label.text()
    tab.pause_button.click()
    assert tab.model.shown[-1].text == "half a line"

    tab.table.selectRow(1)
    tab.copy_button.click()
    assert json.loads(QGuiApplication.clipboard().text())["msg"] == "disk on fire"

    # A rotated log (the file replaced by a new, shorter one) is read from its start.
    app_log.unlink()
    app_log.write_text(_line("INFO", "after rotation"))
    assert tab.poll_once() == 1
    assert tab.model.shown[-1].text == "after rotation"


def test_a_long_log_opens_at_its_end_and_keeps_a_bounded_number_of_lines(qtbot, tmp_path: Path):
    paths = Paths(tmp_path)
    paths.logs_dir.mkdir()
    big = "".join(_line("INFO", f"line {i} " + "x" * 200) for i in range(20_000))
    (paths.logs_dir / "app.log").write_text(big)
    tab = LogsTab(paths, interval_ms=60_000)
    qtbot.addWidget(tab)
    shown = len(tab.model.shown)
    assert 0 < shown < 2000  # only the end of the file was read
    assert tab.model.shown[-1].text.startswith("line 19999 ")
    assert all(line.text.startswith("line ") for line in tab.model.shown)  # no half line at the cut


def test_a_full_log_buffer_drops_only_its_oldest_rows_and_keeps_the_selection(qtbot, tmp_path: Path):
    from PySide6.QtWidgets import QAbstractItemView, QTableView

    from console.logs_view import LogModel, parse_line

    model = LogModel(max_lines=6)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    model.set_filter(search="keep")
    lines = [parse_line("app", _line("INFO", f"{'keep' if i % 2 else 'drop'} {i}").strip()) for i in range(6)]
    model.append(lines)
    assert [line.text for line in model.shown] == ["keep 1", "keep 3", "keep 5"]
    view.selectRow(2)
    resets, removed = [], []
    model.modelReset.connect(lambda: resets.append(1))
    model.rowsRemoved.connect(lambda _parent, first, last: removed.append((first, last)))
    for i in range(6, 9):
        model.append([parse_line("app", _line("INFO", f"keep {i}").strip())])
    # Lines 0-2 fell out; of them only "keep 1" was shown: one row removed at the top, no reset.
    assert resets == [] and removed == [(0, 0)]
    assert [line.text for line in model.shown] == ["keep 3", "keep 5", "keep 6", "keep 7", "keep 8"]
    assert len(model.lines) == 6
    selected = [index.row() for index in view.selectionModel().selectedRows()]
    assert [model.shown[row].text for row in selected] == ["keep 5"]  # the same line is still selected
    assert [line.text for line in model.lines] == ["keep 3", "drop 4", "keep 5", "keep 6", "keep 7", "keep 8"]
    shown = list(model.shown)
    model.set_filter()  # a rebuild from the kept lines gives what the appends gave
    assert model.shown == shown


def test_times_are_shown_in_the_local_time_zone(qtbot, monkeypatch):
    import time

    from console.client import local_time
    from console.logs_view import LogModel, parse_line

    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9, no daylight saving
    time.tzset()
    try:
        assert local_time("2026-01-05T12:00:00Z") == "2026-01-05 21:00"
        assert local_time(None) == "—"
        model = LogModel()
        model.append([parse_line("app", _line("INFO", "hello", ts="2026-01-05T23:30:00.250Z").strip())])
        assert model.data(model.index(0, 0)) == "2026-01-06 08:30:00.250"
        assert model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole) == "2026-01-05T23:30:00.250Z (UTC)"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_notifications_are_sent_once_per_alert_however_its_figures_change(qtbot, make_window, console_home):
    import datetime as dt

    from console.window import SEEN_ALERTS_MAX

    window = make_window(console_home)
    now = dt.datetime.now(dt.UTC)

    def status(hours_old: float, free_mb: int, message: str) -> dict:
        created = (now - dt.timedelta(hours=hours_old)).isoformat()
        return {
            "last_backup": {"name": "backup-1.zip", "created_at": created, "verified": True},
            "disk": {"free_bytes": free_mb * 1024 * 1024},
            "alerts": [{"id": 7, "kind": "job_failed", "subject": "The backup job failed", "message": message}],
        }

    window.on_status(status(30, 400, "disk full"))
    window.on_status(status(31, 399, "disk full (again)"))
    window.on_status(status(32.5, 250, "disk full (third time)"))
    texts = [text for _title, text in window.tray.notifications]
    assert len(texts) == 3, texts  # the old backup, the low disk, the server's alert: once each
    assert any("1 d 6 h" in text for text in texts) and any("400 MB" in text for text in texts)
    assert "1 d 8 h" in " ".join(window.dashboard.alerts())  # the dashboard shows the figures of now
    for n in range(SEEN_ALERTS_MAX + 50):
        window._notify_once(f"test:{n}", f"alert {n}")
    assert len(window._seen_alerts) == SEEN_ALERTS_MAX


def test_traffic_rates_and_p95_come_from_the_difference_between_polls(qtbot):
    bounds = (1, 2, 5, 10)
    before = Sample(at=100.0, wall=1000.0, requests=100, errors=1, buckets=(50, 50, 0, 0, 0), bounds=bounds)
    after = Sample(at=110.0, wall=1010.0, requests=300, errors=11, buckets=(50, 60, 100, 80, 10), bounds=bounds)
    interval = interval_between(before, after)
    assert interval.requests_per_second == 20.0
    assert interval.error_rate == 5.0
    assert interval.p95_ms == 10.0  # 190 of the 200 new requests took at most 10 ms
    restarted = Sample(at=120.0, wall=1020.0, requests=5, errors=0, buckets=(5, 0, 0, 0, 0), bounds=bounds)
    assert interval_between(after, restarted) is None

    tab = TrafficTab()
    qtbot.addWidget(tab)
    status = {"metrics": {"requests": 10, "errors": 0, "buckets": [10, 0, 0, 0, 0], "buckets_ms": list(bounds)}}
    assert tab.add_status({**status, "_polled_at": 1.0}, wall=1000.0) is None
    status["metrics"] = {"requests": 30, "errors": 2, "buckets": [20, 10, 0, 0, 0], "buckets_ms": list(bounds)}
    interval = tab.add_status({**status, "_polled_at": 3.0}, wall=1002.0)
    assert interval.requests_per_second == 10.0 and interval.error_rate == 10.0
    assert tab.rate_chart.series.count() == 1
    assert "10.0 requests/s" in tab.summary.text()
    # Two seconds of data are spread over a short axis (a minute), not squeezed into the end of an hour.
    axis = tab.rate_chart.x_axis
    assert axis.max().toMSecsSinceEpoch() == 1002_000
    assert axis.min().toMSecsSinceEpoch() == (1002 - 60) * 1000
    status["metrics"] = {"requests": 40, "errors": 2, "buckets": [20, 20, 0, 0, 0], "buckets_ms": list(bounds)}
    tab.add_status({**status, "_polled_at": 1803.0}, wall=2802.0)
    assert axis.min().toMSecsSinceEpoch() == 1002_000  # half an hour of data: the axis starts at the first point


def test_settings_refuse_bad_values_and_change_nothing(qtbot, console_home: Path):
    paths = Paths(console_home)
    before = paths.settings_file.read_text()
    tab = SettingsTab(paths)
    qtbot.addWidget(tab)
    tab.editors["port"].setText("99999")
    tab.editors["workers"].setText("two")
    assert tab.save() is None
    assert paths.settings_file.read_text() == before
    assert "out of range" in tab.errors["port"].text()
    assert "not a whole number" in tab.errors["workers"].text()
    assert "Nothing was saved" in tab.message.text()


def test_settings_save_valid_changes_warn_about_the_network_and_name_what_needs_a_restart(qtbot, console_home: Path):
    paths = Paths(console_home)
    tab = SettingsTab(paths)
    qtbot.addWidget(tab)
    tab.show()
    tab.editors["host"].setText("0.0.0.0")
    assert tab.host_warning.isVisible() and "network" in tab.host_warning.text()
    tab.editors["host"].setText("127.0.0.1")
    assert not tab.host_warning.isVisible()
    port = free_port()
    tab.editors["port"].setText(str(port))
    level = tab.editors["log_level"]
    level.setCurrentIndex(level.findData("WARNING"))
    assert tab.save() == ["log_level", "port"]
    settings = load_settings(paths.settings_file, {})
    assert settings.port == port and settings.log_level == "WARNING"
    assert "Saved" in tab.message.text()


def test_the_settings_form_reads_as_words_with_help_and_choices(qtbot, console_home: Path):
    from PySide6.QtWidgets import QComboBox, QLabel

    from appliance.config.registry import registry

    paths = Paths(console_home)
    tab = SettingsTab(paths)
    qtbot.addWidget(tab)
    tab.show()
    security = tab.editors["smtp_security"]
    assert isinstance(security, QComboBox)
    assert [security.itemData(i) for i in range(security.count())] == ["starttls", "tls", "none"]
    assert security.itemText(0) == "STARTTLS (usually port 587)"
    labels = {label.text() for label in tab.findChildren(QLabel)}
    assert "SMTP security" in labels and "Shutdown grace (seconds) *" in labels and "Listen address *" in labels
    help_label = tab.findChild(QLabel, "smtp_security-help")
    assert help_label is not None and help_label.isVisibleTo(tab)
    assert registry()["smtp_security"].help in help_label.text()
    # The backup schedule only seeds the job: the form sends the person to the Jobs tab instead.
    assert "backup_schedule" not in tab.editors
    assert "Jobs tab" in tab.findChild(QLabel, "backup-schedule-note").text()
    with qtbot.waitSignal(tab.jobs_tab_requested, timeout=1000):
        tab.jobs_button.click()
    security.setCurrentIndex(security.findData("tls"))
    assert tab.save() == ["smtp_security"]
    assert load_settings(paths.settings_file, {}).smtp_security == "tls"


def test_the_settings_tab_refuses_digits_of_other_scripts(qtbot, console_home: Path):
    paths = Paths(console_home)
    before = paths.settings_file.read_text()
    tab = SettingsTab(paths)
    qtbot.addWidget(tab)
    tab.editors["port"].setText("\uff18\uff10\uff18\uff10")  # full-width 8080
    tab.editors["workers"].setText("\u0662")  # Arabic-Indic 2
    assert tab.save() is None
    assert paths.settings_file.read_text() == before
    assert "not a whole number" in tab.errors["port"].text()
    assert "not a whole number" in tab.errors["workers"].text()


def test_the_settings_tab_and_the_web_settings_page_call_a_setting_the_same(qtbot, console_home: Path, app, signed_in):
    from PySide6.QtWidgets import QLabel

    tab = SettingsTab(Paths(console_home))
    qtbot.addWidget(tab)
    console_labels = {label.text().removesuffix(" *") for label in tab.findChildren(QLabel)}
    page = signed_in("admin").get("/admin/settings").get_data(as_text=True)
    for name, label in (("smtp_timeout_seconds", "SMTP timeout (seconds)"), ("smtp_host", "SMTP server")):
        assert label in console_labels
        assert f'<label for="s-{name}" class="form-label">{label}</label>' in page
    assert "Listen address" in console_labels and "<td>Listen address<br>" in page
    security = tab.editors["smtp_security"]
    web_option = '<option value="starttls" selected>STARTTLS (usually port 587)</option>'
    assert security.itemText(security.findData("starttls")) == "STARTTLS (usually port 587)" and web_option in page


def test_a_second_console_of_the_same_home_raises_the_first(qtbot, tmp_path: Path):
    first = SingleInstance(tmp_path / "home")
    assert first.claim()
    try:
        other_home = SingleInstance(tmp_path / "other")
        assert other_home.claim()
        other_home.release()
        with qtbot.waitSignal(first.activated, timeout=5000):
            assert not SingleInstance(tmp_path / "home").claim()
    finally:
        first.release()
    again = SingleInstance(tmp_path / "home")
    assert again.claim()  # released: the next console is the first again
    again.release()


def test_the_first_run_wizard_sets_up_a_new_home_that_serves_its_starter_collections(
    qtbot, tmp_path: Path, make_window
):
    from appliance.config.settings import write_settings
    from appliance.records.demo import STARTER_COLLECTIONS
    from appliance.server.run_files import read_control_token
    from console.client import call_api
    from console.supervisor import RUNNING
    from tests.console.conftest import wait_state

    home = tmp_path / "new-home"
    paths = Paths(home)
    assert needs_first_run(paths)
    wizard = FirstRunWizard(paths)
    qtbot.addWidget(wizard)
    wizard.show()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        wizard.port_page.port_box.setValue(busy.getsockname()[1])
        wizard.next()
        assert wizard.currentPage() is wizard.port_page
        assert "already in use" in wizard.port_page.error.text()
    finally:
        busy.close()
    port = free_port()
    wizard.port_page.port_box.setValue(port)
    wizard.next()
    assert wizard.currentPage() is wizard.admin_page
    assert load_settings(paths.settings_file, {}).port == port

    page = wizard.admin_page
    page.email.setText("not an email")
    page.name.setText("Ada")
    page.password.setText("short")
    page.confirm.setText("short")
    wizard.next()  # the check runs off the GUI thread
    qtbot.waitUntil(lambda: not page.working, timeout=20_000)
    assert wizard.currentPage() is page
    assert "email" in page.error.text() and "password" in page.error.text()
    page.email.setText("Ada@Example.com")
    page.password.setText("correct horse battery staple 42")
    page.confirm.setText("correct horse battery staple 42")
    wizard.next()
    assert wizard.currentPage() is page and page.working  # hashing the password does not block the window
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.starter_page, timeout=20_000)

    # Back, then Next again: the admin made before is kept, not created twice (which would be refused).
    wizard.back()
    assert wizard.currentPage() is page
    wizard.next()
    assert wizard.currentPage() is wizard.starter_page
    wizard.back()
    page.name.setText("Ada Lovelace")  # a change is applied to the same admin
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.starter_page, timeout=20_000)
    assert page.error.text() == ""

    wizard.starter_page.load_box.setChecked(True)
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.done_page, timeout=60_000)
    assert wizard.loaded_starters
    assert "ada@example.com" in wizard.done_page.summary.text()
    assert wizard.start_server
    wizard.accept()
    assert not needs_first_run(paths)

    # What run_console does next: the main window starts the server the wizard set up.
    write_settings(paths.settings_file, {"workers": 1, "shutdown_grace_seconds": 2.0})
    window = make_window(home)
    with qtbot.waitSignal(window.status_received, timeout=30_000):
        window.start_watching(start_server=wizard.start_server)
    wait_state(qtbot, window.supervisor, RUNNING)
    assert window.client.base_url == f"http://127.0.0.1:{port}/"
    assert call_api(window.client.base_url, None, "GET", "/readyz") is not None
    token = read_control_token(paths)
    users = call_api(window.client.base_url, token, "GET", "/api/users")["items"]
    assert [(u["email"], u["name"], u["role"]) for u in users] == [("ada@example.com", "Ada Lovelace", "admin")]
    answer = call_api(window.client.base_url, token, "GET", "/api/collections")
    items = answer["items"] if isinstance(answer, dict) else answer
    assert set(STARTER_COLLECTIONS) <= {c["name"] for c in items}


def test_send_test_email_reaches_a_real_smtp_server(qtbot, console_home: Path, mailbox):  # noqa: F811
    from appliance.config.settings import write_settings

    paths = Paths(console_home)
    write_settings(paths.settings_file, mailbox.settings())
    tab = SettingsTab(paths)
    qtbot.addWidget(tab)
    tab.test_mail_to.setText("admin@example.com")
    tab.test_mail_button.click()
    qtbot.waitUntil(lambda: "was sent" in tab.message.text(), timeout=10_000)
    assert mailbox.messages and "admin@example.com" in mailbox.messages[0]["To"]


def test_send_test_email_says_why_it_failed(qtbot, console_home: Path):
    tab = SettingsTab(Paths(console_home))
    qtbot.addWidget(tab)
    tab.test_mail_to.setText("admin@example.com")
    tab.test_mail_button.click()
    qtbot.waitUntil(lambda: "could not be sent" in tab.message.text(), timeout=10_000)
    assert "SMTP is not set up" in tab.message.text()
    assert tab.test_mail_button.isEnabled()
