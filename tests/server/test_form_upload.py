"""Uploading XLSForms over HTTP: clear 400s with pyxform's own words, never a half-made form."""

from __future__ import annotations

import io
import zipfile

import pytest

from storage import forms as form_store
from storage import roles, users
from tests.factories import DATA, make_project, xlsx_from_md

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def manager(services):
    project = make_project(services)
    email = f"pengelola-{project.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, project.id, "manager", user.actor_id)
    return project, (email, "kata-sandi-panjang")


def _upload(client, project, auth, body, content_type=XLSX, **params):
    return client.post(
        f"/v1/projects/{project.id}/forms",
        content=body,
        auth=auth,
        headers={"Content-Type": content_type},
        params=params,
    )


def test_xlsform_upload_publishes_and_answers_centrals_shape(services, client, manager, tmp_path):
    project, auth = manager
    response = _upload(
        client,
        project,
        auth,
        xlsx_from_md("tanpa_media", tmp_path),
        ignoreWarnings="true",
        publish="true",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["xmlFormId"] == "tanpa_media" and body["version"] == "2024010101"
    assert body["projectId"] == project.id and body["state"] == "open"
    for key in ("hash", "createdAt", "name", "enketoId", "keyId", "updatedAt", "publishedAt"):
        assert key in body
    [(form, version)] = form_store.list_forms(services.db, project.id)
    assert body["hash"] == version.md5


def test_warnings_without_ignore_warnings_are_400_and_nothing_is_stored(
    services, client, manager, tmp_path
):
    project, auth = manager
    response = _upload(client, project, auth, xlsx_from_md("tanpa_media", tmp_path), publish="true")
    assert response.status_code == 400
    assert "max-pixels" in response.json()["message"]
    assert form_store.list_forms(services.db, project.id) == []


def test_xlsform_with_errors_is_400_with_pyxforms_message(client, manager, tmp_path):
    project, auth = manager
    response = _upload(client, project, auth, xlsx_from_md("rusak", tmp_path), publish="true")
    assert response.status_code == 400
    assert "choices sheet" in response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [b"just some text", b"%PDF-1.4 not a spreadsheet", b"PK\x03\x04 truncated zip"],
    ids=["text", "pdf", "bad-zip"],
)
def test_not_a_spreadsheet_is_400(client, manager, body):
    project, auth = manager
    response = _upload(client, project, auth, body, publish="true")
    assert response.status_code == 400
    assert response.json()["code"] == 400.1


def test_zip_bomb_xlsx_is_refused_before_unpacking(client, manager):
    project, auth = manager
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (300 * 1024 * 1024))
    response = _upload(client, project, auth, buffer.getvalue(), publish="true")
    assert response.status_code == 400 and "200 MB" in response.json()["message"]


def test_xform_upload_is_accepted(services, client, manager):
    project, auth = manager
    from forms.compile import compile_xlsform

    xml = compile_xlsform((DATA / "tanpa_media.md").read_bytes(), "tanpa_media.md").xml
    response = _upload(client, project, auth, xml, "application/xml", publish="true")
    assert response.status_code == 200 and response.json()["xmlFormId"] == "tanpa_media"


def test_officer_cannot_upload_and_anonymous_gets_401(services, client, manager, tmp_path):
    project, _ = manager
    email = f"petugas-{project.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, project.id, "formfill", user.actor_id)
    body = xlsx_from_md("tanpa_media", tmp_path)
    assert _upload(client, project, (email, "kata-sandi-panjang"), body).status_code == 403
    assert client.post(f"/v1/projects/{project.id}/forms", content=body).status_code == 401
