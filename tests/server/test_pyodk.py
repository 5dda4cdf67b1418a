"""pyodk, ODK's own Python client, drives the server unchanged (over real HTTP)."""

from __future__ import annotations

import pytest
from pyodk.client import Client

from forms.library.build_xlsx import parse_markdown, write_xlsx
from storage import roles, users
from tests.collect import instance_xml, new_instance_id
from tests.factories import DATA, jpeg, make_project, publish, xlsx_from_md
from tests.live import LiveServer


@pytest.fixture
def pyodk_client(services, tmp_path):
    project = make_project(services)
    email = f"pyodk-{project.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, project.id, "manager", user.actor_id)
    with LiveServer(services) as live:
        config = tmp_path / "pyodk_config.toml"
        config.write_text(
            f'[central]\nbase_url = "{live.url}"\nusername = "{email}"\n'
            f'password = "kata-sandi-panjang"\ndefault_project_id = {project.id}\n'
        )
        with Client(config_path=str(config), cache_path=str(tmp_path / "cache.toml")) as client:
            yield client, project


def test_projects_and_forms(pyodk_client, tmp_path):
    client, project = pyodk_client
    assert project.id in [p.id for p in client.projects.list()]
    assert client.projects.get(project.id).name == project.name
    xlsx = tmp_path / "foto_sederhana.xlsx"
    xlsx.write_bytes(xlsx_from_md("foto_sederhana", tmp_path))
    logo = tmp_path / "logo.png"
    logo.write_bytes(jpeg(seed=5))
    created = client.forms.create(definition=xlsx, attachments=[logo])
    assert created.xmlFormId == "foto_sederhana"
    form = client.forms.get("foto_sederhana")
    assert form.version == "1" and form.publishedAt is not None
    assert [f.xmlFormId for f in client.forms.list()] == ["foto_sederhana"]
    # A new version from an edited definition, and one from new media only.
    newer = tmp_path / "v2" / "foto_sederhana.xlsx"
    newer.parent.mkdir()
    source = tmp_path / "foto_sederhana_v2.md"
    source.write_text(
        (DATA / "foto_sederhana.md").read_text().replace("| 1 | Indonesian", "| 2 | Indonesian")
    )
    write_xlsx(parse_markdown(source.read_text()), newer)
    client.forms.update("foto_sederhana", definition=newer)
    assert client.forms.get("foto_sederhana").version == "2"
    client.forms.update("foto_sederhana", attachments=[logo], version_updater=lambda v: "3")
    assert client.forms.get("foto_sederhana").version == "3"


def test_submissions_review_edit_and_comments(pyodk_client, services, tmp_path):
    client, project = pyodk_client
    from storage import forms as form_store

    form_store.publish_xlsform(
        services.db,
        services.blobs,
        project.id,
        (DATA / "tanpa_media.md").read_bytes(),
        "tanpa_media.md",
    )
    iid = new_instance_id()
    xml = instance_xml("tanpa_media", "2024010101", iid, "<catatan>pertama</catatan><foto/>")
    created = client.submissions.create(xml=xml.decode(), form_id="tanpa_media")
    assert created.instanceId == iid
    assert [s.instanceId for s in client.submissions.list(form_id="tanpa_media")] == [iid]
    assert client.submissions.get(iid, form_id="tanpa_media").reviewState is None
    client.submissions.review(
        iid, review_state="hasIssues", form_id="tanpa_media", comment="Foto kurang jelas"
    )
    assert client.submissions.get(iid, form_id="tanpa_media").reviewState == "hasIssues"
    edited = instance_xml(
        "tanpa_media",
        "2024010101",
        new_instance_id(),
        "<catatan>kedua</catatan><foto/>",
        deprecated_id=iid,
    )
    client.submissions.edit(iid, xml=edited.decode(), form_id="tanpa_media", comment="Diperbaiki")
    assert client.submissions.get(iid, form_id="tanpa_media").reviewState == "edited"
    bodies = [c.body for c in client.submissions.list_comments(iid, form_id="tanpa_media")]
    assert sorted(bodies) == ["Diperbaiki", "Foto kurang jelas"]
    client.submissions.review(iid, review_state="approved", form_id="tanpa_media")
    assert client.submissions.get(iid, form_id="tanpa_media").reviewState == "approved"


def test_create_app_users_assigns_forms_with_centrals_role_id(pyodk_client, services):
    """pyodk's create_app_users: POST app users, then POST …/assignments/2/{id} per form
    (Central's app-user role id, sent as a constant) and checks `success`."""
    client, project = pyodk_client
    for name in ("tanpa_media", "foto_sederhana"):
        publish(services, project, name)
    created = list(
        client.projects.create_app_users(
            display_names=["Petugas A", "Petugas B"], forms=["tanpa_media"]
        )
    )
    assert [u.displayName for u in created] == ["Petugas A", "Petugas B"]
    assert sorted(
        a.id for a in roles.list_form_assignees(services.db, project.id, "tanpa_media")
    ) == sorted(u.id for u in created)
    assert roles.list_form_assignees(services.db, project.id, "foto_sederhana") == []
    # A second call skips the existing names and assigns nothing twice.
    assert list(client.projects.create_app_users(["Petugas A"], forms=["tanpa_media"])) == []
