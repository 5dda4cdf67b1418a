"""One transaction per request: every storage operation a request runs shares its unit.

The routes here are the test's own, registered on the real app with the real `db`
dependency, so each case can make a request fail exactly where it wants to.
"""

from __future__ import annotations

import uuid

import pytest
from litestar import get, post

from server.app import Services
from server.deps import DB, PathText, ProjectId
from server.guards import PUBLIC
from storage import projects
from storage.errors import InvalidInput
from storage.models import Project
from tests.conftest import make_client


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"unit-a-{tag}", f"unit-b-{tag}"


@post("/v1/__unit/two/{first:str}/{second:str}", opt=PUBLIC, status_code=201)
def create_two(db: DB, first: PathText, second: PathText, fail: bool = False) -> dict[str, bool]:
    projects.create_project(db, first)
    projects.create_project(db, second)
    if fail:
        raise InvalidInput("the request fails after its two writes")
    return {"ok": True}


@post("/v1/__unit/survive/{first:str}/{second:str}", opt=PUBLIC, status_code=201)
def one_fails_inside(db: DB, first: PathText, second: PathText) -> dict[str, bool]:
    projects.create_project(db, first)
    try:
        with db.transaction() as tx:  # an operation that writes, then fails
            tx.add(Project(name=f"{first}-never"))
            tx.flush()
            raise InvalidInput("the middle operation fails")
    except InvalidInput:
        pass
    projects.create_project(db, second)
    return {"ok": True}


@get("/v1/__unit/snapshot/{project_id:int}", opt=PUBLIC)
def read_twice(db: DB, project_id: ProjectId) -> dict[str, str]:
    before = projects.get_project(db, project_id).name
    with db.detached().transaction() as tx:  # another writer commits between the two reads
        row = tx.get(Project, project_id)
        assert row is not None
        row.name = f"{before}-renamed"
    after = projects.get_project(db, project_id).name
    return {"before": before, "after": after}


@pytest.fixture
def unit_client(services: Services):
    with make_client(services) as client:
        for handler in (create_two, one_fails_inside, read_twice):
            client.app.register(handler)
        yield client


def _exists(services: Services, name: str) -> bool:
    return projects.find_project_by_name(services.db, name) is not None


def test_a_request_commits_all_its_writes_before_it_answers(unit_client, services):
    first, second = _names()
    response = unit_client.post(f"/v1/__unit/two/{first}/{second}")
    assert response.status_code == 201, response.text
    assert _exists(services, first) and _exists(services, second)


def test_a_failed_request_leaves_none_of_its_writes(unit_client, services):
    first, second = _names()
    response = unit_client.post(f"/v1/__unit/two/{first}/{second}", params={"fail": "true"})
    assert response.status_code == 400, response.text
    assert not _exists(services, first) and not _exists(services, second)


def test_an_operation_that_fails_leaves_the_requests_other_writes(unit_client, services):
    # Each operation is a savepoint: on PostgreSQL, without one, the failed flush would abort
    # the whole transaction and the second create would fail.
    first, second = _names()
    response = unit_client.post(f"/v1/__unit/survive/{first}/{second}")
    assert response.status_code == 201, response.text
    assert _exists(services, first) and _exists(services, second)
    assert not _exists(services, f"{first}-never")


def test_every_read_of_a_get_sees_one_snapshot(unit_client, services):
    name = _names()[0]
    project = projects.create_project(services.db, name)
    response = unit_client.get(f"/v1/__unit/snapshot/{project.id}")
    assert response.status_code == 200, response.text
    assert response.json() == {"before": name, "after": name}
    # The write committed on its own, and the next request sees it.
    assert projects.get_project(services.db, project.id).name == f"{name}-renamed"
