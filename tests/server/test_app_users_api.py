"""App users over /v1: create, list, revoke, Collect QR codes and form assignments."""

from __future__ import annotations

import base64
import io
import json
import uuid
import zlib

import pytest
import segno
from PIL import Image

from server.api.app_users import QR_BORDER, QR_SCALE
from storage import roles, users
from tests.collect import HEADERS
from tests.conftest import BASE_URL
from tests.factories import make_app_user, make_project, publish


def _user(services, *, admin: bool = False):
    user = users.create_user(services.db, f"au-{uuid.uuid4().hex[:12]}@uji.local", is_admin=admin)
    token, _ = users.create_session(services.db, user.actor_id, 1)
    return user, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def managed(services):
    """A project and a Bearer header of its manager."""
    project = make_project(services)
    manager, headers = _user(services)
    roles.grant_role(services.db, manager.actor_id, project.id, "manager")
    return project, headers


def _create(client, project, headers, name="Petugas Lapangan"):
    response = client.post(
        f"/v1/projects/{project.id}/app-users", headers=headers, json={"displayName": name}
    )
    assert response.status_code == 200
    return response.json()


def test_create_and_list_app_users_with_their_urls(client, managed):
    project, headers = managed
    created = _create(client, project, headers)
    token = created["token"]
    assert len(token) == 64 and created["displayName"] == "Petugas Lapangan"
    assert created["projectId"] == project.id
    assert created["collectUrl"] == f"{BASE_URL}/v1/key/{token}/projects/{project.id}"
    assert created["webFormUrl"] == f"{BASE_URL}/f/{token}/"
    listed = client.get(f"/v1/projects/{project.id}/app-users", headers=headers).json()
    [row] = [a for a in listed if a["id"] == created["id"]]
    assert row == created
    assert {"createdAt", "updatedAt", "deletedAt"} <= set(row)


def test_revoked_key_answers_403_on_openrosa_at_once(client, managed):
    project, headers = managed
    created = _create(client, project, headers)
    submission = f"/v1/key/{created['token']}/projects/{project.id}/submission"
    assert client.head(submission, headers=HEADERS).status_code == 204
    url = f"/v1/projects/{project.id}/app-users/{created['id']}"
    assert client.delete(url, headers=headers).json() == {"success": True}
    assert client.head(submission, headers=HEADERS).status_code == 403
    [row] = [
        a
        for a in client.get(f"/v1/projects/{project.id}/app-users", headers=headers).json()
        if a["id"] == created["id"]
    ]
    assert (row["token"], row["collectUrl"], row["webFormUrl"]) == (None, None, None)
    assert row["updatedAt"] is not None
    assert client.get(f"{url}/qr.png", headers=headers).status_code == 409


def test_app_users_need_a_manager_of_that_project(services, client, managed):
    project, headers = managed
    supervisor, supervisor_headers = _user(services)
    roles.grant_role(services.db, supervisor.actor_id, project.id, "supervisor")
    _, stranger = _user(services)
    base = f"/v1/projects/{project.id}/app-users"
    assert client.get(base, headers=supervisor_headers).status_code == 403
    assert (
        client.post(base, headers=supervisor_headers, json={"displayName": "x"}).status_code == 403
    )
    assert client.get(base, headers=stranger).status_code == 404
    assert client.get(base).status_code == 401
    elsewhere = make_app_user(services, make_project(services))
    foreign = elsewhere.actor.id
    assert client.delete(f"{base}/{foreign}", headers=headers).status_code == 404
    assert client.get(f"{base}/{foreign}/collect-settings", headers=headers).status_code == 404
    assert client.post(base, headers=headers, json={"displayName": "  "}).status_code == 400


def test_collect_settings_payload_decodes_to_the_settings(client, managed):
    project, headers = managed
    created = _create(client, project, headers)
    response = client.get(
        f"/v1/projects/{project.id}/app-users/{created['id']}/collect-settings", headers=headers
    )
    assert response.status_code == 200
    body = response.json()
    decoded = json.loads(zlib.decompress(base64.b64decode(body["payload"])).decode("utf-8"))
    assert decoded == body["settings"]
    assert decoded["general"] == {
        "server_url": created["collectUrl"],
        "form_update_mode": "match_exactly",
        "autosend": "wifi_and_cellular",
    }
    assert decoded["project"] == {"name": project.name, "icon": "📋", "color": "#1e6b52"}
    assert decoded["admin"] == {}


def test_qr_png_and_svg_encode_the_payload(client, managed):
    project, headers = managed
    created = _create(client, project, headers)
    base = f"/v1/projects/{project.id}/app-users/{created['id']}"
    payload = client.get(f"{base}/collect-settings", headers=headers).json()["payload"]
    expected = segno.make(payload, micro=False)

    png = client.get(f"{base}/qr.png", headers=headers)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content)).convert("L")
    modules = len(expected.matrix)
    assert image.size == ((modules + 2 * QR_BORDER) * QR_SCALE,) * 2
    # Read the modules back from the pixels: dark module = 1.
    seen = [
        [
            int(
                image.getpixel(
                    (
                        (QR_BORDER + x) * QR_SCALE + QR_SCALE // 2,
                        (QR_BORDER + y) * QR_SCALE + QR_SCALE // 2,
                    )
                )
                < 128
            )
            for x in range(modules)
        ]
        for y in range(modules)
    ]
    assert seen == [[int(bool(v)) for v in row] for row in expected.matrix]

    svg = client.get(f"{base}/qr.svg", headers=headers)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    rendered = io.BytesIO()
    expected.save(rendered, kind="svg", scale=QR_SCALE, border=QR_BORDER, xmldecl=False)
    assert svg.content == rendered.getvalue() and svg.content.startswith(b"<svg")


def test_form_assignments_are_recorded_and_listed(services, client, managed):
    project, headers = managed
    publish(services, project, "tanpa_media")
    app_user = _create(client, project, headers)
    base = f"/v1/projects/{project.id}/forms/tanpa_media/assignments"
    assert client.get(base, headers=headers).json() == []
    assigned = client.post(f"{base}/app-user/{app_user['id']}", headers=headers)
    assert assigned.status_code == 200 and assigned.json() == {"success": True}
    assert client.post(f"{base}/4/{app_user['id']}", headers=headers).status_code == 200  # again
    # pyodk's create_app_users always sends Central's app-user role id, 2.
    assert client.post(f"{base}/2/{app_user['id']}", headers=headers).status_code == 200
    assert client.get(base, headers=headers).json() == [{"actorId": app_user["id"], "roleId": 4}]
    [actor] = client.get(f"{base}/app-user", headers=headers).json()
    assert (actor["id"], actor["type"], actor["displayName"]) == (
        app_user["id"],
        "field_key",
        app_user["displayName"],
    )
    assert client.delete(f"{base}/app-user/{app_user['id']}", headers=headers).status_code == 200
    assert client.get(base, headers=headers).json() == []
    assert client.delete(f"{base}/app-user/{app_user['id']}", headers=headers).status_code == 404
    foreign = make_app_user(services, make_project(services)).actor.id
    assert client.post(f"{base}/app-user/{foreign}", headers=headers).status_code == 404
    assert client.post(f"{base}/manager/{app_user['id']}", headers=headers).status_code == 400
    missing = f"/v1/projects/{project.id}/forms/tidak_ada/assignments/app-user/{app_user['id']}"
    assert client.post(missing, headers=headers).status_code == 404
