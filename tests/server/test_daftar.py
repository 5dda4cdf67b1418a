"""The officers' list (`petugas`), on every backend: `make run` makes it before it publishes the
shipped forms, a manager keeps it on its page (/p/{id}/daftar/petugas: add, edit as a new
version, delete after a confirmation, every post with the CSRF token), and the visit form's
phones get it as `petugas.csv`. A form read before the list exists still publishes, the file
missing as Central has it, and the page then offers to make the list."""

from __future__ import annotations

import csv
import io
from datetime import date
from xml.etree import ElementTree

import pytest
from sqlmodel import select

from forms.instance import read_instance
from server import bootstrap
from server.bootstrap import library_forms
from storage import browse, datasets, entities, entity_links, submissions
from storage import forms as form_store
from storage.models import Entity, EntityLink
from storage.submissions import Sender
from tests.collect import HEADERS, MANIFEST_NS, instance_xml, new_instance_id
from tests.factories import LIBRARY_VERSION, key_url, make_app_user, make_project, make_user
from tests.server.test_ui import login

VISIT = "jebol_sipera_kunjungan"
NIP = "198501012010011001"


def _publish_visit(services, project) -> None:
    path = next(p for p in library_forms() if VISIT in p.name)
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, path.read_bytes(), path.name
    )


@pytest.fixture
def field(services):
    """A project set up as `make run` sets one up (the kept lists, then the visit form), a
    phone assigned the visit form, a manager and a supervisor."""
    project = make_project(services)
    assert bootstrap.install_lists(services, project.id) == [("petugas", "created")]
    assert bootstrap.install_lists(services, project.id) == [("petugas", "unchanged")]
    _publish_visit(services, project)
    phone = make_app_user(services, project, forms=[VISIT])
    manager, _ = make_user(services, project, "manager")
    supervisor, _ = make_user(services, project, "supervisor")
    return project, phone, manager, supervisor


def _officers_file(client, project, phone) -> tuple[ElementTree.Element | None, list[list[str]]]:
    """The visit form's manifest entry for petugas.csv (None if not offered) and the CSV."""
    base = key_url(project, phone)
    manifest = client.get(f"{base}/forms/{VISIT}/manifest", headers=HEADERS)
    assert manifest.status_code == 200, manifest.text
    item = next(
        (
            m
            for m in ElementTree.fromstring(manifest.content).findall(f"{MANIFEST_NS}mediaFile")
            if m.findtext(f"{MANIFEST_NS}filename") == "petugas.csv"
        ),
        None,
    )
    if item is None:
        return None, []
    response = client.get(f"{base}/forms/{VISIT}/attachments/petugas.csv", headers=HEADERS)
    assert response.status_code == 200, response.text
    return item, list(csv.reader(io.StringIO(response.content.decode())))


def _post(client, url: str, **data: str):
    token = client.cookies["jebol_csrf"]
    return client.post(url, data={**data, "_csrf_token": token}, follow_redirects=False)


def test_a_manager_keeps_the_officers_and_phones_get_them(services, client, field):
    project, phone, manager, _ = field
    page = f"/p/{project.id}/daftar/petugas"
    item, rows = _officers_file(client, project, phone)
    assert item is not None and item.get("type") == "entityList"
    assert rows == [["name", "label", "__version", "nip", "jabatan"]]
    empty_hash = item.findtext(f"{MANIFEST_NS}hash")

    assert login(client, manager).status_code == 303
    shown = client.get(page)
    assert shown.status_code == 200 and "Petugas Barenlitbangda" in shown.text
    assert "Daftar masih kosong" in shown.text and "Jabatan" in shown.text
    assert f'href="{page}"' in client.get(f"/p/{project.id}/forms").text  # linked there

    # A post without the CSRF token is refused and changes nothing.
    bare = client.post(page, data={"label": "Tanpa Token"}, follow_redirects=False)
    assert bare.status_code == 403
    added = _post(
        client, page, label=" Budi Santoso ", **{"prop:nip": NIP, "prop:jabatan": "Analis"}
    )
    assert added.status_code == 303 and added.headers["location"].endswith("?done=added")
    assert "Budi Santoso" in client.get(page).text
    item, rows = _officers_file(client, project, phone)
    [(uuid, label, version, nip, jabatan)] = rows[1:]
    assert (label, version, nip, jabatan) == ("Budi Santoso", "1", NIP, "Analis")
    assert item.findtext(f"{MANIFEST_NS}hash") != empty_hash  # phones fetch it again

    one = f"{page}/e/{uuid}"
    edited = _post(client, one, base_version="1", label="Budi Santoso", **{"prop:nip": NIP})
    assert edited.headers["location"].endswith("?done=saved")  # jabatan cleared
    same = _post(client, one, base_version="2", label="Budi Santoso", **{"prop:nip": NIP})
    assert same.headers["location"].endswith("?done=unchanged")  # no version for nothing
    stale = _post(client, one, base_version="1", label="Budi S.", **{"prop:nip": NIP})
    assert stale.status_code == 409 and "diubah orang lain" in stale.text
    versions = entities.list_versions(services.db, project.id, "petugas", uuid)
    assert [(v.version, v.label, v.data) for v in versions] == [
        (1, "Budi Santoso", {"nip": NIP, "jabatan": "Analis"}),
        (2, "Budi Santoso", {"nip": NIP, "jabatan": ""}),
    ]
    assert {v.creator_id for v in versions} == {_actor(services, manager)}
    _, rows = _officers_file(client, project, phone)
    assert rows[1][1:] == ["Budi Santoso", "2", NIP, ""]

    # Deleting asks first; the confirmation's post deletes.
    confirm = client.get(f"{one}/hapus")
    assert confirm.status_code == 200 and "Hapus Budi Santoso?" in confirm.text
    assert f'action="{one}/hapus"' in confirm.text
    assert "Budi Santoso" in client.get(page).text  # asking deleted nothing
    deleted = _post(client, f"{one}/hapus")
    assert deleted.headers["location"].endswith("?done=deleted")
    _, rows = _officers_file(client, project, phone)
    assert rows == [["name", "label", "__version", "nip", "jabatan"]]
    assert _post(client, f"{one}/hapus").status_code == 404
    assert _post(client, page, label=" ").status_code == 400  # a name is needed


