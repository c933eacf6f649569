"""Who may open which page and call which endpoint of the accounts area, against a real server.

Each row is (persona, method, path, expected status, body). Pages are visited
with a browser session (cookie + CSRF token, as the forms send it); the API
is called with each persona's write token. The disabled persona signed in
while still active and was disabled afterwards: its old session is refused
everywhere (pages send it to /login, the API answers 401). The outsider has
no account.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import ADMIN, DISABLED, EDITOR, EVERYONE, OUTSIDER, VIEWER, browser_sign_in, by_role, csrf_token_in

SIGNED_IN = (ADMIN, EDITOR, VIEWER)


def expect(path_method: tuple[str, str], statuses: dict[str, int], body: dict | None = None):
    method, path = path_method
    return [(who, method, path, statuses[who], body) for who in EVERYONE]


def only(who: str, method: str, path: str, status: int, body: dict | None = None):
    """A row for one persona (for a resource that belongs to someone)."""
    return [(who, method, path, status, body)]


# In bodies, {email} and {password} are the persona's own.
OWN_CREDENTIALS = {"email": "{email}", "password": "{password}"}
WRONG_PASSWORD = {"email": "{email}", "password": "not-the-password-at-all"}
NEW_USER_FORM = {
    "email": "made-by-form@example.com",
    "name": "Form",
    "role": "viewer",
    "password": "a-fine-long-password",
}
NEW_USER_API = {"email": "made-by-api@example.com", "name": "Api", "role": "viewer", "password": "a-fine-long-password"}


# {editor}, {viewer} and {disabled} are replaced by those personas' user ids, {victim} by a spare user's,
# and {editor_token...}/{viewer_token...} by the ids of spare API tokens of those personas.
PAGE_TABLE = [
    *expect(("POST", "/login"), by_role(401, 401, 401), WRONG_PASSWORD),
    *expect(("GET", "/"), by_role(200, 200, 302)),
    *expect(("GET", "/account"), by_role(200, 200, 302)),
    *expect(("GET", "/login"), by_role(302, 302, 200)),
    *expect(("GET", "/logout"), by_role(200, 200, 302)),
    *expect(("GET", "/setup/not-a-real-link"), by_role(404, 404, 404)),
    *expect(("GET", "/admin/users"), by_role(200, 403, 302)),
    *expect(("GET", "/admin/users/{viewer}"), by_role(200, 403, 302)),
    *expect(("GET", "/admin/users/999999"), by_role(404, 403, 302)),
    *expect(("POST", "/admin/users"), by_role(422, 403, 302)),
    *expect(("POST", "/admin/roles"), by_role(422, 403, 302)),
    *expect(("POST", "/admin/users/{viewer}"), by_role(422, 403, 302)),
    *expect(("POST", "/admin/users/{viewer}/password"), by_role(422, 403, 302)),
    *expect(("POST", "/admin/users/{viewer}/delete"), by_role(422, 403, 302)),
    *expect(("POST", "/admin/users/{viewer}/unlock"), by_role(302, 403, 302)),
    *expect(("POST", "/admin/users/999999/unlock"), by_role(404, 403, 302)),
    *expect(("POST", "/admin/users/999999/tokens/999999/revoke"), by_role(404, 403, 302)),
    *expect(("POST", "/account/tokens"), by_role(422, 422, 302)),
    *expect(("POST", "/account/password"), by_role(422, 422, 302)),
    *expect(("POST", "/account/tokens/999999/revoke"), by_role(404, 404, 302)),
    *expect(("POST", "/setup/not-a-real-link"), by_role(404, 404, 404)),
    # Rows that change state come last; each is undone or harmless to the rows after it.
    *expect(("POST", "/admin/users"), by_role(302, 403, 302), NEW_USER_FORM),
    *only(EDITOR, "POST", "/account/tokens/{viewer_token_page}/revoke", 404),  # another's token: unknown
    *only(VIEWER, "POST", "/account/tokens/{viewer_token_page}/revoke", 302),  # one's own
    *only(ADMIN, "POST", "/admin/users/{editor}/tokens/{editor_token_page}/revoke", 302),
    *expect(("POST", "/admin/users/{disabled}/enable"), by_role(302, 403, 302)),
    *expect(("POST", "/admin/users/{disabled}/disable"), by_role(302, 403, 302)),
    *expect(("POST", "/account/sign-out-everywhere"), by_role(302, 302, 302)),
    *expect(("GET", "/account"), by_role(302, 302, 302)),  # signed out everywhere
    *expect(("POST", "/login"), by_role(302, 302, 401), OWN_CREDENTIALS),
    *expect(("GET", "/account"), by_role(200, 200, 302)),  # signed in again
    *expect(("POST", "/logout"), by_role(302, 302, 302)),
    *expect(("GET", "/account"), by_role(302, 302, 302)),
]
# Rows after which a persona's CSRF token is new (the session was replaced or ended).
SESSION_CHANGING = {("POST", "/login"), ("POST", "/account/sign-out-everywhere"), ("POST", "/logout")}

API_TABLE = [
    *expect(("GET", "/api/me"), by_role(200, 200, 401)),
    *expect(("GET", "/api/users"), by_role(200, 403, 401)),
    *expect(("POST", "/api/users"), by_role(422, 403, 401), {}),
    *expect(("GET", "/api/users/{viewer}"), by_role(200, 403, 401)),
    *expect(("GET", "/api/users/999999"), by_role(404, 403, 401)),
    *expect(("PATCH", "/api/users/{viewer}"), by_role(200, 403, 401), {"name": "Carol C."}),
    *expect(("PATCH", "/api/users/{viewer}"), by_role(400, 403, 401), {"password_hash": "x"}),
    *expect(("DELETE", "/api/users/999999"), by_role(404, 403, 401)),
    *expect(("POST", "/api/users/{viewer}/unlock"), by_role(200, 403, 401)),
    *expect(("POST", "/api/users/999999/unlock"), by_role(404, 403, 401)),
    *expect(("GET", "/api/roles"), by_role(200, 200, 401)),
    *expect(("POST", "/api/roles"), by_role(422, 403, 401), {}),
    *expect(("GET", "/api/tokens"), by_role(200, 200, 401)),
    *expect(("GET", "/api/tokens?user={editor}"), by_role(200, 403, 401)),
    *expect(("DELETE", "/api/tokens/999999"), by_role(404, 404, 401)),
    # webapp/system.py answers any token it does not accept (the disabled user's too) with 403.
    *expect(("GET", "/api/system/status"), by_role(200, 403, 401)),
    *expect(("GET", "/metrics"), by_role(200, 403, 401)),
    # Rows that change state come last.
    *expect(("POST", "/api/users"), by_role(201, 403, 401), NEW_USER_API),
    *expect(("POST", "/api/roles"), by_role(201, 403, 401), {"name": "clerk", "label": "Clerk"}),
    *expect(("DELETE", "/api/roles/viewer"), by_role(409, 403, 401)),
    *expect(("DELETE", "/api/roles/clerk"), by_role(204, 403, 401)),
    *expect(("DELETE", "/api/users/{victim}"), by_role(204, 403, 401)),
    *only(EDITOR, "DELETE", "/api/tokens/{viewer_token_api}", 404),  # another's token: unknown
    *only(VIEWER, "DELETE", "/api/tokens/{viewer_token_api}", 204),  # one's own
    *only(ADMIN, "DELETE", "/api/tokens/{editor_token_api}", 204),  # an admin, another's
    *only(DISABLED, "DELETE", "/api/tokens/{editor_token_page}", 401),
    *only(OUTSIDER, "DELETE", "/api/tokens/{editor_token_page}", 401),
    *expect(("POST", "/api/me/sign-out-everywhere"), by_role(204, 204, 401)),
]


def _fill(path: str, personas, ids: dict[str, int]) -> str:
    return path.format(editor=personas.editor.id, viewer=personas.viewer.id, disabled=personas.disabled.id, **ids)


def _body(body: dict | None, persona) -> dict:
    return {key: value.format(email=persona.email, password=persona.password) for key, value in (body or {}).items()}


@pytest.fixture
def server(personas, live_server):
    return live_server


@pytest.fixture
def spare(personas, instance) -> dict[str, int]:
    """Ids of things the state-changing rows act on: a spare user and spare tokens of the editor and the viewer."""
    from appliance.accounts.tokens import create_token
    from appliance.accounts.user_changes import create_user
    from appliance.storage.db import database

    with database.connection_context():
        ids = {"victim": create_user("victim@example.com", "Victim", "viewer", "victim-long-password", actor="test").id}
        for owner, persona in (("editor", personas.editor), ("viewer", personas.viewer)):
            for use in ("page", "api"):
                ids[f"{owner}_token_{use}"] = create_token(persona.id, f"spare {use}", actor="test")[0].id
    return ids


@pytest.fixture
def disabled_session(server, personas, instance) -> tuple[requests.Session, str]:
    """The disabled persona's browser: signed in while the account was active, then the account was disabled."""
    from appliance.accounts.user_changes import disable_user, enable_user
    from appliance.storage.db import database

    with database.connection_context():
        enable_user(personas.disabled.id, actor="test")
    session, token = browser_sign_in(server.url, personas.disabled.email, personas.disabled.password)
    assert session.get(server.url + "api/me", timeout=10).status_code == 200
    with database.connection_context():
        disable_user(personas.disabled.id, actor="test")
    return session, token


