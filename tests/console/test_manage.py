"""Users, backups and jobs through the console (online against a real server, and offline), and screenshots."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from appliance.config.home import Paths
from console.supervisor import RUNNING, STOPPED
from console.window import STOP
from tests.conftest import start_server
from tests.console.conftest import wait_state


def _session_version(home: Path, user_id: int) -> int:
    from appliance.accounts.users import get_user
    from console.offline import offline_database

    with offline_database(Paths(home)):
        return get_user(user_id).session_version


def _audit_actors(home: Path, action: str) -> list[str]:
    from appliance.audit import list_events
    from console.offline import offline_database

    with offline_database(Paths(home)):
        return [event.actor for event in list_events(action=action)]


def _confirm_with(monkeypatch, answer, *, with_settings: bool = False) -> list[str]:
    """Answer the next restore confirmation box (the real modal one) with ``answer``, ticking its settings box
    when ``with_settings``; returns the texts it was asked with, each followed by the box's checkbox label."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    asked: list[str] = []
    timer = QTimer(QApplication.instance())
    tries = [0]

    def answer_box() -> None:
        tries[0] += 1
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            timer.stop()
            check = box.checkBox()
            asked.append(box.text() + "\n[ ] " + (check.text() if check else "(no checkbox)"))
            if with_settings and check is not None:
                check.setChecked(True)
            box.button(answer).click()
        elif tries[0] > 1000:  # about 20 s: no box came
            timer.stop()

    timer.timeout.connect(answer_box)
    timer.start(20)
    return asked


def _backup_job(jobs) -> dict:
    return next((j for j in jobs.jobs if j["name"] == "backup"), {"schedule": None})


def _running_window(qtbot, make_window, home: Path):
    window = make_window(home)
    with qtbot.waitSignal(window.status_received, timeout=30_000):
        window.start_watching()
    return window


def test_a_user_added_through_the_console_exists_on_the_server_with_a_one_time_password(
    qtbot, make_window, console_home
):
    window = _running_window(qtbot, make_window, console_home)
    tab = window.users
    with qtbot.waitSignal(tab.one_time_password_shown, timeout=20_000) as shown:
        tab.add_user("Grace@Example.com", "Grace", "editor")
    email, password = shown.args
    assert email == "grace@example.com" and len(password) >= 12
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        pass
    grace = next(u for u in tab.users if u["email"] == "grace@example.com")
    assert grace["role"] == "editor" and grace["active"]

    # The server itself knows her, and the change went through its API (an audit event by the control token).
    from appliance.server.run_files import read_control_token
    from console.client import call_api

    answer = call_api(window.client.base_url, read_control_token(Paths(console_home)), "GET", "/api/users")
    assert "grace@example.com" in [u["email"] for u in answer["items"]]

    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        tab.set_role(grace["id"], "viewer")
    assert next(u for u in tab.users if u["id"] == grace["id"])["role"] == "viewer"
    with qtbot.waitSignal(tab.failed, timeout=10_000) as refused:
        tab.add_user("grace@example.com", "Grace again", "viewer")
    assert "exists" in refused.args[0] or "taken" in refused.args[0]

    # Sign out everywhere goes through the server's admin API while it runs (its audit names the control token).
    before = _session_version(console_home, grace["id"])
    with qtbot.waitSignal(tab.done, timeout=10_000) as done:
        tab.sign_out_everywhere(grace["id"])
    assert "signed out everywhere" in done.args[0]
    assert _session_version(console_home, grace["id"]) == before + 1
    assert _audit_actors(console_home, "user.signed_out_everywhere") == ["control"]


def test_users_are_managed_through_the_core_while_the_server_is_stopped(qtbot, make_window, console_home):
    window = make_window(console_home)
    window.start_watching(start_server=False)
    assert window.supervisor.state == STOPPED
    tab = window.users
    with qtbot.waitSignal(tab.one_time_password_shown, timeout=20_000):
        tab.add_user("alan@example.com", "Alan", "editor")
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        pass
    alan = next(u for u in tab.users if u["email"] == "alan@example.com")
    assert alan["role"] == "editor"
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        tab.set_active(alan["id"], False)
    assert not next(u for u in tab.users if u["id"] == alan["id"])["active"]
    with qtbot.waitSignal(tab.one_time_password_shown, timeout=20_000):
        tab.reset_password(alan["id"])
    before = _session_version(console_home, alan["id"])
    with qtbot.waitSignal(tab.done, timeout=10_000) as done:
        tab.sign_out_everywhere(alan["id"])
    assert "signed out everywhere" in done.args[0]
    assert _session_version(console_home, alan["id"]) == before + 1

    # The email column takes the spare width, not the id; times are local, as the clock on the wall.
    from PySide6.QtWidgets import QHeaderView

    from console.client import local_time

    header = tab.table.horizontalHeader()
    assert not header.stretchLastSection()
    assert header.sectionResizeMode(0) == QHeaderView.ResizeMode.Stretch
    row = next(r for r in range(tab.table.rowCount()) if tab.table.item(r, 0).text() == "alan@example.com")
    assert tab.table.item(row, 4).text() == local_time(alan["created_at"])


