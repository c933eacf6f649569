"""The status API reports the users online and the last restore drill; the backups API shows each drill."""

from __future__ import annotations

from appliance.backups.archive import create_backup
from appliance.backups.drill import run_restore_drill
from tests.conftest import browser_sign_in


def test_the_status_shows_the_users_online_and_the_last_restore_drill(personas, instance, live_server):
    control = {"Authorization": f"Bearer {live_server.control_token}"}
    status = live_server.get("/api/system/status", headers=control).json()
    assert status["users_online"] == 0 and status["last_restore_drill"] is None

    admin, _ = browser_sign_in(live_server.url, personas.admin.email, personas.admin.password)
    browser_sign_in(live_server.url, personas.editor.email, personas.editor.password)
    browser_sign_in(live_server.url, personas.editor.email, personas.editor.password)  # a second browser
    backup = create_backup(instance.paths)
    drill = run_restore_drill(instance.paths)  # beside the running server: it never touches the live data
    assert drill["outcome"] == "ok", drill["problems"]

    status = live_server.get("/api/system/status", headers=control).json()
    assert status["users_online"] == 2
    shown = status["last_restore_drill"]
    assert shown["backup"] == backup.path.name and shown["outcome"] == "ok" and shown["at"] == drill["at"]
    assert "integrity ok" in shown["message"]

    as_admin = admin.get(live_server.url + "api/system/status", timeout=10).json()
    assert as_admin["users_online"] == 2 and as_admin["last_restore_drill"] == shown
    [item] = admin.get(live_server.url + "api/backups", timeout=10).json()["items"]
    assert item["name"] == backup.path.name and item["drill"] == shown
