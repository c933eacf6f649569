"""The jobs API and /admin/jobs: who may do what, schedule validation, run now, history; against a real
server for the scheduler's side (changes and run-now requests reach the parent process)."""

from __future__ import annotations

import pytest
import requests

from appliance.jobs.runner import run_job
from appliance.storage.db import database
from appliance.storage.models import Job, JobRun
from tests.conftest import ADMIN, browser_sign_in, by_role, csrf_token_in
from tests.waiting import eventually

API_TABLE = [
    ("GET", "/api/jobs", None, by_role(200, 403, 401)),
    ("GET", "/api/jobs/backup", None, by_role(200, 403, 401)),
    ("GET", "/api/jobs/nope", None, by_role(404, 403, 401)),
    ("PATCH", "/api/jobs/cleanup", {"enabled": True}, by_role(200, 403, 401)),
    ("PATCH", "/api/jobs/cleanup", {"schedule": "nonsense"}, by_role(422, 403, 401)),
    ("POST", "/api/jobs/cleanup/run", None, by_role(202, 403, 401)),
    ("GET", "/api/jobs/cleanup/runs", None, by_role(200, 403, 401)),
    ("GET", "/api/jobs/nope/runs", None, by_role(404, 403, 401)),
]


def test_the_jobs_api_answers_each_persona_as_the_access_table_says(client, personas, headers):
    wrong = []
    for method, path, body, statuses in API_TABLE:
        for who, status in statuses.items():
            answer = client.open(path, method=method, json=body, headers=headers[who])
            if answer.status_code != status:
                wrong.append(f"{who} {method} {path}: {answer.status_code}, expected {status}: {answer.text[:200]}")
            elif status >= 400:
                assert answer.get_json()["error"]["code"]
    assert not wrong, "\n".join(wrong)


def test_a_read_token_cannot_change_a_job(client, personas, api_token_for):
    read = {"Authorization": f"Bearer {api_token_for(personas.admin.email, 'read')}"}
    assert client.get("/api/jobs", headers=read).status_code == 200
    assert client.patch("/api/jobs/backup", json={"enabled": False}, headers=read).status_code == 403
    assert client.post("/api/jobs/backup/run", headers=read).status_code == 403


def test_jobs_are_listed_with_schedule_last_and_next_run(client, headers):
    listing = client.get("/api/jobs", headers=headers[ADMIN]).get_json()
    assert listing["total_items"] == 5 and listing["page"] == 1
    names = [item["name"] for item in listing["items"]]
    assert names == ["backup", "cleanup", "db_maintenance", "prune_backups", "restore_drill"]
    item = listing["items"][0]
    assert set(item) >= {"name", "schedule", "enabled", "last_run", "next_run", "last_outcome"}
    assert item["schedule"] == "0 2 * * *"


def test_a_bad_cron_expression_is_refused_with_the_reason(client, headers):
    answer = client.patch("/api/jobs/backup", json={"schedule": "0 2 * *"}, headers=headers[ADMIN])
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert "has 4 field(s)" in error["fields"]["schedule"]
    answer = client.patch("/api/jobs/backup", json={"schedule": "0 2 * * *", "colour": "red"}, headers=headers[ADMIN])
    assert answer.status_code == 422 and "colour" in answer.get_json()["error"]["fields"]
    assert client.get("/api/jobs/backup", headers=headers[ADMIN]).get_json()["schedule"] == "0 2 * * *"


def test_changing_a_schedule_answers_the_new_plan_and_is_audited(client, headers):
    answer = client.patch("/api/jobs/backup", json={"schedule": "30 1 * * *"}, headers=headers[ADMIN])
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["schedule"] == "30 1 * * *"
    assert body["next_run"].endswith(":30:00Z")
    answer = client.patch("/api/jobs/backup", json={"enabled": False}, headers=headers[ADMIN])
    assert answer.get_json()["enabled"] is False and answer.get_json()["next_run"] is None
    audit = client.get("/api/audit?action=job.updated", headers=headers[ADMIN]).get_json()
    assert audit["total_items"] == 2


def test_the_runs_of_a_job_are_listed_newest_first(client, instance, headers):
    with database.connection_context():
        run_job(instance, "db_maintenance", trigger="cli")
        run_job(instance, "db_maintenance", trigger="cli")
    listing = client.get("/api/jobs/db_maintenance/runs?page_size=1", headers=headers[ADMIN]).get_json()
    assert listing["total_items"] == 2 and listing["total_pages"] == 2
    [run] = listing["items"]
    assert run["outcome"] == "ok" and run["trigger"] == "cli" and "optimized" in run["message"]
    assert client.get("/api/jobs/db_maintenance/runs?page=0", headers=headers[ADMIN]).status_code == 400


def test_through_a_real_server_a_change_and_a_run_now_reach_the_scheduler(personas, api_token_for, live_server):
    auth = {"Authorization": f"Bearer {api_token_for(personas.admin.email)}"}
    changed = live_server.request("PATCH", "/api/jobs/cleanup", json={"schedule": "every 7h"}, headers=auth)
    assert changed.status_code == 200
    assert live_server.request("POST", "/api/jobs/cleanup/run", headers=auth).status_code == 202

    def finished_runs() -> list:
        runs = live_server.get("/api/jobs/cleanup/runs", headers=auth).json()["items"]
        return runs if runs and runs[0]["outcome"] != "running" else []

    runs = eventually(finished_runs, timeout=20, interval=0.1, message="the requested run did not finish")
    assert runs[0]["trigger"] == "manual" and runs[0]["outcome"] == "ok"
    with database.connection_context():
        assert JobRun.get_by_id(runs[0]["id"]).pid == live_server.info["pid"], "run in the server's parent process"
        # The scheduler re-planned the job from its new interval (about 7 h from its sync).
        planned = Job.get_by_id("cleanup").next_run_at
    status = live_server.get("/api/system/status", headers=auth).json()
    assert {"last_backup", "jobs", "next_job", "alerts"} <= set(status)
    cleanup = next(job for job in status["jobs"] if job["name"] == "cleanup")
    assert cleanup["schedule"] == "every 7h" and cleanup["last_outcome"] == "ok"
    assert planned is not None


