"""The backups API, /admin/backups and the status sections: access, create, list, download, busy."""

from __future__ import annotations

import io
import zipfile

from appliance.backups.catalogue import exclusive_operation
from tests.conftest import ADMIN, browser_sign_in, by_role, csrf_token_in


def test_the_backups_api_answers_each_persona_as_the_access_table_says(client, headers):
    table = [
        ("GET", "/api/backups", by_role(200, 403, 401)),
        ("POST", "/api/backups", by_role(201, 403, 401)),
        ("GET", "/api/backups/backup-19990101T000000Z.zip/download", by_role(404, 403, 401)),
        ("GET", "/api/backups/..secret.zip/download", by_role(400, 403, 401)),
        ("GET", "/api/backups/..%2Fsecret.zip/download", by_role(404, 404, 404)),
    ]
    wrong = []
    for method, path, statuses in table:
        for who, status in statuses.items():
            answer = client.open(path, method=method, headers=headers[who])
            if answer.status_code != status:
                wrong.append(f"{who} {method} {path}: {answer.status_code}, expected {status}: {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_a_backup_made_through_the_api_is_verified_listed_and_downloadable(client, instance, headers):
    made = client.post("/api/backups", headers=headers[ADMIN])
    assert made.status_code == 201
    item = made.get_json()
    assert item["verified"] is True and item["verification"]["integrity_check"] == "ok"
    assert set(item) >= {"name", "size", "created_at", "verified", "verification"}
    listing = client.get("/api/backups", headers=headers[ADMIN]).get_json()
    assert listing["total_items"] == 1 and listing["items"][0]["name"] == item["name"]
    with client.get(f"/api/backups/{item['name']}/download", headers=headers[ADMIN]) as download:
        assert download.status_code == 200
        assert download.headers["Content-Type"] == "application/zip"
        assert item["name"] in download.headers["Content-Disposition"]
        data = download.data
    assert data == (instance.paths.backups_dir / item["name"]).read_bytes()
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_a_second_backup_while_one_runs_answers_busy(client, instance, headers):
    with exclusive_operation(instance.paths, "restore"):
        answer = client.post("/api/backups", headers=headers[ADMIN])
    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "busy"
    assert "busy" in answer.get_json()["error"]["message"]


def test_the_status_shows_the_last_backup_the_jobs_and_open_alerts(client, headers, instance, tmp_path):
    from appliance.config.settings import write_settings

    status = client.get("/api/system/status", headers=headers[ADMIN]).get_json()
    assert status["last_backup"] is None and status["alerts"] == []
    write_settings(instance.home / "appliance.toml", {"backup_offsite_dir": str(tmp_path / "unplugged")})
    made = client.post("/api/backups", headers=headers[ADMIN]).get_json()
    assert made["verified"] and made["verification"]["offsite"]["ok"] is False
    status = client.get("/api/system/status", headers=headers[ADMIN]).get_json()
    assert status["last_backup"]["name"] == made["name"] and status["last_backup"]["verified"] is True
    assert {job["name"] for job in status["jobs"]} == {
        "backup",
        "cleanup",
        "db_maintenance",
        "prune_backups",
        "restore_drill",
    }
    [alert] = status["alerts"]
    assert alert["kind"] == "offsite_failed" and "unplugged" in alert["message"]


def test_the_backups_page_makes_and_lists_backups_with_their_verification(personas, live_server):
    session, _token = browser_sign_in(live_server.url, personas.admin.email, personas.admin.password)
    page = session.get(live_server.url + "admin/backups", timeout=10)
    assert page.status_code == 200 and "No backups yet" in page.text
    made = session.post(live_server.url + "admin/backups", data={"csrf_token": csrf_token_in(page.text)}, timeout=60)
    assert made.status_code == 200
    assert "was written and verified" in made.text
    assert 'badge bg-success">verified' in made.text
    editor, _ = browser_sign_in(live_server.url, personas.editor.email, personas.editor.password)
    assert editor.get(live_server.url + "admin/backups", timeout=10, allow_redirects=False).status_code == 403
