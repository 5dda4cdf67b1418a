"""Sessions, users, roles, assignments and the audit log over /v1, on every backend."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import delete

from storage import audit, throttle, users
from storage import roles as role_store
from storage.models import LoginAttempt
from tests.conftest import make_client
from tests.factories import make_project

PASSWORD = "kata-sandi-panjang"
TEST_CLIENT = "testclient"  # the client host Litestar's TestClient reports


def _email(tag: str = "u") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@uji.local"


def _user(services, *, admin: bool = False, password: str | None = PASSWORD):
    """A user and a Bearer header for it (session made in storage: no argon2 per test)."""
    user = users.create_user(services.db, _email(), password, is_admin=admin)
    token, _ = users.create_session(services.db, user.actor_id, 1)
    return user, {"Authorization": f"Bearer {token}"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def fresh_client_record(services):
    """Forget the test client's failed logins before and after: its per-client limit is shared
    by every test of the run."""

    def forget() -> None:
        with services.db.transaction() as tx:
            tx.exec(delete(LoginAttempt).where(LoginAttempt.client == TEST_CLIENT))

    forget()
    yield
    forget()


# ---- sessions ---------------------------------------------------------------------------------


def test_login_gives_a_token_for_users_current(services, client, fresh_client_record):
    user = users.create_user(services.db, _email("login"), PASSWORD, display_name="Rina")
    response = client.post("/v1/sessions", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "createdAt", "expiresAt"} and len(body["token"]) == 64
    lifetime = datetime.fromisoformat(body["expiresAt"]) - datetime.fromisoformat(body["createdAt"])
    assert abs(lifetime - timedelta(hours=services.settings.session_hours)) < timedelta(minutes=1)
    current = client.get("/v1/users/current", headers=_bearer(body["token"]))
    assert current.status_code == 200
    me = current.json()
    assert me == {
        "id": user.actor_id,
        "type": "user",
        "displayName": "Rina",
        "email": user.email,
        "createdAt": me["createdAt"],
        "updatedAt": None,
        "deletedAt": None,
    }


def test_wrong_password_or_unknown_email_is_401(services, client, fresh_client_record):
    user = users.create_user(services.db, _email("wrong"), PASSWORD)
    for email, password in ((user.email, "bukan-sandinya"), (_email("nobody"), PASSWORD)):
        response = client.post("/v1/sessions", json={"email": email, "password": password})
        assert response.status_code == 401 and response.json()["code"] == 401.2


def test_five_failures_for_one_email_answer_429_even_after_a_success(
    services, client, fresh_client_record
):
    user = users.create_user(services.db, _email("locked"), PASSWORD)
    wrong = {"email": user.email, "password": "bukan-sandinya"}
    for _ in range(throttle.EMAIL_LIMIT - 1):
        assert client.post("/v1/sessions", json=wrong).status_code == 401
    good = {"email": user.email, "password": PASSWORD}
    assert client.post("/v1/sessions", json=good).status_code == 200  # clears nothing
    assert client.post("/v1/sessions", json=wrong).status_code == 401  # the fifth failure
    refused = client.post("/v1/sessions", json=good)  # refused before the password is checked
    assert refused.status_code == 429 and refused.json()["code"] == 429.1
    assert 0 < int(refused.headers["Retry-After"]) <= throttle.WINDOW.total_seconds()
    other = users.create_user(services.db, _email("other"), PASSWORD)
    assert (
        client.post("/v1/sessions", json={"email": other.email, "password": PASSWORD}).status_code
        == 200
    )


def test_twenty_failures_from_one_client_answer_429(services, client, fresh_client_record):
    for _ in range(throttle.CLIENT_LIMIT):
        response = client.post(
            "/v1/sessions", json={"email": _email("spray"), "password": "bukan-sandinya"}
        )
        assert response.status_code == 401
    user = users.create_user(services.db, _email("innocent"), PASSWORD)
    refused = client.post("/v1/sessions", json={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_deleted_session_answers_401_at_once(services, client):
    user = users.create_user(services.db, _email("logout"), None)
    token, _ = users.create_session(services.db, user.actor_id, 1)
    assert client.get("/v1/users/current", headers=_bearer(token)).status_code == 200
    response = client.delete(f"/v1/sessions/{token}", headers=_bearer(token))
    assert response.status_code == 200 and response.json() == {"success": True}
    assert client.get("/v1/users/current", headers=_bearer(token)).status_code == 401


def test_only_the_owner_or_an_admin_may_end_a_session(services, client):
    owner = users.create_user(services.db, _email("owner"), None)
    token, _ = users.create_session(services.db, owner.actor_id, 1)
    _, stranger = _user(services, password=None)
    _, admin = _user(services, admin=True, password=None)
    assert client.delete(f"/v1/sessions/{token}", headers=stranger).status_code == 403
    assert client.delete(f"/v1/sessions/{token}", headers=admin).status_code == 200
    assert client.delete(f"/v1/sessions/{token}", headers=admin).status_code == 404
    assert client.get("/v1/users/current", headers=_bearer(token)).status_code == 401


def test_expired_session_answers_401(services, client):
    user = users.create_user(services.db, _email("expired"), None)
    token, _ = users.create_session(services.db, user.actor_id, hours=-1)
    response = client.get("/v1/users/current", headers=_bearer(token))
    assert response.status_code == 401 and response.json()["code"] == 401.2


# ---- users ------------------------------------------------------------------------------------


def test_admin_creates_reads_updates_and_deletes_a_user(services, client):
    _, admin = _user(services, admin=True, password=None)
    email = _email("new")
    created = client.post(
        "/v1/users",
        headers=admin,
        json={"email": email, "password": PASSWORD, "displayName": "Budi"},
    )
    assert created.status_code == 200
    user = created.json()
    assert (user["type"], user["email"], user["displayName"]) == ("user", email, "Budi")
    actor_id = user["id"]
    assert actor_id in [u["id"] for u in client.get("/v1/users", headers=admin).json()]
    assert client.get(f"/v1/users/{actor_id}", headers=admin).json() == user
    new_email = _email("renamed")
    patched = client.patch(
        f"/v1/users/{actor_id}",
        headers=admin,
        json={"displayName": "Budi S.", "email": new_email.upper()},
    )
    assert patched.status_code == 200
    assert (patched.json()["displayName"], patched.json()["email"]) == ("Budi S.", new_email)
    token, _ = users.create_session(services.db, actor_id, 1)
    assert client.delete(f"/v1/users/{actor_id}", headers=admin).json() == {"success": True}
    assert client.get(f"/v1/users/{actor_id}", headers=admin).status_code == 404
    assert client.get("/v1/users/current", headers=_bearer(token)).status_code == 401
    assert users.verify_password(services.db, new_email, PASSWORD) is None
    assert actor_id not in [u["id"] for u in client.get("/v1/users", headers=admin).json()]


def test_non_admin_reads_and_updates_only_itself(services, client):
    me, headers = _user(services, password=None)
    other, _ = _user(services, password=None)
    assert client.get("/v1/users", headers=headers).status_code == 403
    assert client.post("/v1/users", headers=headers, json={"email": _email("x")}).status_code == 403
    assert client.get(f"/v1/users/{other.actor_id}", headers=headers).status_code == 403
    assert (
        client.patch(
            f"/v1/users/{other.actor_id}", headers=headers, json={"displayName": "hijacked"}
        ).status_code
        == 403
    )
    assert client.delete(f"/v1/users/{me.actor_id}", headers=headers).status_code == 403
    assert client.get(f"/v1/users/{me.actor_id}", headers=headers).status_code == 200
    renamed = client.patch(
        f"/v1/users/{me.actor_id}", headers=headers, json={"displayName": "Nama Baru"}
    )
    assert renamed.status_code == 200 and renamed.json()["displayName"] == "Nama Baru"
    assert client.get("/v1/users").status_code == 401


def test_duplicate_email_is_409(services, client):
    _, admin = _user(services, admin=True, password=None)
    taken, _ = _user(services, password=None)
    response = client.post("/v1/users", headers=admin, json={"email": taken.email})
    assert response.status_code == 409
    mine, headers = _user(services, password=None)
    assert (
        client.patch(
            f"/v1/users/{mine.actor_id}", headers=headers, json={"email": taken.email}
        ).status_code
        == 409
    )


def test_password_change_needs_the_old_password(services, client):
    me, headers = _user(services)
    other, _ = _user(services, password=None)
    url = f"/v1/users/{me.actor_id}/password"
    wrong_old = {"old": "bukan-sandinya", "new": "sandi-baru-panjang"}
    assert client.put(url, headers=headers, json=wrong_old).status_code == 401
    too_short = {"old": PASSWORD, "new": "pendek"}
    assert client.put(url, headers=headers, json=too_short).status_code == 400
    assert (
        client.put(
            f"/v1/users/{other.actor_id}/password",
            headers=headers,
            json={"old": PASSWORD, "new": "sandi-baru-panjang"},
        ).status_code
        == 403
    )
    changed = client.put(url, headers=headers, json={"old": PASSWORD, "new": "sandi-baru-panjang"})
    assert changed.status_code == 200 and changed.json() == {"success": True}
    assert users.verify_password(services.db, me.email, "sandi-baru-panjang") is not None
    assert users.verify_password(services.db, me.email, PASSWORD) is None


# ---- a password change ends the other sessions (issue #11) -------------------------------------

NEW_PASSWORD = "sandi-baru-panjang"


def _basic(email: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()}


def _log_in(client, email: str) -> str:
    response = client.post("/v1/sessions", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    return response.json()["token"]


def _ui_log_in(ui, email: str) -> None:
    """The supervisor UI's login form, CSRF token and all; the client keeps the cookie."""
    page = ui.get("/login")
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    response = ui.post(
        "/login",
        data={"email": email, "password": PASSWORD, "next": "/", "_csrf_token": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "jebol_session" in ui.cookies
    assert ui.get("/", follow_redirects=False).status_code == 200


def _ui_logged_out(ui) -> bool:
    """The UI's cookie no longer lets it in: a page sends it to the login form."""
    response = ui.get("/", follow_redirects=False)
    return response.status_code == 401 or (
        response.status_code == 303 and response.headers["location"].startswith("/login")
    )


def _current(client, headers: dict[str, str]) -> int:
    return client.get("/v1/users/current", headers=headers).status_code


def test_changing_ones_password_ends_the_other_sessions_but_not_its_own(
    services, client, fresh_client_record
):
    user = users.create_user(services.db, _email("ganti"), PASSWORD)
    changer, other = _log_in(client, user.email), _log_in(client, user.email)
    with make_client(services) as ui:
        _ui_log_in(ui, user.email)
        changed = client.put(
            f"/v1/users/{user.actor_id}/password",
            headers=_bearer(changer),
            json={"old": PASSWORD, "new": NEW_PASSWORD},
        )
        assert changed.status_code == 200 and changed.json() == {"success": True}
        assert _current(client, _bearer(other)) == 401
        assert _ui_logged_out(ui)
    assert _current(client, _bearer(changer)) == 200  # the session that made the change
    assert _current(client, _basic(user.email, PASSWORD)) == 401
    assert _current(client, _basic(user.email, NEW_PASSWORD)) == 200
    [ended] = [
        a
        for a in audit.list_audits(services.db, action="user.session.end", limit=1000)
        if a.subject_id == user.actor_id
    ]
    assert (ended.actor_id, ended.details) == (
        user.actor_id,
        {"sessions": 2, "reason": "user.password"},
    )


def test_a_password_change_over_basic_ends_every_session(services, client, fresh_client_record):
    """Basic credentials are no session to keep; the old password they were remembered with
    (5 minutes, for OData clients) lets nobody in after the change."""
    user = users.create_user(services.db, _email("basic"), PASSWORD)
    tokens = [_log_in(client, user.email), _log_in(client, user.email)]
    old = _basic(user.email, PASSWORD)
    assert _current(client, old) == 200 and _current(client, old) == 200  # now remembered
    with make_client(services) as ui:
        _ui_log_in(ui, user.email)
        changed = client.put(
            f"/v1/users/{user.actor_id}/password",
            headers=old,
            json={"old": PASSWORD, "new": NEW_PASSWORD},
        )
        assert changed.status_code == 200
        assert [_current(client, _bearer(t)) for t in tokens] == [401, 401]
        assert _ui_logged_out(ui)
    assert _current(client, old) == 401
    assert _current(client, _basic(user.email, NEW_PASSWORD)) == 200


def test_a_wrong_old_password_ends_no_session(services, client, fresh_client_record):
    user = users.create_user(services.db, _email("salah"), PASSWORD)
    changer, other = _log_in(client, user.email), _log_in(client, user.email)
    refused = client.put(
        f"/v1/users/{user.actor_id}/password",
        headers=_bearer(changer),
        json={"old": "bukan-sandinya", "new": NEW_PASSWORD},
    )
    assert refused.status_code == 401
    assert _current(client, _bearer(other)) == 200 and _current(client, _bearer(changer)) == 200


def test_an_admins_password_reset_ends_every_session_of_that_user(
    services, client, fresh_client_record
):
    """No route resets another user's password yet (Central mails a reset link; this server
    sends no mail): an administrator's reset is `users.set_password`, as a command or page
    would call it. Every session of the user ends, the administrator's own stays."""
    admin = users.create_user(services.db, _email("admin"), PASSWORD, is_admin=True)
    admins = _log_in(client, admin.email)
    user = users.create_user(services.db, _email("lupa"), PASSWORD)
    tokens = [_log_in(client, user.email), _log_in(client, user.email)]
    assert _current(client, _basic(user.email, PASSWORD)) == 200  # remembered
    with make_client(services) as ui, make_client(services) as admin_ui:
        _ui_log_in(ui, user.email)
        _ui_log_in(admin_ui, admin.email)
        users.set_password(services.db, user.id, NEW_PASSWORD, actor_id=admin.actor_id)
        assert [_current(client, _bearer(t)) for t in tokens] == [401, 401]
        assert _ui_logged_out(ui)
        assert not _ui_logged_out(admin_ui)
    assert _current(client, _bearer(admins)) == 200
    assert _current(client, _basic(user.email, PASSWORD)) == 401
    assert _current(client, _basic(user.email, NEW_PASSWORD)) == 200
    assert (
        client.put(
            f"/v1/users/{user.actor_id}/password",
            headers=_bearer(admins),
            json={"old": NEW_PASSWORD, "new": PASSWORD},
        ).status_code
        == 403
    )


# ---- roles and assignments ----------------------------------------------------------------------


# ODK Central v2026.2's roles (id, system, name), then ours.
CENTRAL = [
    (1, "admin", "Administrator"),
    (2, "app-user", "App User"),
    (3, "pwreset", "Password Reset Token"),
    (5, "manager", "Project Manager"),
    (6, "viewer", "Project Viewer"),
    (7, "formview", "Form Viewer (system internal)"),
    (8, "formfill", "Data Collector"),
    (9, "pub-link", "Public Link"),
    (10, "supervisor", "Supervisor"),
]


def test_roles_are_centrals_catalogue_then_ours(services, client):
    _, headers = _user(services, password=None)
    listed = client.get("/v1/roles", headers=headers)
    assert listed.status_code == 200
    body = listed.json()
    assert [(r["id"], r["system"], r["name"]) for r in body] == CENTRAL
    for role in body:
        assert list(role) == ["id", "name", "system", "verbs", "createdAt", "updatedAt"]
        assert isinstance(role["verbs"], list) and role["verbs"]
    by_system = {r["system"]: r for r in body}
    assert by_system["app-user"]["verbs"] == ["open_form.read", "submission.create"]
    assert by_system["formfill"]["verbs"] == [
        "project.read",
        "open_form.list",
        "open_form.read",
        "submission.create",
    ]
    assert len(by_system["admin"]["verbs"]) == 56 and len(by_system["manager"]["verbs"]) == 41
    for ref, expected in (("2", "app-user"), ("app-user", "app-user"), ("formfill", "formfill")):
        one = client.get(f"/v1/roles/{ref}", headers=headers)
        assert one.status_code == 200 and one.json()["system"] == expected
        assert one.json() == by_system[expected]
    for missing in ("4", "11", "officer", "nope"):
        assert client.get(f"/v1/roles/{missing}", headers=headers).status_code == 404, missing
    # Public, as in Central; and not served under an app user's key (only OpenRosa is).
    assert client.get("/v1/roles").json() == body
    assert client.get("/v1/key/not-a-key/roles").status_code == 404


def test_project_roles_by_centrals_id_and_the_unenforced_ones_refused(services, client):
    project = make_project(services)
    manager, headers = _user(services, password=None)
    role_store.assign_role(services.db, project.id, "manager", manager.actor_id)
    target, target_headers = _user(services, password=None)
    url = f"/v1/projects/{project.id}/assignments"
    assert client.post(f"{url}/8/{target.actor_id}", headers=headers).json() == {"success": True}
    assert {"actorId": target.actor_id, "roleId": 8} in client.get(url, headers=headers).json()
    # A data collector sees the project (and fills its forms, tests/server/test_openrosa.py).
    assert client.get(f"/v1/projects/{project.id}", headers=target_headers).status_code == 200
    assert client.delete(f"{url}/formfill/{target.actor_id}", headers=headers).status_code == 200
    assert client.get(f"/v1/projects/{project.id}", headers=target_headers).status_code == 404
    for role in ("pwreset", "3", "viewer", "6", "formview", "7", "pub-link", "9", "app-user", "2"):
        refused = client.post(f"{url}/{role}/{target.actor_id}", headers=headers)
        assert refused.status_code == 400, role
        assert "role" in refused.json()["message"]
    assert client.post(f"{url}/admin/{target.actor_id}", headers=headers).status_code == 400
    assert client.post(f"{url}/4/{target.actor_id}", headers=headers).status_code == 404
    assert client.get(url, headers=headers).json() == [
        {"actorId": a, "roleId": r}
        for a, r in sorted(
            (a, role_store.role_id(role))
            for a, role in role_store.list_assignments(services.db, project.id)
        )
    ]


def test_granted_supervisor_can_read_the_project_until_revoked(services, client):
    project = make_project(services)
    manager, manager_headers = _user(services, password=None)
    role_store.assign_role(services.db, project.id, "manager", manager.actor_id)
    supervisor, headers = _user(services, password=None)
    assert client.get(f"/v1/projects/{project.id}", headers=headers).status_code == 404
    url = f"/v1/projects/{project.id}/assignments"
    granted = client.post(f"{url}/supervisor/{supervisor.actor_id}", headers=manager_headers)
    assert granted.status_code == 200 and granted.json() == {"success": True}
    assert (
        client.post(
            f"{url}/10/{supervisor.actor_id}",  # by id too; idempotent
            headers=manager_headers,
        ).status_code
        == 200
    )
    assert client.get(f"/v1/projects/{project.id}", headers=headers).status_code == 200
    listed = client.get(url, headers=manager_headers).json()
    assert {"actorId": supervisor.actor_id, "roleId": 10} in listed
    assert {"actorId": manager.actor_id, "roleId": 5} in listed
    revoke = f"{url}/10/{supervisor.actor_id}"
    assert client.delete(revoke, headers=manager_headers).status_code == 200
    assert client.get(f"/v1/projects/{project.id}", headers=headers).status_code == 404
    assert client.delete(revoke, headers=manager_headers).status_code == 404


def test_only_managers_assign_and_admin_is_server_wide(services, client):
    project = make_project(services)
    manager, manager_headers = _user(services, password=None)
    role_store.assign_role(services.db, project.id, "manager", manager.actor_id)
    supervisor, supervisor_headers = _user(services, password=None)
    role_store.assign_role(services.db, project.id, "supervisor", supervisor.actor_id)
    target, target_headers = _user(services, password=None)
    url = f"/v1/projects/{project.id}/assignments"
    assert (
        client.post(f"{url}/formfill/{target.actor_id}", headers=supervisor_headers).status_code
        == 403
    )
    assert client.get(url, headers=supervisor_headers).status_code == 403
    assert client.post(f"{url}/admin/{target.actor_id}", headers=manager_headers).status_code == 400
    assert client.post(f"{url}/nope/{target.actor_id}", headers=manager_headers).status_code == 404
    assert client.post(f"{url}/formfill/999999999", headers=manager_headers).status_code == 404
    assert (
        client.post(f"/v1/assignments/admin/{target.actor_id}", headers=manager_headers).status_code
        == 403
    )
    _, admin = _user(services, admin=True, password=None)
    assert (
        client.post(f"/v1/assignments/manager/{target.actor_id}", headers=admin).status_code == 400
    )
    assert client.post(f"/v1/assignments/admin/{target.actor_id}", headers=admin).status_code == 200
    assert client.get("/v1/users", headers=target_headers).status_code == 200
    assert client.delete(f"/v1/assignments/1/{target.actor_id}", headers=admin).status_code == 200
    assert client.get("/v1/users", headers=target_headers).status_code == 403


# ---- audit log ----------------------------------------------------------------------------------


def test_audits_filter_by_action_and_date_newest_first(services, client):
    _, admin = _user(services, admin=True, password=None)
    first = client.post("/v1/users", headers=admin, json={"email": _email("a1")}).json()
    second = client.post("/v1/users", headers=admin, json={"email": _email("a2")}).json()
    entries = client.get(
        "/v1/audits", headers=admin, params={"action": "user.create", "limit": 50}
    ).json()
    assert {e["action"] for e in entries} == {"user.create"}
    actees = [e["acteeId"] for e in entries]
    assert actees.index(second["id"]) < actees.index(first["id"])  # newest first
    entry = entries[actees.index(second["id"])]
    assert set(entry) == {"actorId", "action", "acteeId", "details", "loggedAt"}
    assert entry["details"]["email"] == second["email"]
    category = client.get("/v1/audits", headers=admin, params={"action": "user", "limit": 1000})
    assert {e["action"].split(".")[0] for e in category.json()} == {"user"}
    today = datetime.now(UTC).date()
    assert (
        client.get(
            "/v1/audits",
            headers=admin,
            params={"action": "user.create", "start": (today + timedelta(days=1)).isoformat()},
        ).json()
        == []
    )
    assert (
        client.get(
            "/v1/audits",
            headers=admin,
            params={"action": "user.create", "end": (today - timedelta(days=1)).isoformat()},
        ).json()
        == []
    )
    todays = client.get(
        "/v1/audits",
        headers=admin,
        params={
            "action": "user.create",
            "start": today.isoformat(),
            "end": today.isoformat(),
            "limit": 1000,
        },
    ).json()
    assert second["id"] in [e["acteeId"] for e in todays]
    assert client.get("/v1/audits", headers=admin, params={"start": "kemarin"}).status_code == 400
    _, plain = _user(services, password=None)
    assert client.get("/v1/audits", headers=plain).status_code == 403