def _fresh_csrf(server, session: requests.Session) -> str:
    account = session.get(server.url + "account", timeout=10, allow_redirects=False)
    page = account if account.status_code == 200 else session.get(server.url + "login", timeout=10)
    return csrf_token_in(page.text)


def _page_client(server, persona, disabled_session) -> tuple[requests.Session, str]:
    if persona.name in SIGNED_IN:
        return browser_sign_in(server.url, persona.email, persona.password)
    if persona.name == DISABLED:
        return disabled_session
    session = requests.Session()
    return session, _fresh_csrf(server, session)


def test_pages_answer_each_persona_as_the_access_table_says(server, personas, spare, disabled_session):
    clients = {p.name: _page_client(server, p, disabled_session) for p in personas}
    wrong = []
    for who, method, path, status, body in PAGE_TABLE:
        session, token = clients[who]
        url = server.url + _fill(path, personas, spare).lstrip("/")
        data = {"csrf_token": token, **_body(body, personas[who])} if method == "POST" else None
        answer = session.request(method, url, data=data, allow_redirects=False, timeout=10)
        if answer.status_code != status:
            wrong.append(f"{who} {method} {path}: {answer.status_code}, expected {status}")
        if status == 302 and who in (DISABLED, OUTSIDER):
            assert answer.headers["Location"].startswith("/login"), (who, method, path)
        if (method, path) in SESSION_CHANGING:
            clients[who] = (session, _fresh_csrf(server, session))
    assert not wrong, "\n".join(wrong)


