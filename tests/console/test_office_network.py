"""Reaching the appliance from the office network: the wizard's choice, the dashboard's addresses, the
settings tab's warning and its basic and advanced parts."""

from __future__ import annotations

from pathlib import Path

from appliance.config.home import Paths
from appliance.config.settings import load_settings
from appliance.server.addresses import HTTPS_WARNING, staff_urls
from console.dashboard import DashboardTab
from console.settings_tab import SettingsTab
from console.supervisor import RUNNING, STOPPED
from console.wizard import FirstRunWizard
from tests.console.conftest import free_port


def _port_page(qtbot, tmp_path: Path):
    wizard = FirstRunWizard(Paths(tmp_path / "home"))
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.port_page
    page.port_box.setValue(free_port())
    return wizard, page


def test_the_wizard_asks_who_opens_it_and_writes_this_computer_only_by_default(qtbot, tmp_path: Path):
    wizard, page = _port_page(qtbot, tmp_path)
    assert page.local_button.isChecked() and page.local_button.text() == "Only this computer"
    assert page.network_button.text() == "Everyone on the office network"
    assert not page.warning.isVisible()
    assert page.validatePage()
    settings = load_settings(wizard.paths.settings_file, {})
    assert settings.host == "127.0.0.1" and settings.port == page.port_box.value()


def test_choosing_the_office_network_listens_everywhere_and_warns_about_https(qtbot, tmp_path: Path):
    wizard, page = _port_page(qtbot, tmp_path)
    page.network_button.setChecked(True)
    assert page.warning.isVisible() and page.warning.text() == HTTPS_WARNING and "HTTPS" in HTTPS_WARNING
    port = page.port_box.value()
    for url in staff_urls("0.0.0.0", port):
        assert url in page.reach.text()
    assert page.validatePage()
    assert load_settings(wizard.paths.settings_file, {}).host == "0.0.0.0"
    assert wizard.host == "0.0.0.0"
    page.local_button.setChecked(True)
    assert not page.warning.isVisible() and "Only a browser on this computer" in page.reach.text()


def test_the_dashboard_shows_the_office_network_addresses_only_when_it_listens_there(qtbot, console_home: Path):
    tab = DashboardTab(Paths(console_home))
    qtbot.addWidget(tab)
    tab.show()
    tab.set_state(RUNNING, {"url": "http://127.0.0.1:8765/", "host": "10.20.30.40", "port": 8765})
    assert tab.lan_label.isVisible() and "http://10.20.30.40:8765/" in tab.lan_label.text()
    tab.set_state(RUNNING, {"url": "http://127.0.0.1:8765/", "host": "0.0.0.0", "port": 8765})
    expected = staff_urls("0.0.0.0", 8765)
    assert tab.lan_label.isVisible() == bool(expected) and all(u in tab.lan_label.text() for u in expected)
    tab.set_state(RUNNING, {"url": "http://127.0.0.1:8765/", "host": "127.0.0.1", "port": 8765})
    assert not tab.lan_label.isVisible()
    tab.set_state(STOPPED, None)
    assert not tab.lan_label.isVisible()


def test_the_settings_tab_warns_about_https_with_the_staff_address(qtbot, console_home: Path):
    tab = SettingsTab(Paths(console_home))
    qtbot.addWidget(tab)
    tab.show()
    tab.editors["port"].setText("8765")
    tab.editors["host"].setText("10.20.30.40")
    text = tab.host_warning.text()
    assert tab.host_warning.isVisible() and "http://10.20.30.40:8765/" in text and HTTPS_WARNING in text


def test_the_settings_tab_keeps_advanced_settings_folded_until_asked_or_refused(qtbot, console_home: Path):
    tab = SettingsTab(Paths(console_home))
    qtbot.addWidget(tab)
    tab.show()
    assert tab.editors["smtp_host"].isVisible() and tab.editors["backup_keep_daily"].isVisible()
    assert not tab.editors["argon2_memory_kib"].isVisible()
    assert not tab.editors["sqlite_busy_timeout_ms"].isVisible()
    tab.advanced_button.click()
    assert tab.editors["argon2_memory_kib"].isVisible()
    tab.advanced_button.click()
    assert not tab.editors["argon2_memory_kib"].isVisible()
    tab.editors["log_backups"].setText("many")
    assert tab.save() is None
    assert tab.editors["log_backups"].isVisible() and tab.errors["log_backups"].isVisible()
