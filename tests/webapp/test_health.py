"""Liveness and readiness."""

from __future__ import annotations

from appliance.storage.db import database


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_answers_200_on_a_migrated_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_readyz_answers_503_when_a_migration_is_missing(client):
    import webapp.health

    webapp.health._ready_until = 0.0
    database.execute_sql("DELETE FROM schema_migration WHERE name = '0001_settings'")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "0001_settings" in response.get_json()["pending"]


def test_the_status_api_needs_the_control_token(client, instance):
    assert client.get("/api/system/status").status_code == 401
    assert client.get("/api/system/status", headers={"Authorization": "Bearer wrong"}).status_code == 403
    instance.paths.control_token.write_text("the-token")
    response = client.get("/api/system/status", headers={"Authorization": "Bearer the-token"})
    assert response.status_code == 200
    assert response.get_json()["database"]["engine"] == "sqlite"