def test_a_backup_made_and_restored_through_the_console_brings_the_old_data_back(
    qtbot, make_window, console_home, monkeypatch
):
    window = _running_window(qtbot, make_window, console_home)
    users, backups = window.users, window.backups
    with qtbot.waitSignal(users.one_time_password_shown, timeout=20_000):
        users.add_user("before@example.com", "Before", "viewer")
    with qtbot.waitSignal(backups.done, timeout=60_000) as made:
        backups.create_backup()
    assert "verified" in made.args[0] and "NOT" not in made.args[0]
    with qtbot.waitSignal(backups.loaded, timeout=10_000):
        pass
    name = backups.items[0]["name"]
    assert backups.items[0]["verified"]

    with qtbot.waitSignal(users.one_time_password_shown, timeout=20_000):
        users.add_user("after@example.com", "After", "viewer")
    first_pid = window.supervisor.child_pid
    from PySide6.QtWidgets import QMessageBox

    from appliance.backups.catalogue import find_backup
    from console.backups_tab import archive_summary
    from console.client import local_time

    asked = _confirm_with(monkeypatch, QMessageBox.StandardButton.Cancel)
    backups.table.selectRow(0)
    backups.on_restore_clicked()  # cancelled: nothing happens
    assert len(asked) == 1 and not backups.restoring and window.supervisor.child_pid == first_pid
    manifest = archive_summary(find_backup(Paths(console_home), name))
    text = asked[0]
    assert f"Restore {name}?" in text
    assert f"Made {local_time(manifest['created_at'])} " in text
    assert re.search(r"holding .*\b1 user\b", text) and "roles" not in text  # bookkeeping tables are not named
    assert "started again afterwards" in text
    assert f"job schedules and records go back to how they were at {local_time(manifest['created_at'])}." in text

    asked = _confirm_with(monkeypatch, QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(backups.restore_finished, timeout=60_000) as restored:
        backups.on_restore_clicked()
    assert len(asked) == 1
    result = restored.args[0]
    assert result["restored"] == name and result["safety_backup"]
    assert window.supervisor.state == RUNNING and window.supervisor.child_pid != first_pid
    assert "running again" in backups.message.text()
    with qtbot.waitSignal(users.loaded, timeout=20_000):
        users.refresh()
    emails = {u["email"] for u in users.users}
    assert "before@example.com" in emails and "after@example.com" not in emails


def test_a_restore_works_with_the_server_stopped_and_a_bad_schedule_is_refused(qtbot, make_window, console_home):
    window = make_window(console_home)
    window.start_watching(start_server=False)
    backups, jobs = window.backups, window.jobs
    with qtbot.waitSignal(backups.done, timeout=60_000):
        backups.create_backup()
    with qtbot.waitSignal(backups.loaded, timeout=10_000):
        pass
    name = backups.items[0]["name"]
    with qtbot.waitSignal(backups.done, timeout=30_000):
        backups.verify(name)
    assert "is sound" in backups.message.text()
    with qtbot.waitSignal(backups.restore_finished, timeout=60_000) as restored:
        backups.restore(name)
    assert restored.args[0]["restored"] == name
    assert window.supervisor.state == STOPPED

    with qtbot.waitSignal(jobs.loaded, timeout=10_000):
        jobs.refresh()
    assert "backup" in [j["name"] for j in jobs.jobs]
    assert not jobs.change("backup", {"schedule": "61 25 * * *"})
    assert "refused" in jobs.message.text()
    assert jobs.change("backup", {"schedule": "every 6h", "enabled": False})
    qtbot.waitUntil(lambda: jobs.busy == 0 and _backup_job(jobs)["schedule"] == "every 6h", timeout=10_000)
    assert not _backup_job(jobs)["enabled"]


def test_after_an_offline_restore_the_users_and_jobs_tabs_show_the_restored_data(qtbot, make_window, console_home):
    window = make_window(console_home)
    window.start_watching(start_server=False)
    users, backups, jobs = window.users, window.backups, window.jobs
    with qtbot.waitSignal(backups.done, timeout=60_000):
        backups.create_backup()
    with qtbot.waitSignal(backups.loaded, timeout=10_000):
        pass
    name = backups.items[0]["name"]
    with qtbot.waitSignal(users.one_time_password_shown, timeout=20_000):
        users.add_user("after@example.com", "After", "viewer")
    with qtbot.waitSignal(users.loaded, timeout=10_000):
        pass
    jobs.change("backup", {"schedule": "every 6h"})
    qtbot.waitUntil(lambda: jobs.busy == 0 and _backup_job(jobs)["schedule"] == "every 6h", timeout=10_000)
    assert "after@example.com" in [u["email"] for u in users.users]

    order: list[str] = []
    users.loaded.connect(lambda _users: order.append("users loaded"))
    jobs.loaded.connect(lambda _jobs: order.append("jobs loaded"))
    backups.restore_finished.connect(lambda _result: order.append("restore finished"))
    with qtbot.waitSignal(backups.restore_started, timeout=5_000):
        backups.restore(name)
    # While the database is swapped: a refresh waits, a change is refused, the server cannot be started.
    users.refresh()
    assert not window.dashboard.start_button.isEnabled()
    with qtbot.waitSignal(users.failed, timeout=5_000) as refused:
        users.set_role(users.users[0]["id"], "editor")
    assert "restore is running" in refused.args[0]
    with qtbot.waitSignal(backups.restore_finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: "users loaded" in order and "jobs loaded" in order, timeout=10_000)
    assert order[0] == "restore finished"
    assert order.count("users loaded") == 1  # the waiting refresh ran once, after the restore
    assert "after@example.com" not in [u["email"] for u in users.users]
    assert _backup_job(jobs)["schedule"] != "every 6h"
    assert window.dashboard.start_button.isEnabled()


def test_a_restore_does_not_replace_an_attached_server_with_a_console_child(
    qtbot, make_window, console_home, monkeypatch
):
    from PySide6.QtWidgets import QMessageBox

    server = start_server(console_home, workers=1)
    try:
        window = make_window(console_home)
        with qtbot.waitSignal(window.status_received, timeout=20_000):
            window.start_watching()
        backups = window.backups
        assert window.supervisor.attached
        with qtbot.waitSignal(backups.done, timeout=60_000):
            backups.create_backup()
        with qtbot.waitSignal(backups.loaded, timeout=10_000):
            pass
        name = backups.items[0]["name"]
        asked = _confirm_with(monkeypatch, QMessageBox.StandardButton.Yes)
        backups.table.selectRow(0)
        with qtbot.waitSignal(backups.restore_finished, timeout=60_000) as restored:
            backups.on_restore_clicked()
        assert "start it again afterwards the way it runs" in asked[0]
        assert restored.args[0]["restored"] == name
        assert server.process.wait(timeout=10) == 0
        assert window.supervisor.state == STOPPED and not window.supervisor.owns_child
        assert "start it again the way it was started" in backups.message.text()
        assert not (console_home / "run" / "server.json").exists()
    finally:
        server.stop()


def test_a_restore_gives_up_waiting_for_a_server_that_does_not_stop(qtbot, make_window, console_home):
    server = start_server(console_home, workers=1)
    try:
        window = make_window(console_home)
        with qtbot.waitSignal(window.status_received, timeout=20_000):
            window.start_watching()
        backups = window.backups
        with qtbot.waitSignal(backups.done, timeout=60_000):
            backups.create_backup()
        with qtbot.waitSignal(backups.loaded, timeout=10_000):
            pass
        name = backups.items[0]["name"]
        backups.restore_wait_ms = 1000
        os.kill(server.process.pid, signal.SIGSTOP)  # it cannot act on the SIGTERM
        try:
            with qtbot.waitSignal(backups.restore_finished, timeout=10_000) as finished:
                backups.restore(name)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert finished.args[0] is None
        assert "did not stop within 1 s" in backups.message.text() and "nothing was restored" in backups.message.text()
        assert not backups.restoring and backups.buttons["restore"].isEnabled()
        assert window.supervisor.auto_restart
        assert server.process.wait(timeout=10) == 0  # the SIGTERM was acted on once it could run
    finally:
        server.stop()


def _colours(image, step: int = 5) -> set[int]:
    return {image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)}


