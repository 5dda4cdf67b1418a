"""Entities from submissions, through the real app as Collect sends them (OpenRosa), on every
backend: publish creates the list, a submission creates an entity, a follow-up updates it,
stale offline updates are applied and marked, an offline run lands in its order."""

from __future__ import annotations

import csv
import io
import uuid as uuidlib

import pytest
from sqlmodel import col, select

from storage import audit, datasets, entity_submissions
from storage.models import Entity, EntityLink
from tests.collect import HEADERS, CollectClient
from tests.factories import key_url, make_app_user, make_project, make_user, publish

OPENROSA = {**HEADERS, "User-Agent": "org.odk.collect.android/v2024.3.0 test"}


@pytest.fixture
def field(services, client):
    project = make_project(services)
    publish(services, project, "entitas_daftar")
    publish(services, project, "entitas_ubah")
    app_user = make_app_user(services, project, forms=["entitas_daftar", "entitas_ubah"])
    return project, app_user


@pytest.fixture
def manager(services, field):
    return make_user(services, field[0], "manager")


def _entity_meta(**attrs: str | None) -> str:
    label = attrs.pop("label", None)
    text = " ".join(f'{k}="{v}"' for k, v in attrs.items() if v is not None)
    inner = f"<label>{label}</label>" if label is not None else ""
    return f"<entity {text}>{inner}</entity>"


def _xml(form_id: str, body: str, entity: str = "", instance_id: str | None = None) -> bytes:
    instance_id = instance_id or f"uuid:{uuidlib.uuid4()}"
    return (
        f'<data id="{form_id}" version="1">{body}'
        f"<meta><instanceID>{instance_id}</instanceID>{entity}</meta></data>"
    ).encode()


def _send(client, project, app_user, xml: bytes):
    return client.post(
        f"{key_url(project, app_user)}/submission",
        headers=OPENROSA,
        files=[("xml_submission_file", ("s.xml", xml, "text/xml"))],
    )


def _register(client, project, app_user, uuid: str, name: str, opd="dinkes", tahap="inisiatif"):
    entity = _entity_meta(dataset="inovasi", create="1", id=f"uuid:{uuid}", label=name)
    xml = _xml(
        "entitas_daftar", f"<opd>{opd}</opd><nama>{name}</nama><tahap>{tahap}</tahap>", entity
    )
    return _send(client, project, app_user, xml)


def _update(client, project, app_user, uuid: str, tahap: str, base: str, **offline: str):
    entity = _entity_meta(
        dataset="inovasi",
        update="1",
        id=uuid,
        baseVersion=base,
        trunkVersion=offline.get("trunk"),
        branchId=offline.get("branch"),
    )
    body = f"<opd>dinkes</opd><inovasi>{uuid}</inovasi><tahap>{tahap}</tahap>"
    return _send(client, project, app_user, _xml("entitas_ubah", body, entity))


