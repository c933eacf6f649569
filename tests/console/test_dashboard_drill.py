"""The dashboard's "users online" and "last restore drill" figures, from a real server and from the home."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from appliance.backups.archive import create_backup
from appliance.backups.drill import run_restore_drill
from appliance.config.home import Paths
from console.dashboard import NOT_AVAILABLE, RESTORE_DRILL_ABSENT, USERS_ONLINE_ABSENT, DashboardTab
from console.supervisor import RUNNING, STOPPED
from tests.conftest import browser_sign_in
from tests.console.conftest import wait_state


def test_the_dashboard_shows_users_online_and_the_last_drill_from_a_real_server_and_offline(
    qtbot, make_window, console_home, personas, instance
):
    create_backup(instance.paths)
    assert run_restore_drill(instance.paths)["outcome"] == "ok"
    window = make_window(console_home)
    figures = window.dashboard.figures
    assert figures["restore_drill"].text().endswith("ago, passed"), "read from the backups folder while stopped"

    window.start_watching()
    wait_state(qtbot, window.supervisor, RUNNING, timeout=30_000)
    url = window.supervisor.info["url"]
    browser_sign_in(url, personas.admin.email, personas.admin.password)
    browser_sign_in(url, personas.viewer.email, personas.viewer.password)
    qtbot.waitUntil(lambda: figures["users_online"].text() == "2", timeout=15_000)
    assert "5 minutes" in figures["users_online"].toolTip()
    assert figures["restore_drill"].text().endswith("ago, passed")
    assert "integrity ok" in figures["restore_drill"].toolTip()

    with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == STOPPED, timeout=20_000):
        window.dashboard.stop_button.click()
    assert figures["users_online"].text() == NOT_AVAILABLE
    assert figures["restore_drill"].text().endswith("ago, passed")


def test_the_dashboard_says_when_the_server_reports_no_drill_or_a_failed_one(qtbot, tmp_path: Path):
    tab = DashboardTab(Paths(tmp_path))
    qtbot.addWidget(tab)
    tab.show_status({"version": "1"})  # a server that reports neither
    assert tab.figures["users_online"].text() == NOT_AVAILABLE
    assert tab.figures["users_online"].toolTip() == USERS_ONLINE_ABSENT
    assert tab.figures["restore_drill"].text() == NOT_AVAILABLE
    assert tab.figures["restore_drill"].toolTip() == RESTORE_DRILL_ABSENT

    tab.show_status({"users_online": 0, "last_restore_drill": None})
    assert tab.figures["users_online"].text() == "0"
    assert tab.figures["restore_drill"].text() == "none yet"

    at = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).isoformat()
    message = "restore drill of backup-1.zip failed: member db/appliance.sqlite3 cannot be read"
    tab.show_status(
        {"last_restore_drill": {"at": at, "backup": "backup-1.zip", "outcome": "failed", "message": message}}
    )
    text = tab.figures["restore_drill"].text()
    assert text.startswith("3 h") and text.endswith("ago, FAILED"), text
    assert tab.figures["restore_drill"].toolTip() == message