def test_every_tab_renders_something(qtbot, make_window, console_home, tmp_path):
    from PySide6.QtWidgets import QWidget

    window = _running_window(qtbot, make_window, console_home)
    window.show()
    with qtbot.waitSignal(window.status_received, timeout=10_000):
        pass  # a second status: the traffic chart has a point
    with qtbot.waitSignal(window.users.loaded, timeout=10_000):
        window.users.refresh()
    shots = tmp_path / "shots"
    shots.mkdir()
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.waitExposed(window)
        tab = window.tabs.currentWidget()
        # An empty widget of the same size is what "blank" looks like here (background, style).
        empty = QWidget()
        empty.resize(tab.size())
        blank = empty.grab().toImage()
        image = tab.grab().toImage()
        title = window.tabs.tabText(index)
        assert image.size() == blank.size() and image.width() > 300 and image.height() > 300
        assert image.save(str(shots / f"{index}-{title.lower()}.png"))
        colours, blank_colours = _colours(image), _colours(blank)
        assert len(colours) > len(blank_colours) + 5, f"tab {title} looks blank"
        differing = sum(
            image.pixel(x, y) != blank.pixel(x, y)
            for x in range(0, image.width(), 9)
            for y in range(0, image.height(), 9)
        )
        total = len(range(0, image.width(), 9)) * len(range(0, image.height(), 9))
        assert differing > total * 0.02, f"tab {title} is almost all background"
    assert len(list(shots.glob("*.png"))) == window.tabs.count() == 8


