"""Entity lists (Central's datasets) and their properties over /v1, in Central's shapes."""

from __future__ import annotations

import pytest

from tests.factories import make_project, make_user


@pytest.fixture
def project(services):
    return make_project(services)


def test_create_add_properties_and_read_back(client, services, project):
    manager = make_user(services, project, "manager")
    base = f"/v1/projects/{project.id}/datasets"
    created = client.post(base, json={"name": "inovasi"}, auth=manager)
    assert created.status_code == 200, created.text
    body = created.json()
    assert {k: body[k] for k in ("name", "projectId", "approvalRequired", "properties")} == {
        "name": "inovasi",
        "projectId": project.id,
        "approvalRequired": False,
        "properties": [],
    }
    for name in ("opd", "tahap", "tgl.mulai"):
        added = client.post(f"{base}/inovasi/properties", json={"name": name}, auth=manager)
        assert added.json() == {"success": True}, added.text
    one = client.get(f"{base}/inovasi", auth=manager).json()
    assert [(p["name"], p["odataName"]) for p in one["properties"]] == [
        ("opd", "opd"),
        ("tahap", "tahap"),
        ("tgl.mulai", "tgl_mulai"),
    ]
    assert one["lastUpdate"] is not None and one["linkedForms"] == one["sourceForms"] == []
    listed = client.get(base, auth=manager).json()
    assert [(d["name"], d["projectId"]) for d in listed] == [("inovasi", project.id)]
    extended = client.get(base, auth=manager, headers={"X-Extended-Metadata": "true"}).json()
    assert extended[0]["entities"] == 0 and extended[0]["conflicts"] == 0


def test_duplicates_and_bad_names_are_centrals_problems(client, services, project):
    manager = make_user(services, project, "manager")
    base = f"/v1/projects/{project.id}/datasets"
    assert client.post(base, json={"name": "inovasi"}, auth=manager).is_success
    again = client.post(base, json={"name": "inovasi"}, auth=manager)
    assert again.status_code == 409 and again.json()["code"] == 409.3
    assert again.json()["details"] == {
        "fields": ["name", "projectId"],
        "values": ["inovasi", str(project.id)],
        "table": "datasets",
    }
    other_case = client.post(base, json={"name": "Inovasi"}, auth=manager)
    assert other_case.status_code == 409 and other_case.json()["code"] == 409.16
    for bad in ("__x", "a.b", "1a", "a b", ""):
        response = client.post(base, json={"name": bad}, auth=manager)
        assert response.status_code == 400, (bad, response.text)
    props = f"{base}/inovasi/properties"
    assert client.post(props, json={"name": "opd"}, auth=manager).is_success
    twice = client.post(props, json={"name": "OPD"}, auth=manager)
    assert twice.status_code == 409 and twice.json()["code"] == 409.3
    assert twice.json()["details"]["values"][0] == "opd"  # the name that exists
    for bad in ("name", "Label", "__p", "a:b"):
        response = client.post(props, json={"name": bad}, auth=manager)
        assert response.status_code == 400, (bad, response.text)
    assert (
        client.post(f"{base}/tidak_ada/properties", json={"name": "x"}, auth=manager).status_code
        == 404
    )
    assert [
        p["name"] for p in client.get(f"{base}/inovasi", auth=manager).json()["properties"]
    ] == ["opd"]


def test_only_managers_create_and_reviewers_read(client, services, project):
    manager = make_user(services, project, "manager")
    supervisor = make_user(services, project, "supervisor")
    base = f"/v1/projects/{project.id}/datasets"
    assert client.post(base, json={"name": "inovasi"}, auth=supervisor).status_code == 403
    assert client.post(base, json={"name": "inovasi"}, auth=manager).is_success
    assert client.get(f"{base}/inovasi", auth=supervisor).status_code == 200
    assert client.get(base).status_code == 401
    outsider_project = make_project(services)
    assert client.get(f"/v1/projects/{outsider_project.id}/datasets", auth=manager).status_code in (
        403,
        404,
    )