def test_the_api_answers_each_persona_as_the_access_table_says(
    server, personas, api_token_for, spare, disabled_session
):
    headers = {
        p.name: {"Authorization": f"Bearer {api_token_for(p.email)}"} if p.name in SIGNED_IN else {} for p in personas
    }
    # The disabled persona calls with its old browser session, CSRF header and all.
    old_session, old_csrf = disabled_session
    headers[DISABLED] = {
        "Cookie": "; ".join(f"{c.name}={c.value}" for c in old_session.cookies),
        "X-CSRFToken": old_csrf,
    }
    wrong = []
    for who, method, path, status, body in API_TABLE:
        answer = requests.request(
            method,
            server.url + _fill(path, personas, spare).lstrip("/"),
            json=_body(body, personas[who]) if body is not None else None,
            headers=headers[who],
            timeout=10,
        )
        if answer.status_code != status:
            wrong.append(f"{who} {method} {path}: {answer.status_code}, expected {status}: {answer.text[:200]}")
        elif status >= 400 and path != "/metrics":
            error = answer.json()["error"]
            assert error["code"] and error["message"], (who, method, path)
    assert not wrong, "\n".join(wrong)


def test_a_live_setup_link_answers_everyone_until_it_is_used(server, personas, disabled_session, instance):
    """While no admin exists, anyone holding the link may open it; a refused form leaves it live; once used, it is dead."""
    from appliance.accounts.setup_links import create_setup_link
    from appliance.storage.db import database
    from appliance.storage.models import User

    with database.connection_context():
        User.delete().where(User.id == personas.admin.id).execute()  # a new instance: no admin yet
        link = "setup/" + create_setup_link()
    clients = {p.name: _page_client(server, p, disabled_session) for p in personas if p.name != ADMIN}
    wrong = []
    for who, (session, token) in clients.items():
        for method, data, status in (("GET", None, 200), ("POST", {"csrf_token": token}, 422)):
            answer = session.request(method, server.url + link, data=data, allow_redirects=False, timeout=10)
            if answer.status_code != status:
                wrong.append(f"{who} {method} /{link}: {answer.status_code}, expected {status}")
    assert not wrong, "\n".join(wrong)
    session, token = clients[OUTSIDER]
    form = {"email": "boss@example.com", "name": "Boss", "password": "a-long-enough-password"}
    made = session.post(
        server.url + link,
        data={**form, "password_confirm": form["password"], "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert made.status_code == 302
    for who, (other, _token) in clients.items():
        assert other.get(server.url + link, allow_redirects=False, timeout=10).status_code == 404, who


def test_the_api_takes_a_browser_session_with_its_csrf_header(server, personas):
    admin, admin_csrf = browser_sign_in(server.url, personas.admin.email, personas.admin.password)
    editor, editor_csrf = browser_sign_in(server.url, personas.editor.email, personas.editor.password)
    assert admin.get(server.url + "api/me", timeout=10).json()["auth"] == {"via": "session", "scope": "write"}
    assert admin.get(server.url + "api/users", timeout=10).status_code == 200
    body = {"email": "new@example.com", "name": "New", "role": "viewer", "password": "a-fine-long-password"}
    assert admin.post(server.url + "api/users", json=body, timeout=10).status_code == 400  # no CSRF header
    assert (
        editor.post(server.url + "api/users", json=body, headers={"X-CSRFToken": editor_csrf}, timeout=10).status_code
        == 403
    )
    made = admin.post(server.url + "api/users", json=body, headers={"X-CSRFToken": admin_csrf}, timeout=10)
    assert made.status_code == 201
    assert made.json()["email"] == "new@example.com"
    assert "a-fine-long-password" not in made.text and "argon2" not in made.text


def test_anyone_may_ask_for_a_token_but_only_with_the_right_password(server, personas):
    for persona in personas:
        answer = server.request(
            "POST", "/api/auth/token", json={"email": persona.email, "password": persona.password, "name": "probe"}
        )
        assert answer.status_code == (201 if persona.name in SIGNED_IN else 401), persona.name
    assert server.request("POST", "/api/auth/token", data="email=x").status_code == 400


def test_a_read_token_is_refused_on_every_write(server, personas, api_token_for):
    read = {"Authorization": f"Bearer {api_token_for(personas.admin.email, scope='read')}"}
    assert server.get("/api/me", headers=read).json()["auth"]["scope"] == "read"
    assert server.get("/api/users", headers=read).status_code == 200
    writes = [
        ("POST", "/api/users", {"email": "x@example.com", "name": "X", "role": "viewer", "password": "long-enough-pw"}),
        ("PATCH", f"/api/users/{personas.viewer.id}", {"name": "Changed"}),
        ("DELETE", f"/api/users/{personas.viewer.id}", None),
        ("POST", "/api/roles", {"name": "clerk", "label": "Clerk"}),
        ("DELETE", "/api/tokens/1", None),
        ("POST", "/api/me/sign-out-everywhere", None),
        ("POST", "/api/collections", {"name": "things"}),  # later issues' endpoints are covered too
    ]
    for method, path, body in writes:
        answer = server.request(method, path, json=body, headers=read)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "permission_denied"
    assert server.get(f"/api/users/{personas.viewer.id}", headers=read).json()["name"] == "Viewer"


def test_a_token_from_the_api_works_and_can_be_revoked(server, personas):
    made = server.request(
        "POST",
        "/api/auth/token",
        json={"email": personas.editor.email, "password": personas.editor.password, "scope": "read", "expires_days": 3},
    )
    assert made.status_code == 201
    body = made.json()
    assert body["token"].startswith("oat_") and body["expires_at"].endswith("Z") and body["scope"] == "read"
    auth = {"Authorization": f"Bearer {body['token']}"}
    assert server.get("/api/me", headers=auth).json()["email"] == personas.editor.email
    admin = server.request(
        "POST", "/api/auth/token", json={"email": personas.admin.email, "password": personas.admin.password}
    ).json()["token"]
    revoked = server.request("DELETE", f"/api/tokens/{body['id']}", headers={"Authorization": f"Bearer {admin}"})
    assert revoked.status_code == 204
    assert server.get("/api/me", headers=auth).status_code == 401
