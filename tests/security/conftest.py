"""Shared parts of the hostile-input battery: a small world per test, the state to compare
("nothing was stored"), and the check that the server still answers a normal request."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from server.app import Services
from storage import roles, users
from storage.models import (
    Blob,
    Comment,
    Form,
    FormAttachment,
    FormVersion,
    Submission,
    SubmissionAttachment,
    SubmissionVersion,
)
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.factories import assign_forms, make_app_user, make_project, photo_body, publish

PASSWORD = "kata-sandi-panjang"
FORM_ID = "foto_sederhana"
STORED_TABLES = (
    Submission,
    SubmissionVersion,
    SubmissionAttachment,
    Comment,
    Form,
    FormVersion,
    FormAttachment,
    Blob,
)


@dataclass
class World:
    """A project with the photo test form, an app user and a manager/supervisor pair."""

    project_id: int
    key: str  # the app user's token
    manager: tuple[str, str]
    supervisor: tuple[str, str]
    manager_token: str

    @property
    def openrosa(self) -> str:
        return f"/v1/key/{self.key}/projects/{self.project_id}"

    @property
    def form(self) -> str:
        return f"/v1/projects/{self.project_id}/forms/{FORM_ID}"

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.manager_token}"}


@pytest.fixture
def world(services: Services) -> World:
    return make_world(services)


def make_world(services: Services) -> World:
    project = make_project(services)
    publish(services, project)
    app_user = make_app_user(services, project)
    assign_forms(services, project, app_user)
    tag = uuid.uuid4().hex[:8]
    people = {}
    for role in ("manager", "supervisor"):
        email = f"{role}-sec-{tag}@example.org"
        user = users.create_user(services.db, email, PASSWORD)
        roles.assign_role(services.db, project.id, role, user.actor_id)
        people[role] = (email, PASSWORD, user.actor_id)
    token, _ = users.create_session(services.db, people["manager"][2], 1)
    return World(project.id, app_user.token, people["manager"][:2], people["supervisor"][:2], token)


def stored_state(services: Services, blobs: bool = True) -> dict[str, int]:
    """Row counts of every table that keeps submitted or uploaded data, the blob store's keys
    (unless `blobs` is false: listing a bucket is the slow part) and the files left in the
    temporary upload folder."""
    state: dict[str, int] = {}
    with services.db.read() as session:
        for table in STORED_TABLES:
            state[table.__tablename__] = session.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
    if blobs:
        state["blob keys"] = sum(1 for _ in services.blobs.iter_keys())
    tmp = Path(services.settings.tmp_dir)
    state["tmp files"] = sum(1 for p in tmp.glob("*") if p.is_file()) if tmp.exists() else 0
    return state


@contextmanager
def nothing_stored(services: Services, blobs: bool = True) -> Iterator[None]:
    """Fails when the block stored anything (or left a file in the temporary folder)."""
    before = stored_state(services, blobs)
    yield
    after = stored_state(services, blobs)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def readable_error(response) -> str:
    """The message of a 4xx: Central's JSON `message`, the OpenRosa envelope's text, or the
    UI page; it must say something (not an empty body, not a stack trace)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    text = response.text
    assert "Traceback" not in text and 'File "' not in text, text[:300]
    if response.headers.get("content-type", "").startswith("application/json"):
        message = response.json()["message"]
    else:
        message = text
    assert len(message.strip()) >= 10, text[:300]
    return message


def assert_alive(client: TestClient, world: World) -> None:
    """The server still answers a normal request, and stores a normal submission."""
    assert client.get("/health/live").status_code == 200
    listed = client.get(f"{world.openrosa}/formList", headers=HEADERS)
    assert listed.status_code == 200 and FORM_ID.encode() in listed.content
    iid = new_instance_id()
    xml = instance_xml(FORM_ID, "1", iid, photo_body(main=None))
    sent = client.post(
        f"{world.openrosa}/submission",
        headers=HEADERS,
        files=[("xml_submission_file", ("s.xml", xml, "text/xml"))],
    )
    assert sent.status_code == 201, sent.text


def ui_login(client: TestClient, email: str, password: str = PASSWORD) -> None:
    """Log the client in to the supervisor UI (which also gives it the CSRF cookie)."""
    page = client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "next": "/", "_csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:300]


MULTIPART_BOUNDARY = "jebolsecurity"


def multipart_submission(xml: bytes, photo: bytes) -> bytes:
    """A Collect-style multipart body (the XML, then one photo) as raw bytes, for tests that
    speak HTTP on a socket; its Content-Type boundary is MULTIPART_BOUNDARY."""
    b = MULTIPART_BOUNDARY
    return (
        (
            f'--{b}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
            f'filename="s.xml"\r\nContent-Type: text/xml\r\n\r\n'
        ).encode()
        + xml
        + (
            f'\r\n--{b}\r\nContent-Disposition: form-data; name="utama.jpg"; '
            f'filename="utama.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + photo
        + f"\r\n--{b}--\r\n".encode()
    )
