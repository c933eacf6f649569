"""Users, backups and jobs through the console (online against a real server, and offline), and screenshots."""

from __future__ import annotations

from pathlib import Path

from appliance.home import Paths
from console.supervisor import RUNNING, STOPPED
from console.window import STOP
from tests.console.conftest import wait_state


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
    from console.client import call_api, read_control_token

    answer = call_api(window.client.base_url, read_control_token(Paths(console_home)), "GET", "/api/users")
    assert "grace@example.com" in [u["email"] for u in answer["items"]]

    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        tab.set_role(grace["id"], "viewer")
    assert next(u for u in tab.users if u["id"] == grace["id"])["role"] == "viewer"
    with qtbot.waitSignal(tab.failed, timeout=10_000) as refused:
        tab.add_user("grace@example.com", "Grace again", "viewer")
    assert "exists" in refused.args[0] or "taken" in refused.args[0]


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
    with qtbot.waitSignal(tab.done, timeout=10_000) as done:
        tab.sign_out_everywhere(alan["id"])
    assert "signed out everywhere" in done.args[0]


def test_a_backup_made_and_restored_through_the_console_brings_the_old_data_back(qtbot, make_window, console_home):
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
    with qtbot.waitSignal(backups.restore_finished, timeout=60_000) as restored:
        backups.restore(name)
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
    with qtbot.waitSignal(jobs.loaded, timeout=10_000):
        assert jobs.change("backup", {"schedule": "every 6h", "enabled": False})
    backup_job = next(j for j in jobs.jobs if j["name"] == "backup")
    assert backup_job["schedule"] == "every 6h" and not backup_job["enabled"]


def test_every_tab_renders_something(qtbot, make_window, console_home, tmp_path):
    window = _running_window(qtbot, make_window, console_home)
    window.show()
    with qtbot.waitSignal(window.status_received, timeout=10_000):
        pass  # a second status: the traffic chart has a point
    shots = tmp_path / "shots"
    shots.mkdir()
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.waitExposed(window)
        image = window.grab().toImage()
        path = shots / f"{index}-{window.tabs.tabText(index).lower()}.png"
        assert image.save(str(path))
        colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
        assert len(colours) > 5, f"tab {window.tabs.tabText(index)} looks blank"
    assert len(list(shots.glob("*.png"))) == window.tabs.count() == 7


def test_closing_the_window_can_stop_the_server(qtbot, make_window, console_home):
    window = _running_window(qtbot, make_window, console_home)
    window.ask_close = lambda: STOP
    with qtbot.waitSignal(window.supervisor.state_changed, check_params_cb=lambda s: s == STOPPED, timeout=20_000):
        window.close()
    assert not (console_home / "run" / "server.json").exists()
    wait_state(qtbot, window.supervisor, STOPPED)


def test_a_run_missed_while_the_server_was_off_is_an_alert_in_plain_words(qtbot, make_window, console_home):
    import datetime as dt

    from appliance.jobs import Job, ensure_jobs
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
