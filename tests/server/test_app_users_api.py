"""App users over /v1: create, list, revoke, Collect QR codes, and form assignments (Central's
routes), enforced on OpenRosa and the web form."""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
import zlib

import pytest
import segno
from PIL import Image

from server.api.app_users import QR_BORDER, QR_SCALE
from storage import roles, users
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.conftest import BASE_URL
from tests.factories import assign_forms, jpeg, make_app_user, make_project, publish


def _user(services, *, admin: bool = False):
    user = users.create_user(services.db, f"au-{uuid.uuid4().hex[:12]}@uji.local", is_admin=admin)
    token, _ = users.create_session(services.db, user.actor_id, 1)
    return user, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def managed(services):
    """A project and a Bearer header of its manager."""
    project = make_project(services)
    manager, headers = _user(services)
    roles.assign_role(services.db, project.id, "manager", manager.actor_id)
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
    roles.assign_role(services.db, project.id, "supervisor", supervisor.actor_id)
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


def test_form_assignments_as_central_answers_them(services, client, managed):
    project, headers = managed
    publish(services, project, "tanpa_media")
    app_user = _create(client, project, headers)
    base = f"/v1/projects/{project.id}/forms/tanpa_media/assignments"
    assert client.get(base, headers=headers).json() == []
    assigned = client.post(f"{base}/app-user/{app_user['id']}", headers=headers)
    assert assigned.status_code == 200 and assigned.json() == {"success": True}
    # Twice is Central's 409.3 (its primary key actorId, roleId, acteeId); by id 2 as well,
    # which is what pyodk's create_app_users sends.
    again = client.post(f"{base}/2/{app_user['id']}", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == 409.3
    assert again.json()["details"]["fields"] == ["actorId", "roleId", "acteeId"]
    assert client.get(base, headers=headers).json() == [{"actorId": app_user["id"], "roleId": 2}]
    [extended] = client.get(base, headers={**headers, "X-Extended-Metadata": "true"}).json()
    assert list(extended) == ["actorId", "roleId", "actor"]
    assert extended["actor"]["id"] == app_user["id"]
    assert set(extended["actor"]) == {
        "id",
        "type",
        "displayName",
        "createdAt",
        "updatedAt",
        "deletedAt",
    }
    for role in ("app-user", "2"):
        [actor] = client.get(f"{base}/{role}", headers=headers).json()
        assert (actor["id"], actor["type"], actor["displayName"]) == (
            app_user["id"],
            "field_key",
            app_user["displayName"],
        )
    assert client.get(f"{base}/99", headers=headers).status_code == 404
    assert client.delete(f"{base}/app-user/{app_user['id']}", headers=headers).json() == {
        "success": True
    }
    assert client.get(base, headers=headers).json() == []
    assert client.delete(f"{base}/2/{app_user['id']}", headers=headers).status_code == 404
    foreign = make_app_user(services, make_project(services)).actor.id
    assert client.post(f"{base}/app-user/{foreign}", headers=headers).status_code == 404
    web_user, _ = _user(services)
    assert client.post(f"{base}/app-user/{web_user.actor_id}", headers=headers).status_code == 400
    for role in ("manager", "formfill", "8", "viewer"):
        refused = client.post(f"{base}/{role}/{app_user['id']}", headers=headers)
        assert refused.status_code == 400, role
    assert client.post(f"{base}/nope/{app_user['id']}", headers=headers).status_code == 404
    missing = f"/v1/projects/{project.id}/forms/tidak_ada/assignments/app-user/{app_user['id']}"
    assert client.post(missing, headers=headers).status_code == 404


# ---- enforcement: OpenRosa -------------------------------------------------------------------


def _send(client, key: str, xml: bytes):
    return client.post(
        f"{key}/submission",
        files={"xml_submission_file": ("submission.xml", xml, "text/xml")},
        headers=HEADERS,
    )


def test_an_app_user_lists_downloads_and_submits_only_assigned_forms(
    services, client, managed, tmp_path
):
    project, headers = managed
    publish(services, project, "tanpa_media")
    logo = tmp_path / "logo.png"
    logo.write_bytes(jpeg(seed=7))
    published = publish(services, project, "foto_sederhana", media={"logo.png": logo})
    phone = make_app_user(services, project, forms=["tanpa_media"])
    key = f"/v1/key/{phone.token}/projects/{project.id}"

    listing = client.get(f"{key}/formList", headers=HEADERS)
    assert listing.status_code == 200
    assert re.findall(r"<formID>([^<]*)</formID>", listing.text) == ["tanpa_media"]
    assert "<formID>" not in (
        client.get(f"{key}/formList", headers=HEADERS, params={"formID": "foto_sederhana"}).text
    )
    assert client.get(f"{key}/forms/tanpa_media.xml").status_code == 200
    for path in (
        "forms/foto_sederhana.xml",
        "forms/foto_sederhana/manifest",
        "forms/foto_sederhana/attachments/logo.png",
    ):
        refused = client.get(f"{key}/{path}", headers=HEADERS)
        assert refused.status_code == 403, path
        assert "not assigned" in refused.text
    version = published.version.version
    other = _send(client, key, instance_xml("foto_sederhana", version, new_instance_id(), ""))
    assert other.status_code == 403 and "not assigned" in other.text

    # Assigned through Central's route: now it is listed, downloaded and filled.
    assignment = (
        f"/v1/projects/{project.id}/forms/foto_sederhana/assignments/app-user/{phone.actor.id}"
    )
    assert client.post(assignment, headers=headers).json() == {"success": True}
    listing = client.get(f"{key}/formList", headers=HEADERS)
    assert re.findall(r"<formID>([^<]*)</formID>", listing.text) == [
        "foto_sederhana",
        "tanpa_media",
    ]
    manifest = client.get(f"{key}/forms/foto_sederhana/manifest", headers=HEADERS)
    assert manifest.status_code == 200 and "logo.png" in manifest.text
    media = client.get(f"{key}/forms/foto_sederhana/attachments/logo.png", follow_redirects=False)
    assert media.status_code in (200, 307)  # 307: a presigned URL of the S3 store
    first = new_instance_id()
    sent = _send(client, key, instance_xml("foto_sederhana", version, first, ""))
    assert sent.status_code == 201, sent.text

    # Taken away: no more submissions (403), and what it sent stays readable.
    assert client.delete(assignment, headers=headers).json() == {"success": True}
    late = _send(client, key, instance_xml("foto_sederhana", version, new_instance_id(), ""))
    assert late.status_code == 403 and "not assigned" in late.text
    resent = _send(client, key, instance_xml("foto_sederhana", version, first, ""))
    assert resent.status_code == 403  # a resend of the same record too
    stored = client.get(
        f"/v1/projects/{project.id}/forms/foto_sederhana/submissions/{first}", headers=headers
    )
    assert stored.status_code == 200 and stored.json()["submitterId"] == phone.actor.id
    listed = client.get(
        f"/v1/projects/{project.id}/forms/foto_sederhana/submissions", headers=headers
    )
    assert [s["instanceId"] for s in listed.json()] == [first]
    assert client.delete(assignment, headers=headers).status_code == 404  # nothing assigned


def test_web_users_with_a_role_are_not_limited_by_assignments(services, client):
    """A data collector (formfill web user) fills every open form, as in Central."""
    project = make_project(services)
    publish(services, project, "tanpa_media")
    user = users.create_user(services.db, f"ff-{uuid.uuid4().hex[:8]}@uji.local", "kata-sandi-1")
    roles.assign_role(services.db, project.id, "formfill", user.actor_id)
    listing = client.get(
        f"/v1/projects/{project.id}/formList", headers=HEADERS, auth=(user.email, "kata-sandi-1")
    )
    assert re.findall(r"<formID>([^<]*)</formID>", listing.text) == ["tanpa_media"]


# ---- enforcement: the web form ------------------------------------------------------------------


def _island(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="wf-config">(.*?)</script>', html, re.S)
    assert found is not None
    return json.loads(found.group(1))


def test_the_web_form_lists_and_opens_only_assigned_forms(services, client):
    project = make_project(services)
    publish(services, project, "tanpa_media")
    publish(services, project, "foto_sederhana")
    phone = make_app_user(services, project, forms=["tanpa_media"])
    page = client.get(f"/f/{phone.token}/")
    assert page.status_code == 200
    assert [f["id"] for f in _island(page.text)["forms"]] == ["tanpa_media"]
    assert client.get(f"/f/{phone.token}/tanpa_media").status_code == 200
    for path in ("foto_sederhana", "foto_sederhana/form.xml", "foto_sederhana/media/x.png"):
        assert client.get(f"/f/{phone.token}/{path}").status_code == 403, path
    assign_forms(services, project, phone, "foto_sederhana")
    page = client.get(f"/f/{phone.token}/")
    assert [f["id"] for f in _island(page.text)["forms"]] == ["foto_sederhana", "tanpa_media"]
    assert client.get(f"/f/{phone.token}/foto_sederhana/form.xml").status_code == 200
