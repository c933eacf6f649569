"""The logs tail, the traffic figures, the settings form, single instance and the first-run wizard."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from PySide6.QtGui import QGuiApplication

from appliance.home import Paths
from appliance.settings import load_settings
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
    tab.editors["log_level"].setText("WARNING")
    assert tab.save() == ["log_level", "port"]
    settings = load_settings(paths.settings_file, {})
    assert settings.port == port and settings.log_level == "WARNING"
    assert "Saved" in tab.message.text()


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


def test_the_first_run_wizard_sets_up_a_new_home(qtbot, tmp_path: Path):
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
    wizard.next()
    assert wizard.currentPage() is page
    assert "email" in page.error.text() and "password" in page.error.text()
    page.email.setText("Ada@Example.com")
    page.password.setText("correct horse battery staple 42")
    page.confirm.setText("correct horse battery staple 42")
    wizard.next()
    assert wizard.currentPage() is wizard.starter_page
    wizard.next()
    assert wizard.currentPage() is wizard.done_page
    assert "ada@example.com" in wizard.done_page.summary.text()
    assert wizard.start_server
    assert not needs_first_run(paths)


def test_send_test_email_reaches_a_real_smtp_server(qtbot, console_home: Path, mailbox):  # noqa: F811
    from appliance.settings import write_settings

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
