"""Entities of an entity list over /v1 and the list's OData feed, in Central's shapes."""

from __future__ import annotations

import uuid as uuidlib

import pytest

from storage import audit, datasets
from tests.factories import make_project, make_user

UUID = "12345678-1234-4123-8123-123456789abc"


@pytest.fixture
def project(services):
    project = make_project(services)
    datasets.create_list(services.db, project.id, "inovasi")
    for name in ("opd", "tahap", "tgl.mulai"):
        datasets.add_property(services.db, project.id, "inovasi", name)
    return project


@pytest.fixture
def manager(services, project):
    return make_user(services, project, "manager")


def _base(project) -> str:
    return f"/v1/projects/{project.id}/datasets/inovasi"


def test_create_list_get_in_centrals_shape(client, project, manager):
    base = _base(project)
    created = client.post(
        f"{base}/entities",
        json={"uuid": UUID.upper(), "label": "Sekolah Ramah", "data": {"opd": "Dinas A"}},
        auth=manager,
        headers={"User-Agent": "pyodk-test/1"},
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["uuid"] == UUID  # normalised, as Central
    assert set(body) == {
        "uuid",
        "creatorId",
        "conflict",
        "createdAt",
        "updatedAt",
        "deletedAt",
        "currentVersion",
    }
    assert body["updatedAt"] is None and body["deletedAt"] is None and body["conflict"] is None
    version = body["currentVersion"]
    assert {k: version[k] for k in ("label", "current", "version", "baseVersion", "data")} == {
        "label": "Sekolah Ramah",
        "current": True,
        "version": 1,
        "baseVersion": None,
        "data": {"opd": "Dinas A"},
    }
    assert version["userAgent"] == "pyodk-test/1"
    assert version["creatorId"] == body["creatorId"] and isinstance(body["creatorId"], int)
    listed = client.get(f"{base}/entities", auth=manager).json()
    assert [e["uuid"] for e in listed] == [UUID]
    assert "data" not in listed[0]["currentVersion"]  # the list shows versions' metadata
    one = client.get(f"{base}/entities/{UUID}", auth=manager).json()
    assert one["currentVersion"]["data"] == {"opd": "Dinas A"}
    again = client.post(f"{base}/entities", json={"uuid": UUID, "label": "x"}, auth=manager)
    assert again.status_code == 409 and again.json()["code"] == 409.3
    generated = client.post(f"{base}/entities", json={"label": "Tanpa uuid"}, auth=manager)
    assert uuidlib.UUID(generated.json()["uuid"]).version == 4


def test_update_with_base_version_or_force(client, services, project, manager):
    base = _base(project)
    client.post(
        f"{base}/entities",
        json={"uuid": UUID, "label": "Awal", "data": {"opd": "A", "tahap": "1"}},
        auth=manager,
    )
    one = f"{base}/entities/{UUID}"
    updated = client.patch(f"{one}?baseVersion=1", json={"data": {"tahap": "2"}}, auth=manager)
    assert updated.status_code == 200, updated.text
    version = updated.json()["currentVersion"]
    assert (version["version"], version["baseVersion"], version["label"]) == (2, 1, "Awal")
    assert version["data"] == {"opd": "A", "tahap": "2"}  # what the update does not name stays
    assert updated.json()["updatedAt"] is not None
    stale = client.patch(f"{one}?baseVersion=1", json={"label": "Lama"}, auth=manager)
    assert stale.status_code == 409 and stale.json()["code"] == 409.15
    assert stale.json()["message"].startswith(
        "Current version of the Entity is '2' and you provided '1'."
    )
    neither = client.patch(one, json={"label": "Lama"}, auth=manager)
    assert neither.status_code == 409 and neither.json()["code"] == 409.15
    forced = client.patch(f"{one}?force=true", json={"label": "Baru"}, auth=manager)
    assert forced.json()["currentVersion"]["version"] == 3
    assert forced.json()["currentVersion"]["label"] == "Baru"
    versions = client.get(f"{one}/versions", auth=manager).json()
    assert [(v["version"], v["current"], v["label"]) for v in versions] == [
        (1, False, "Awal"),
        (2, False, "Awal"),
        (3, True, "Baru"),
    ]
    assert versions[1]["dataReceived"] == {"tahap": "2"} and versions[1]["serverDiff"] == ["tahap"]
    dataset_id = datasets.get_list(services.db, project.id, "inovasi").dataset.id
    actions = [
        a.action
        for a in audit.list_audits(services.db, action="entity")
        if a.subject_type == "dataset" and a.subject_id == dataset_id
    ]
    assert actions.count("entity.update.version") == 2 and "entity.create" in actions


def test_bad_input_is_a_clear_400(client, project, manager):
    base = _base(project)
    cases = [
        ({"label": "x", "data": {"tidak_ada": "v"}}, 400.28, "[tidak_ada] which does not exist"),
        ({"label": "x", "data": {"opd": 3}}, 400.11, "(opd)"),
        ({"data": {"opd": "v"}}, 400.2, "label"),
        ({"label": "  "}, 400.28, "blank"),
        ({"label": "x", "warna": "merah"}, 400.31, "Expected parameters"),
        ({"uuid": "bukan-uuid", "label": "x"}, 400.11, "UUID"),
        ({"entities": [], "source": {"name": "f.csv"}}, 400.31, "empty array"),
        ({"entities": [{"label": "x"}]}, 400.2, "source"),
        ({"entities": [{"label": "x"}], "source": {"name": "f", "size": "9"}}, 400.11, "size"),
    ]
    for body, code, text in cases:
        response = client.post(f"{base}/entities", json=body, auth=manager)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["code"] == code and text in response.json()["message"], body
    client.post(f"{base}/entities", json={"uuid": UUID, "label": "x"}, auth=manager)
    empty = client.patch(f"{base}/entities/{UUID}?force=true", json={}, auth=manager)
    assert empty.status_code == 400 and empty.json()["code"] == 400.28
    assert client.get(f"{base}/entities", auth=manager).json()[0]["currentVersion"]["version"] == 1
    missing = f"/v1/projects/{project.id}/datasets/tidak_ada/entities"
    assert client.post(missing, json={"label": "x"}, auth=manager).status_code == 404


def test_bulk_create_with_source_and_delete(client, services, project, manager):
    base = _base(project)
    bulk = client.post(
        f"{base}/entities",
        json={
            "entities": [
                {"label": "Satu", "data": {"opd": "A"}},
                {"label": "Dua", "data": {"opd": "B", "tahap": "2"}},
                {"uuid": UUID, "label": "Tiga"},
            ],
            "source": {"name": "inovasi.csv", "size": 3},
        },
        auth=manager,
    )
    assert bulk.json() == {"success": True}, bulk.text
    listed = client.get(f"{base}/entities", auth=manager).json()
    assert len(listed) == 3
    versions = client.get(f"{base}/entities/{UUID}/versions", auth=manager).json()
    assert versions[0]["source"]["name"] == "inovasi.csv" and versions[0]["source"]["count"] == 3
    duplicate = client.post(
        f"{base}/entities",
        json={"entities": [{"label": "a"}, {"uuid": UUID, "label": "b"}], "source": {"name": "f"}},
        auth=manager,
    )
    assert duplicate.status_code == 409
    assert len(client.get(f"{base}/entities", auth=manager).json()) == 3  # all or nothing
    deleted = client.delete(f"{base}/entities/{UUID}", auth=manager)
    assert deleted.json() == {"success": True}
    assert client.get(f"{base}/entities/{UUID}", auth=manager).status_code == 404
    assert client.delete(f"{base}/entities/{UUID}", auth=manager).status_code == 404
    assert len(client.get(f"{base}/entities", auth=manager).json()) == 2
    gone = client.get(f"{base}/entities?deleted=true", auth=manager).json()
    assert [e["uuid"] for e in gone] == [UUID] and gone[0]["deletedAt"] is not None
    # Its uuid stays taken (409.19) until it is restored.
    reused = client.post(f"{base}/entities", json={"uuid": UUID, "label": "x"}, auth=manager)
    assert reused.status_code == 409 and reused.json()["code"] == 409.19
    restored = client.post(f"{base}/entities/{UUID}/restore", auth=manager)
    assert restored.status_code == 200 and restored.json() == {"success": True}
    assert client.get(f"{base}/entities/{UUID}", auth=manager).status_code == 200
    assert client.post(f"{base}/entities/{UUID}/restore", auth=manager).status_code == 404
    actions = {a.action for a in audit.list_audits(services.db, action="entity")}
    assert {"entity.bulk.create", "entity.delete", "entity.restore"} <= actions


def test_supervisors_read_managers_write(client, services, project, manager):
    supervisor = make_user(services, project, "supervisor")
    base = _base(project)
    assert client.post(f"{base}/entities", json={"label": "x"}, auth=supervisor).status_code == 403
    assert client.post(
        f"{base}/entities", json={"uuid": UUID, "label": "x"}, auth=manager
    ).is_success
    assert client.get(f"{base}/entities/{UUID}", auth=supervisor).status_code == 200
    assert client.get(f"{base}.svc/Entities", auth=supervisor).status_code == 200
    assert client.delete(f"{base}/entities/{UUID}", auth=supervisor).status_code == 403
    assert client.get(f"{base}/entities").status_code == 401


def test_odata_feed_pages_counts_selects_and_filters(client, project, manager):
    base = _base(project)
    client.post(
        f"{base}/entities",
        json={
            "entities": [
                {"label": f"E{i}", "data": {"opd": f"O{i}", "tgl.mulai": f"2024-01-0{i}"}}
                for i in range(1, 6)
            ],
            "source": {"name": "x.csv"},
        },
        auth=manager,
    )
    service = client.get(f"{base}.svc", auth=manager)
    assert service.status_code == 200
    assert service.json()["value"] == [{"name": "Entities", "kind": "EntitySet", "url": "Entities"}]
    metadata = client.get(f"{base}.svc/$metadata", auth=manager)
    assert metadata.status_code == 200 and '<Property Name="tgl_mulai"' in metadata.text
    everything = client.get(f"{base}.svc/Entities", auth=manager).json()
    rows = everything["value"]
    assert [r["label"] for r in rows] == ["E5", "E4", "E3", "E2", "E1"]  # newest first
    assert (
        rows[0]["opd"] == "O5" and rows[0]["tgl_mulai"] == "2024-01-05" and rows[0]["tahap"] == ""
    )
    assert rows[0]["__system"]["version"] == 1 and rows[0]["__system"]["updates"] == 0
    assert everything["@odata.context"].endswith("/datasets/inovasi.svc/$metadata#Entities")
    page = client.get(f"{base}.svc/Entities?$top=2&$count=true", auth=manager).json()
    assert page["@odata.count"] == 5 and [r["label"] for r in page["value"]] == ["E5", "E4"]
    following = page["@odata.nextLink"]
    assert "$skiptoken=" in following
    second = client.get(following.split("testserver.local")[-1], auth=manager).json()
    assert [r["label"] for r in second["value"]] == ["E3", "E2"]
    skipped = client.get(f"{base}.svc/Entities?$skip=4", auth=manager).json()
    assert [r["label"] for r in skipped["value"]] == ["E1"] and "@odata.nextLink" not in skipped
    selected = client.get(f"{base}.svc/Entities?$select=__id,label", auth=manager).json()
    assert set(selected["value"][0]) == {"__id", "label"}
    version = client.get(f"{base}.svc/Entities?$select=__system/version", auth=manager).json()
    assert version["value"][0] == {"__system": {"version": 1}}
    uuid = rows[0]["__id"]
    filtered = client.get(f"{base}.svc/Entities?$filter=__id eq '{uuid}'", auth=manager).json()
    assert [r["label"] for r in filtered["value"]] == ["E5"]
    client.delete(f"{base}/entities/{uuid}", auth=manager)
    assert len(client.get(f"{base}.svc/Entities", auth=manager).json()["value"]) == 4
    with_deleted = client.get(
        f"{base}.svc/Entities?$filter=__system/deletedAt ne null", auth=manager
    ).json()
    assert [r["__id"] for r in with_deleted["value"]] == [uuid]
    unknown = client.get(f"{base}.svc/Entities?$select=tidak_ada", auth=manager)
    assert unknown.status_code == 400 and unknown.json()["code"] == 400.23
    bad_filter = client.get(f"{base}.svc/Entities?$filter=opd eq 'x'", auth=manager)
    assert bad_filter.status_code == 400
    assert client.get(f"{base}.svc/Other", auth=manager).status_code == 404
    assert (
        client.get(f"/v1/projects/{project.id}/datasets/nope.svc", auth=manager).status_code == 404
    )