def _entity(client, project, manager, uuid: str) -> dict:
    response = client.get(
        f"/v1/projects/{project.id}/datasets/inovasi/entities/{uuid}", auth=manager
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_publish_creates_the_list_and_its_properties(client, field, manager):
    project, _ = field
    listed = client.get(f"/v1/projects/{project.id}/datasets", auth=manager).json()
    assert [d["name"] for d in listed] == ["inovasi"]
    got = client.get(f"/v1/projects/{project.id}/datasets/inovasi", auth=manager).json()
    # entitas_daftar saves opd and tahap; entitas_ubah saves tahap (already there)
    assert [p["name"] for p in got["properties"]] == ["opd", "tahap"]
    # Both forms fill the list (one creates, one updates); the follow-up also reads it.
    assert [f["xmlFormId"] for f in got["sourceForms"]] == ["entitas_daftar", "entitas_ubah"]
    assert got["linkedForms"] == [{"xmlFormId": "entitas_ubah", "name": "Ubah inovasi"}]
    forms_of = {p["name"]: [f["xmlFormId"] for f in p["forms"]] for p in got["properties"]}
    assert forms_of == {"opd": ["entitas_daftar"], "tahap": ["entitas_daftar", "entitas_ubah"]}


def test_a_form_adding_properties_to_an_existing_list_warns(services, field):
    project, _ = field
    from pathlib import Path

    from storage import forms as form_store

    source = (Path(__file__).parents[1] / "data" / "entitas_daftar.md").read_text()
    changed = source.replace(
        "| | text | tahap | Tahapan | tahap |",
        "| | text | tahap | Tahapan | tahap |\n| | text | urusan | Urusan | urusan |",
    ).replace("| entitas_daftar | Daftar inovasi | 1 |", "| entitas_daftar | Daftar inovasi | 2 |")
    published = form_store.publish_xlsform(
        services.db, services.blobs, project.id, changed.encode(), "entitas_daftar.md"
    )
    assert any("urusan" in w and "inovasi" in w for w in published.warnings)
    props = [p.name for p in datasets.get_list(services.db, project.id, "inovasi").properties]
    assert props == ["opd", "tahap", "urusan"]


def test_a_submission_creates_and_a_follow_up_updates(services, client, field, manager):
    project, app_user = field
    uuid = str(uuidlib.uuid4())
    assert _register(client, project, app_user, uuid, "SIGAP Bumil").status_code == 201
    created = _entity(client, project, manager, uuid)
    assert created["currentVersion"]["label"] == "SIGAP Bumil"
    assert created["currentVersion"]["data"] == {"opd": "dinkes", "tahap": "inisiatif"}
    assert created["currentVersion"]["version"] == 1
    assert created["creatorId"] == app_user.actor.id
    assert created["currentVersion"]["userAgent"].startswith("org.odk.collect.android")

    assert _update(client, project, app_user, uuid, "uji_coba", "1").status_code == 201
    updated = _entity(client, project, manager, uuid)
    version = updated["currentVersion"]
    assert (version["version"], version["baseVersion"], version["label"]) == (2, 1, "SIGAP Bumil")
    assert version["data"] == {"opd": "dinkes", "tahap": "uji_coba"}
    assert version["dataReceived"] == {"tahap": "uji_coba"}
    assert updated["conflict"] is None

    # Each version names the submission that made it, and the activity says so.
    with services.db.read() as tx:
        links = tx.exec(
            select(EntityLink.how)
            .join(Entity, col(Entity.id) == EntityLink.entity_id)
            .where(Entity.uuid == uuid)
            .order_by(col(EntityLink.id))
        ).all()
    assert list(links) == ["created", "updated"]
    actions = [a.action for a in audit.list_audits(services.db, limit=20)]
    assert "entity.create" in actions and "entity.update.version" in actions


def test_a_stale_update_is_applied_and_marked_hard_or_soft(client, field, manager):
    project, app_user = field
    uuid = str(uuidlib.uuid4())
    _register(client, project, app_user, uuid, "Sekolah Ramah")
    # Two phones both made their update from version 1, offline.
    assert _update(client, project, app_user, uuid, "uji_coba", "1").status_code == 201
    assert _update(client, project, app_user, uuid, "penerapan", "1").status_code == 201
    entity = _entity(client, project, manager, uuid)
    # The later one is applied (its values win) and both changes are kept as versions.
    assert entity["currentVersion"]["version"] == 3
    assert entity["currentVersion"]["data"]["tahap"] == "penerapan"
    assert entity["conflict"] == "hard"
    assert entity["currentVersion"]["conflictingProperties"] == ["tahap"]
    versions = client.get(
        f"/v1/projects/{project.id}/datasets/inovasi/entities/{uuid}/versions", auth=manager
    ).json()
    assert [v["data"]["tahap"] for v in versions] == ["inisiatif", "uji_coba", "penerapan"]
    # Version 3 was made on version 1: the conflict is its; version 2 is the last good one.
    assert [v["conflict"] for v in versions] == [None, None, "hard"]
    assert [v["lastGoodVersion"] for v in versions] == [False, True, False]
    assert [v["relevantToConflict"] for v in versions] == [True, True, True]
    assert versions[2]["baseDiff"] == ["tahap"] and versions[2]["serverDiff"] == ["tahap"]
    assert versions[2]["source"]["submission"]["xmlFormId"] == "entitas_ubah"
    extended = client.get(
        f"/v1/projects/{project.id}/datasets",
        headers={"X-Extended-Metadata": "true"},
        auth=manager,
    ).json()
    assert (extended[0]["entities"], extended[0]["conflicts"]) == (1, 1)

    # A stale update that sends what the server already has is only a soft conflict.
    other = str(uuidlib.uuid4())
    _register(client, project, app_user, other, "Pasar Digital")
    _update(client, project, app_user, other, "uji_coba", "1")
    _update(client, project, app_user, other, "uji_coba", "1")
    assert _entity(client, project, manager, other)["conflict"] == "soft"

    # A supervisor resolves the conflict; resolving again is 400.32.
    url = f"/v1/projects/{project.id}/datasets/inovasi/entities/{uuid}"
    resolved = client.patch(f"{url}?resolve=true&baseVersion=3", json={}, auth=manager)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["conflict"] is None
    again = client.patch(f"{url}?resolve=true&baseVersion=3", json={}, auth=manager)
    assert again.status_code == 400 and again.json()["code"] == 400.32


def test_an_offline_run_lands_in_the_phones_order(services, client, field, manager):
    project, app_user = field
    uuid = str(uuidlib.uuid4())
    _register(client, project, app_user, uuid, "E-Posyandu")
    branch = str(uuidlib.uuid4())
    # On one phone, offline: v1 -> (branch 1st) -> (branch 2nd). The 2nd arrives first.
    second = _update(client, project, app_user, uuid, "penerapan", "2", trunk="1", branch=branch)
    assert second.status_code == 201  # held, never refused
    held = _entity(client, project, manager, uuid)
    assert held["currentVersion"]["version"] == 1
    first = _update(client, project, app_user, uuid, "uji_coba", "1", trunk="1", branch=branch)
    assert first.status_code == 201
    entity = _entity(client, project, manager, uuid)
    assert entity["currentVersion"]["version"] == 3
    assert entity["currentVersion"]["data"]["tahap"] == "penerapan"
    assert entity["conflict"] is None
    actions = [a.action for a in audit.list_audits(services.db, limit=30)]
    assert "submission.backlog.hold" in actions and "submission.backlog.reprocess" in actions


def test_a_held_update_whose_predecessor_never_came_is_forced(services, client, field, manager):
    project, app_user = field
    uuid = str(uuidlib.uuid4())
    _register(client, project, app_user, uuid, "Lapor Cepat")
    branch = str(uuidlib.uuid4())
    _update(client, project, app_user, uuid, "penerapan", "3", trunk="1", branch=branch)
    with services.db.transaction() as tx:
        assert entity_submissions.process_backlog(tx) == 0  # not old enough yet
        assert entity_submissions.process_backlog(tx, force_all=True) == 1
    entity = _entity(client, project, manager, uuid)
    assert entity["currentVersion"]["version"] == 2
    assert entity["currentVersion"]["data"]["tahap"] == "penerapan"


def test_entity_problems_never_refuse_the_submission(services, client, field, manager):
    project, app_user = field
    missing = str(uuidlib.uuid4())
    response = _update(client, project, app_user, missing, "uji_coba", "1")
    assert response.status_code == 201
    errors = [a for a in audit.list_audits(services.db, limit=10) if a.action == "entity.error"]
    assert errors and errors[0].details["problem"]["problemCode"] == 404.8
    # An update form cannot create; a create with an existing uuid is 409.3, logged.
    uuid = str(uuidlib.uuid4())
    _register(client, project, app_user, uuid, "Satu")
    assert _register(client, project, app_user, uuid, "Dua").status_code == 201
    errors = [a for a in audit.list_audits(services.db, limit=10) if a.action == "entity.error"]
    assert errors[0].details["problem"]["problemCode"] == 409.3
    assert _entity(client, project, manager, uuid)["currentVersion"]["label"] == "Satu"
    # No label on a create: 400.28, nothing made.
    nameless = str(uuidlib.uuid4())
    assert _register(client, project, app_user, nameless, "").status_code == 201
    gone = client.get(
        f"/v1/projects/{project.id}/datasets/inovasi/entities/{nameless}", auth=manager
    )
    assert gone.status_code == 404


def test_approval_required_lists_wait_for_approval(services, client, field, manager):
    project, app_user = field
    patched = client.patch(
        f"/v1/projects/{project.id}/datasets/inovasi", json={"approvalRequired": True}, auth=manager
    )
    assert patched.status_code == 200, patched.text
    uuid = str(uuidlib.uuid4())
    assert _register(client, project, app_user, uuid, "Menunggu").status_code == 201
    url = f"/v1/projects/{project.id}/datasets/inovasi/entities/{uuid}"
    assert client.get(url, auth=manager).status_code == 404
    [row] = client.get(
        f"/v1/projects/{project.id}/forms/entitas_daftar/submissions", auth=manager
    ).json()[:1]
    review = client.patch(
        f"/v1/projects/{project.id}/forms/entitas_daftar/submissions/{row['instanceId']}",
        json={"reviewState": "approved"},
        auth=manager,
    )
    assert review.status_code == 200, review.text
    assert client.get(url, auth=manager).json()["currentVersion"]["label"] == "Menunggu"

    # Another waits; turning approval off asks what to do with it (400.29), convert=true
    # makes its entity now.
    waiting = str(uuidlib.uuid4())
    _register(client, project, app_user, waiting, "Masih menunggu")
    dataset = f"/v1/projects/{project.id}/datasets/inovasi"
    off = client.patch(dataset, json={"approvalRequired": False}, auth=manager)
    assert off.status_code == 400 and off.json()["code"] == 400.29
    assert off.json()["message"] == "There are 1 pending submissions"
    off = client.patch(f"{dataset}?convert=true", json={"approvalRequired": False}, auth=manager)
    assert off.status_code == 200 and off.json()["approvalRequired"] is False
    got = client.get(f"{dataset}/entities/{waiting}", auth=manager)
    assert got.json()["currentVersion"]["label"] == "Masih menunggu"


def test_entities_in_repeats_each_make_one(services, client, field, manager):
    project, app_user = field
    publish(services, project, "entitas_kunjungan")
    from tests.factories import assign_forms

    assign_forms(services, project, app_user, "entitas_kunjungan")
    ids = [str(uuidlib.uuid4()) for _ in range(2)]
    rows = "".join(
        f"<inovasi_baru><nama>{name}</nama><tahap>inisiatif</tahap><meta>"
        + _entity_meta(dataset="inovasi", create="1", id=uid, label=name)
        + "</meta></inovasi_baru>"
        for uid, name in zip(ids, ["Kopi Sawahlunto", "Tambang Wisata"], strict=True)
    )
    xml = (
        f'<data id="entitas_kunjungan" version="1"><opd>dispar</opd>{rows}'
        f"<meta><instanceID>uuid:{uuidlib.uuid4()}</instanceID></meta></data>"
    ).encode()
    assert _send(client, project, app_user, xml).status_code == 201
    labels = [_entity(client, project, manager, u)["currentVersion"]["label"] for u in ids]
    assert labels == ["Kopi Sawahlunto", "Tambang Wisata"]
    assert _entity(client, project, manager, ids[1])["currentVersion"]["data"] == {
        "tahap": "inisiatif"
    }


def test_the_whole_path_as_collect_walks_it(client, field, manager):
    """XLSForm publish -> a registration from Collect -> the list in the follow-up form's
    manifest and CSV -> an update from Collect -> a new hash and CSV -> REST and OData."""
    project, app_user = field
    collect = CollectClient(client, f"{client.base_url}{key_url(project, app_user)}")
    [follow_up] = [f for f in collect.form_list() if f.form_id == "entitas_ubah"]

    uuid = str(uuidlib.uuid4())
    registration = _entity_meta(dataset="inovasi", create="1", id=f"uuid:{uuid}", label="E-Lapor")
    body = "<opd>kominfo</opd><nama>E-Lapor</nama><tahap>inisiatif</tahap>"
    assert collect.submit(_xml("entitas_daftar", body, registration)).status == 201

    [(name, first_hash, url)] = collect.manifest(follow_up.manifest_url)
    assert name == "inovasi.csv" and first_hash.startswith("md5:")
    rows = list(csv.reader(io.StringIO(collect.download(url).text)))
    assert rows == [
        ["name", "label", "__version", "opd", "tahap"],
        [uuid, "E-Lapor", "1", "kominfo", "inisiatif"],
    ]

    update = _entity_meta(dataset="inovasi", update="1", id=uuid, baseVersion="1")
    body = f"<opd>kominfo</opd><inovasi>{uuid}</inovasi><tahap>penerapan</tahap>"
    assert collect.submit(_xml("entitas_ubah", body, update)).status == 201

    [(_, second_hash, url)] = collect.manifest(follow_up.manifest_url)
    assert second_hash != first_hash  # Collect downloads the list again
    rows = list(csv.reader(io.StringIO(collect.download(url).text)))
    assert rows[1] == [uuid, "E-Lapor", "2", "kominfo", "penerapan"]

    rest = _entity(client, project, manager, uuid)
    assert rest["currentVersion"]["version"] == 2 and rest["creatorId"] == app_user.actor.id
    feed = client.get(
        f"/v1/projects/{project.id}/datasets/inovasi.svc/Entities",
        params={"$filter": f"__id eq '{uuid}'"},
        auth=manager,
    ).json()
    [row] = feed["value"]
    assert (row["label"], row["opd"], row["tahap"]) == ("E-Lapor", "kominfo", "penerapan")
    assert row["__system"]["version"] == 2 and row["__system"]["updates"] == 1