def test_the_jobs_page_changes_a_schedule_and_shows_a_bad_one_with_its_reason(personas, live_server):
    session, _token = browser_sign_in(live_server.url, personas.admin.email, personas.admin.password)
    page = session.get(live_server.url + "admin/jobs", timeout=10)
    assert page.status_code == 200 and "db_maintenance" in page.text and "Run now" in page.text
    bad = session.post(
        live_server.url + "admin/jobs/backup",
        data={"csrf_token": csrf_token_in(page.text), "schedule": "99 * * * *", "enabled": "yes"},
        timeout=10,
    )
    assert bad.status_code == 422
    assert "is-invalid" in bad.text and "99" in bad.text
    good = session.post(
        live_server.url + "admin/jobs/backup",
        data={"csrf_token": csrf_token_in(page.text), "schedule": "15 3 * * *", "enabled": "yes"},
        timeout=10,
    )
    assert good.status_code == 200 and "was changed" in good.text and 'value="15 3 * * *"' in good.text
    ran = session.post(
        live_server.url + "admin/jobs/cleanup/run", data={"csrf_token": csrf_token_in(page.text)}, timeout=10
    )
    assert ran.status_code == 200 and "will start within seconds" in ran.text
    history = session.get(live_server.url + "admin/jobs/cleanup/runs", timeout=10)
    assert history.status_code == 200 and "Runs of cleanup" in history.text
    editor, _ = browser_sign_in(live_server.url, personas.editor.email, personas.editor.password)
    assert editor.get(live_server.url + "admin/jobs", timeout=10, allow_redirects=False).status_code == 403
    assert requests.get(live_server.url + "admin/jobs", timeout=10, allow_redirects=False).status_code == 302


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"enabled": "yes"}, 422, "enabled"),
        ({"options": [1, 2]}, 422, "options"),
        ({"schedule": 5}, 422, "schedule"),
        ("not an object", 400, None),
    ],
)
def test_bad_job_changes_are_refused_clearly_and_change_nothing(client, headers, body, status, field):
    before = client.get("/api/jobs/cleanup", headers=headers[ADMIN]).get_json()
    answer = client.patch("/api/jobs/cleanup", json=body, headers=headers[ADMIN])
    assert answer.status_code == status
    error = answer.get_json()["error"]
    assert error["message"]
    if field:
        assert field in error["fields"]
    assert client.get("/api/jobs/cleanup", headers=headers[ADMIN]).get_json() == before


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [("every 99999999999999d", "at most 366 days"), ("0 2 30 2 *", "never fires"), ("every 400d", "at most 366 days")],
)
def test_a_schedule_that_overflows_or_never_fires_is_refused_with_its_reason(client, headers, schedule, reason):
    before = client.get("/api/jobs/cleanup", headers=headers[ADMIN]).get_json()
    answer = client.patch("/api/jobs/cleanup", json={"schedule": schedule}, headers=headers[ADMIN])
    assert answer.status_code == 422, answer.text
    assert reason in answer.get_json()["error"]["fields"]["schedule"]
    assert client.get("/api/jobs/cleanup", headers=headers[ADMIN]).get_json() == before


def test_last_run_is_a_timestamp_beside_last_outcome_in_the_jobs_list_and_the_status(client, instance, headers):
    with database.connection_context():
        run = run_job(instance, "db_maintenance", trigger="cli")
    started = run.started_at.isoformat(timespec="seconds") + "Z"
    [item] = [
        j for j in client.get("/api/jobs", headers=headers[ADMIN]).get_json()["items"] if j["name"] == "db_maintenance"
    ]
    status = client.get("/api/system/status", headers=headers[ADMIN]).get_json()
    [listed] = [j for j in status["jobs"] if j["name"] == "db_maintenance"]
    for job in (item, listed):
        assert job["last_run"] == started
        assert job["last_outcome"] == "ok"
    assert client.get("/api/jobs/cleanup", headers=headers[ADMIN]).get_json()["last_run"] is None


def test_a_request_nobody_signed_in_for_writes_no_job_rows(client, instance):
    with database.connection_context():
        assert Job.select().count() == 0
    assert client.get("/api/jobs").status_code == 401
    assert client.patch("/api/jobs/backup", json={"enabled": False}).status_code in (401, 403)
    with database.connection_context():
        assert Job.select().count() == 0


def test_acknowledging_alerts_never_redirects_to_another_site(personas, live_server):
    session, _token = browser_sign_in(live_server.url, personas.admin.email, personas.admin.password)
    page = session.get(live_server.url + "admin/jobs", timeout=10)
    for target in ("https://evil.example/phish", "//evil.example/phish", "/\\evil.example"):
        answer = session.post(
            live_server.url + "admin/alerts/acknowledge",
            data={"csrf_token": csrf_token_in(page.text), "next": target},
            timeout=10,
            allow_redirects=False,
        )
        assert answer.status_code == 302
        assert "evil.example" not in answer.headers["Location"], answer.headers["Location"]
    back = session.post(
        live_server.url + "admin/alerts/acknowledge",
        data={"csrf_token": csrf_token_in(page.text), "next": "/admin/backups"},
        timeout=10,
        allow_redirects=False,
    )
    assert back.headers["Location"].endswith("/admin/backups")
