"""The error shape of API.md, pinned in one place."""

from __future__ import annotations

import pytest
from flask import Blueprint

from appliance.errors import Conflict, NotFound, Throttled, ValidationFailed


@pytest.fixture
def failing_app(app):
    bp = Blueprint("failing", __name__)

    @bp.get("/api/_test/validation")
    def validation():
        raise ValidationFailed({"email": "Enter a valid email address.", "name": "This field is required."})

    @bp.get("/api/_test/conflict")
    def conflict():
        raise Conflict("That email is taken.", fields={"email": "That email is taken."})

    @bp.get("/_test/missing")
    def missing_page():
        raise NotFound("No such record.")

    @bp.get("/api/_test/throttled")
    def throttled():
        raise Throttled("Too many attempts; try again in 1 minute.", retry_after=42)

    @bp.get("/api/_test/crash")
    def crash():
        raise RuntimeError("boom with a secret inside")

    app.register_blueprint(bp)
    return app


def test_a_validation_error_has_the_exact_shape_of_the_contract(failing_app):
    response = failing_app.test_client().get("/api/_test/validation")
    assert response.status_code == 422
    assert response.get_json() == {
        "error": {
            "code": "validation_failed",
            "message": "2 fields are invalid",
            "fields": {"email": "Enter a valid email address.", "name": "This field is required."},
        }
    }


def test_a_conflict_answers_409_with_the_field(failing_app):
    response = failing_app.test_client().get("/api/_test/conflict")
    assert response.status_code == 409
    assert response.get_json()["error"]["fields"] == {"email": "That email is taken."}


def test_an_unknown_api_path_answers_json_404(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_wrong_method_answers_json_405(app):
    app.config["WTF_CSRF_ENABLED"] = False  # CSRF refuses a cookie POST before routing; here routing is tested
    response = app.test_client().post("/healthz")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_an_unexpected_error_answers_500_without_leaking_details(failing_app):
    response = failing_app.test_client().get("/api/_test/crash")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"]["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True)


def test_outside_the_api_an_error_is_a_page(failing_app):
    response = failing_app.test_client().get("/_test/missing")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "No such record." in response.get_data(as_text=True)


def test_a_throttled_answer_says_when_to_retry_in_the_header_and_the_body(failing_app):
    response = failing_app.test_client().get("/api/_test/throttled")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "42"
    assert response.get_json()["error"] == {
        "code": "throttled",
        "message": "Too many attempts; try again in 1 minute.",
        "retry_after": 42,
    }


def test_the_error_page_uses_the_layout(failing_app):
    page = failing_app.test_client().get("/_test/missing").get_data(as_text=True)
    assert "404 · Not Found" in page
    assert "navbar" in page
