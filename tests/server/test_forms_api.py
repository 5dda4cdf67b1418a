"""/v1 forms: listing, reading, states, drafts with media, publishing versions."""

from __future__ import annotations

import hashlib

import pytest

from tests.collect import CollectClient
from tests.factories import (
    DATA,
    jpeg,
    key_url,
    make_app_user,
    make_project,
    make_user,
    publish,
    xlsx_from_md,
)


@pytest.fixture
def project(services):
    return make_project(services)


@pytest.fixture
def manager(services, project):
    return make_user(services, project, "manager")


def test_list_and_get_in_centrals_shape(services, client, project, manager):
    published = publish(services, project, "tanpa_media")
    [listed] = client.get(f"/v1/projects/{project.id}/forms", auth=manager).json()
    assert listed["xmlFormId"] == "tanpa_media" and listed["hash"] == published.version.md5
    one = client.get(f"/v1/projects/{project.id}/forms/tanpa_media", auth=manager).json()
    assert one == listed
    xml = client.get(f"/v1/projects/{project.id}/forms/tanpa_media.xml", auth=manager)
    assert xml.content == published.version.xml


def test_xlsform_download_is_the_uploaded_file(services, client, project, manager, tmp_path):
    body = xlsx_from_md("tanpa_media", tmp_path)
    client.post(
        f"/v1/projects/{project.id}/forms?ignoreWarnings=true&publish=true",
        content=body,
        auth=manager,
        headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        },
    )
    response = client.get(
        f"/v1/projects/{project.id}/forms/tanpa_media.xlsx", auth=manager, follow_redirects=False
    )
    if response.status_code == 307:  # S3: a presigned URL
        import httpx

        response = httpx.get(response.headers["Location"])
    assert response.status_code == 200 and response.content == body


def test_state_closing_hides_form_from_phones(services, client, project, manager):
    publish(services, project, "tanpa_media")
    response = client.patch(
        f"/v1/projects/{project.id}/forms/tanpa_media", json={"state": "closing"}, auth=manager
    )
    assert response.status_code == 200 and response.json()["state"] == "closing"
    app_user = make_app_user(services, project, forms=["tanpa_media"])
    phone = CollectClient(client, f"{client.base_url}{key_url(project, app_user)}")
    assert phone.form_list() == []
    bad = client.patch(
        f"/v1/projects/{project.id}/forms/tanpa_media", json={"state": "gone"}, auth=manager
    )
    assert bad.status_code == 400


def test_draft_with_media_then_publish_with_version(services, client, project, manager):
    publish(services, project, "foto_sederhana")
    base = f"/v1/projects/{project.id}/forms/foto_sederhana"
    assert client.post(f"{base}/draft", auth=manager).json() == {"success": True}
    [attachment] = client.get(f"{base}/draft/attachments", auth=manager).json()
    assert attachment["name"] == "logo.png" and attachment["exists"] is False
    logo = jpeg(seed=44)
    uploaded = client.post(f"{base}/draft/attachments/logo.png", content=logo, auth=manager)
    assert uploaded.status_code == 200 and uploaded.json()["exists"] is True
    assert uploaded.json()["hash"] == hashlib.md5(logo).hexdigest()
    assert (
        client.post(f"{base}/draft/attachments/nope.png", content=b"x", auth=manager).status_code
        == 404
    )
    published = client.post(f"{base}/draft/publish", params={"version": "2026-11-27"}, auth=manager)
    assert published.json() == {"success": True}
    form = client.get(base, auth=manager).json()
    assert form["version"] == "2026-11-27"
    xml = client.get(f"{base}.xml", auth=manager).content
    assert b'version="2026-11-27"' in xml and form["hash"] == hashlib.md5(xml).hexdigest()
    versions = client.get(f"{base}/versions", auth=manager).json()
    assert [v["version"] for v in versions] == ["2026-11-27", "1"]
    old = client.get(f"{base}/versions/1.xml", auth=manager)
    assert b'version="1"' in old.content
    app_user = make_app_user(services, project, forms=["foto_sederhana"])
    phone = CollectClient(client, f"{client.base_url}{key_url(project, app_user)}")
    [listed] = phone.form_list()
    [(name, digest, url)] = phone.manifest(listed.manifest_url)
    assert phone.download(url).content == logo


def test_publishing_a_taken_version_is_409(services, client, project, manager):
    publish(services, project, "tanpa_media")
    base = f"/v1/projects/{project.id}/forms/tanpa_media"
    client.post(f"{base}/draft", auth=manager)
    response = client.post(f"{base}/draft/publish", auth=manager)
    assert response.status_code == 409
    assert client.delete(f"{base}/draft", auth=manager).json() == {"success": True}
    assert client.get(f"{base}/draft", auth=manager).status_code == 404


def test_draft_with_a_new_definition_must_keep_the_form_id(services, client, project, manager):
    publish(services, project, "tanpa_media")
    other = (DATA / "foto_sederhana.md").read_bytes()
    from forms.compile import compile_xlsform

    xml = compile_xlsform(other, "f.md").xml
    response = client.post(
        f"/v1/projects/{project.id}/forms/tanpa_media/draft",
        content=xml,
        headers={"Content-Type": "application/xml"},
        auth=manager,
    )
    assert response.status_code == 400 and "foto_sederhana" in response.json()["message"]


def test_created_as_draft_is_listed_unpublished_and_hidden_from_phones(
    services, client, project, manager
):
    from forms.compile import compile_xlsform

    xml = compile_xlsform((DATA / "tanpa_media.md").read_bytes(), "t.md").xml
    created = client.post(
        f"/v1/projects/{project.id}/forms",
        content=xml,
        auth=manager,
        headers={"Content-Type": "application/xml"},
    )
    assert created.json()["publishedAt"] is None
    app_user = make_app_user(services, project, forms=["tanpa_media"])
    phone = CollectClient(client, f"{client.base_url}{key_url(project, app_user)}")
    assert phone.form_list() == []
    client.post(f"/v1/projects/{project.id}/forms/tanpa_media/draft/publish", auth=manager)
    assert [f.form_id for f in phone.form_list()] == ["tanpa_media"]


def test_delete_form(services, client, project, manager):
    publish(services, project, "tanpa_media")
    base = f"/v1/projects/{project.id}/forms/tanpa_media"
    assert client.delete(base, auth=manager).json() == {"success": True}
    assert client.get(base, auth=manager).status_code == 404


def test_supervisor_reads_but_cannot_change(services, client, project):
    publish(services, project, "tanpa_media")
    supervisor = make_user(services, project, "supervisor")
    base = f"/v1/projects/{project.id}/forms/tanpa_media"
    assert client.get(base, auth=supervisor).status_code == 200
    assert client.patch(base, json={"state": "closed"}, auth=supervisor).status_code == 403
    assert client.post(f"{base}/draft", auth=supervisor).status_code == 403


def test_draft_attachment_upload_may_be_chunked(services, client, project, manager):
    publish(services, project, "foto_sederhana")
    base = f"/v1/projects/{project.id}/forms/foto_sederhana"
    client.post(f"{base}/draft", auth=manager)
    logo = jpeg(size=300, seed=45)

    def chunks():  # no Content-Length: the body goes as Transfer-Encoding: chunked
        for start in range(0, len(logo), 1000):
            yield logo[start : start + 1000]

    response = client.post(f"{base}/draft/attachments/logo.png", content=chunks(), auth=manager)
    assert response.status_code == 200
    assert response.json()["hash"] == hashlib.md5(logo).hexdigest()