def test_only_managers_keep_the_list(client, field):
    project, _, _, supervisor = field
    page = f"/p/{project.id}/daftar/petugas"
    login(client, supervisor)
    assert client.get(page).status_code == 403
    assert _post(client, page, label="Siti").status_code == 403
    assert _post(client, f"{page}/buat").status_code == 403


def test_the_visit_form_publishes_before_the_list_exists(services, client):
    """As Central: the form publishes, petugas.csv is missing (not offered to phones) until
    the list is made; here the page makes it. A list forms fill is not kept here."""
    project = make_project(services)
    _publish_visit(services, project)
    phone = make_app_user(services, project, forms=[VISIT])
    manager, password = make_user(services, project, "manager")
    assert _officers_file(client, project, phone) == (None, [])
    listing = client.get(
        f"/v1/projects/{project.id}/forms/{VISIT}/attachments", auth=(manager, password)
    ).json()
    [attachment] = [a for a in listing if a["name"] == "petugas.csv"]
    assert (attachment["exists"], attachment["datasetExists"]) == (False, False)

    login(client, manager)
    page = f"/p/{project.id}/daftar/petugas"
    assert "Buat daftar ini" in client.get(page).text
    assert _post(client, f"{page}/buat").headers["location"].endswith("?done=created")
    item, rows = _officers_file(client, project, phone)
    assert item is not None and rows == [["name", "label", "__version", "nip", "jabatan"]]
    # The visit form registers innovations: that list changes through the forms only.
    assert client.get(f"/p/{project.id}/daftar/inovasi").status_code == 409
    assert _post(client, f"/p/{project.id}/daftar/inovasi", label="x").status_code == 409
    assert client.get(f"/p/{project.id}/daftar/tidak_ada").status_code == 404
    # Any list no form fills is kept the same way, and linked from the others.
    datasets.ensure_list(services.db, project.id, "mitra", ["kontak"])
    other = client.get(f"/p/{project.id}/daftar/mitra")
    assert other.status_code == 200 and "Daftar mitra" in other.text
    assert 'name="prop:kontak"' in other.text
    assert f'href="/p/{project.id}/daftar/mitra"' in client.get(page).text


def test_a_visit_keeps_its_officers_apart_from_its_innovations(services, field):
    """A visit stores the officers it chose (their ids) and their names (the form's calculate,
    written here as a phone writes it); choosing officers links the visit to no innovation, so
    its typed innovation name is still matched to the registered innovation."""
    project = field[0]
    budi, sari = (
        entities.create(services.db, project.id, "petugas", {"label": name}).entity.uuid
        for name in ("Budi Santoso", "Sari Dewi")
    )
    entities.create(
        services.db, project.id, "inovasi", {"label": "Siaga Banjir", "data": {"opd": "bpbd"}}
    )
    body = (
        "<g_kunjungan><tgl_kunjungan>2026-11-02</tgl_kunjungan><opd>bpbd</opd>"
        f"<petugas>{budi} {sari}</petugas><petugas_nama>Budi Santoso, Sari Dewi</petugas_nama>"
        "</g_kunjungan><inovasi><inv_nama>Siaga banjir</inv_nama>"
        f"<inv_tl_petugas>{sari}</inv_tl_petugas><inv_tl_petugas_nama>Sari Dewi"
        "</inv_tl_petugas_nama><inv_tl_tanggal>2026-11-20</inv_tl_tanggal></inovasi>"
    )
    instance_id = new_instance_id()
    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        instance_xml(VISIT, LIBRARY_VERSION, instance_id, body),
        [],
        sender=Sender(actor_id=None),
    )
    stored = submissions.get_submission(services.db, project.id, VISIT, instance_id)
    visit = read_instance(stored.current.xml).values
    assert visit["g_kunjungan"]["petugas_nama"] == "Budi Santoso, Sari Dewi"
    assert visit["inovasi"]["inv_tl_petugas_nama"] == "Sari Dewi"
    submission_id = stored.submission.id
    assert entity_links.linked_entities(services.db, [submission_id]) == {}
    report = entity_links.link_typed_names(services.db, project.id)
    assert (report.matched, report.unmatched) == (1, [])
    [innovation] = entity_links.linked_entities(services.db, [submission_id])[submission_id]
    assert innovation != budi and innovation != sari
    # The visit is linked to the officers it chose too (as Central links a select_from_file
    # of a list's entities); coverage counts the one innovation for the OPD, never an officer.
    with services.db.read() as tx:
        officers = tx.exec(
            select(Entity.uuid)
            .join(EntityLink, EntityLink.entity_id == Entity.id)
            .where(EntityLink.submission_id == submission_id, Entity.uuid.in_((budi, sari)))
        ).all()
    assert sorted(officers) == sorted((budi, sari))
    [bpbd] = [
        c
        for c in browse.opd_coverage(
            services.db, project.id, lambda labels, v: v, date(2026, 11, 27)
        )
        if c.opd == "bpbd"
    ]
    assert (bpbd.visits, bpbd.innovations) == (1, 1)


def _actor(services, email: str) -> int:
    from storage import users

    found = users.find_user_by_email(services.db, email)
    assert found is not None
    return found.actor_id
