"""``POST /api/users/<id>/unlock`` and the Unlock button of /admin/users: an admin lifts a sign-in lock-out."""

from __future__ import annotations

from appliance.audit import list_events
from tests.conftest import post_form


def lock_out(client, email: str, tries: int = 5) -> None:
    """Lock ``email``'s account the real way: failed sign-ins through the API, until it answers 429."""
    for _ in range(tries):
        assert client.post("/api/auth/token", json={"email": email, "password": "wrong-password-x"}).status_code == 401
    assert sign_in(client, email, "wrong-password-x").status_code == 429


def sign_in(client, email: str, password: str):
    return client.post("/api/auth/token", json={"email": email, "password": password})


def test_an_admin_unlocks_a_locked_out_user_who_may_then_sign_in(client, personas, headers):
    viewer = personas.viewer
    lock_out(client, viewer.email)
    assert sign_in(client, viewer.email, viewer.password).status_code == 429  # the right password too

    answer = client.post(f"/api/users/{viewer.id}/unlock", headers=headers["admin"])
    assert answer.status_code == 200
    assert answer.get_json()["email"] == viewer.email and "password_hash" not in answer.get_json()
    assert sign_in(client, viewer.email, viewer.password).status_code == 201
    events = list(list_events(action="user.unlocked", target=viewer.email))
    assert [(event.actor, event.details) for event in events] == [(personas.admin.email, '{"lifted": true}')]


def test_only_an_admin_may_unlock_and_an_unknown_user_is_404(client, personas, headers):
    viewer = personas.viewer
    lock_out(client, viewer.email)
    for who in ("editor", "viewer"):
        assert client.post(f"/api/users/{viewer.id}/unlock", headers=headers[who]).status_code == 403
    assert client.post(f"/api/users/{viewer.id}/unlock").status_code == 401
    assert sign_in(client, viewer.email, viewer.password).status_code == 429  # the refusals changed nothing
    assert client.post("/api/users/999999/unlock", headers=headers["admin"]).status_code == 404


def test_the_users_page_shows_a_locked_out_user_with_an_unlock_button(client, signed_in, personas):
    editor = personas.editor
    lock_out(client, editor.email)
    admin = signed_in("admin")
    page = admin.get("/admin/users").get_data(as_text=True)
    button = f'action="/admin/users/{editor.id}/unlock"'
    assert page.count("locked out") == 1 and button in page
    assert f'action="/admin/users/{personas.viewer.id}/unlock"' not in page  # not locked: no button

    answer = post_form(admin, f"/admin/users/{editor.id}/unlock", {}, token_from="/admin/users")
    assert answer.status_code == 302
    assert "locked out" not in admin.get("/admin/users").get_data(as_text=True)
    assert sign_in(client, editor.email, editor.password).status_code == 201
    assert [event.actor for event in list_events(action="user.unlocked")] == [personas.admin.email]


def test_a_non_admin_may_not_press_unlock(signed_in, personas):
    editor = signed_in("editor")
    answer = post_form(editor, f"/admin/users/{personas.viewer.id}/unlock", {}, token_from="/account")
    assert answer.status_code == 403