def test_closing_the_window_can_stop_the_server(qtbot, make_window, console_home):
    window = _running_window(qtbot, make_window, console_home)
    window.ask_close = lambda: STOP
    with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == STOPPED, timeout=20_000):
        window.close()
    assert not (console_home / "run" / "server.json").exists()
    wait_state(qtbot, window.supervisor, STOPPED)


def test_a_run_missed_while_the_server_was_off_is_an_alert_in_plain_words(qtbot, make_window, console_home):
    import datetime as dt

    from appliance.jobs.definitions import ensure_jobs
    from appliance.storage.models import Job
    from console.offline import offline_database

    paths = Paths(console_home)
    with offline_database(paths) as instance:
        ensure_jobs(instance.settings)
        two_am = dt.datetime.now(dt.UTC).replace(hour=2, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
        Job.update(next_run_at=two_am.replace(tzinfo=None)).where(Job.name == "backup").execute()
    window = make_window(console_home)
    with qtbot.waitSignal(window.jobs.loaded, timeout=10_000):
        window.start_watching(start_server=False)
    qtbot.waitUntil(lambda: any("did not run" in a for a in window.dashboard.alerts()), timeout=5_000)
    alert = next(a for a in window.dashboard.alerts() if "did not run" in a)
    assert alert.startswith("The nightly backup did not run: the server was off at")
    assert ("Office Appliance", alert) in window.tray.notifications
    assert "when the server runs" in window.dashboard.figures["next_job"].text()


def test_the_restore_confirmation_keeps_the_settings_unless_its_box_is_ticked(
    qtbot, make_window, console_home, monkeypatch
):
    from PySide6.QtWidgets import QMessageBox

    from appliance.config.settings import write_settings
    from console.backups_tab import SETTINGS_CHECKBOX

    settings_file = console_home / "appliance.toml"
    write_settings(settings_file, {"smtp_host": "mail.then"})
    window = make_window(console_home)
    window.start_watching(start_server=False)
    backups = window.backups
    with qtbot.waitSignal(backups.done, timeout=60_000):
        backups.create_backup()
    with qtbot.waitSignal(backups.loaded, timeout=10_000):
        pass
    name = backups.items[-1]["name"]
    write_settings(settings_file, {"smtp_host": "mail.now"})
    backups.table.selectRow(next(i for i, item in enumerate(backups.items) if item["name"] == name))

    asked = _confirm_with(monkeypatch, QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(backups.restore_finished, timeout=60_000) as restored:
        backups.on_restore_clicked()
    assert SETTINGS_CHECKBOX in asked[0] and "is kept as it is unless you tick the box" in asked[0]
    assert restored.args[0]["restored"] == name and restored.args[0]["settings"] == "kept"
    assert 'smtp_host = "mail.now"' in settings_file.read_text()

    with qtbot.waitSignal(backups.loaded, timeout=10_000):
        backups.refresh()
    backups.table.selectRow(next(i for i, item in enumerate(backups.items) if item["name"] == name))
    asked = _confirm_with(monkeypatch, QMessageBox.StandardButton.Yes, with_settings=True)
    with qtbot.waitSignal(backups.restore_finished, timeout=60_000) as restored:
        backups.on_restore_clicked()
    assert len(asked) == 1 and restored.args[0]["settings"] == "restored"
    assert 'smtp_host = "mail.then"' in settings_file.read_text()
    assert "The settings were brought back too." in backups.message.text()
