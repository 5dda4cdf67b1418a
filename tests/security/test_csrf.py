"""CSRF on the supervisor UI: every POST route of the app outside /v1 (enumerated from the
app's own route table, so a new one cannot be forgotten) answers 403 without the CSRF token
or with a forged one, changing nothing, and works with the token."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from storage import app_users, users
from storage import forms as form_store
from storage.models import AppUser, Form, Submission
from tests.collect import instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import (
    assign_forms,
    make_app_user,
    make_project,
    photo_body,
    publish,
    xlsx_from_md,
)
from tests.security.conftest import PASSWORD, ui_login

EXEMPT = ("/v1/", "/f/", "/static/", "/schema", "/health")  # not the UI (CSRFConfig exclude)


def _ui_posts(app) -> set[str]:
    return {
        route.path
        for route in app.routes
        if "POST" in getattr(route, "methods", ()) and not route.path.startswith(EXEMPT)
    }


def _everything(services) -> tuple:
    """Row counts of every table, and the states a forged post would change."""
    with services.db.read() as session:
        counts = tuple(
            session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in SQLModel.metadata.sorted_tables
        )
        states = tuple(
            session.execute(sa.select(Submission.review_state).order_by(Submission.id)).scalars()
        )
        forms = tuple(session.execute(sa.select(Form.state).order_by(Form.id)).scalars())
        revoked = tuple(
            session.execute(sa.select(AppUser.revoked_at).order_by(AppUser.id)).scalars()
        )
    return counts, states, forms, revoked


@pytest.fixture
def scene(services, tmp_path):
    """A project with a published form, a draft of it, a submission, an app user; an admin
    logged in to the UI; and the form data each UI post needs to succeed."""
    project = make_project(services)
    publish(services, project)
    form_store.draft_from_published(services.db, project.id, "foto_sederhana")
    iid = new_instance_id()
    from storage import submissions
    from storage.submissions import Sender

    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        instance_xml("foto_sederhana", "1", iid, photo_body(main=None)),
        sender=Sender(actor_id=None),
    )
    app_user = make_app_user(services, project)
    assign_forms(services, project, app_user)
    from storage import datasets, entities

    datasets.create_list(services.db, project.id, "inovasi")
    innovation = entities.create(services.db, project.id, "inovasi", {"label": "SIGAP Bumil"})
    datasets.ensure_list(services.db, project.id, "petugas", ["nip", "jabatan"])
    officer = entities.create(services.db, project.id, "petugas", {"label": "Budi"}).entity.uuid
    officers = f"/p/{project.id}/daftar/petugas"
    submission_id = submissions.get_submission(
        services.db, project.id, "foto_sederhana", iid
    ).submission.id
    email = f"admin-csrf-{uuid.uuid4().hex[:8]}@example.org"
    users.create_user(services.db, email, PASSWORD, is_admin=True)
    other = users.create_user(services.db, f"other-{uuid.uuid4().hex[:8]}@example.org")
    form = f"/p/{project.id}/f/foto_sederhana"
    posts = {
        "/login": ({"email": email, "password": PASSWORD, "next": "/"}, None),
        "/logout": ({}, None),
        f"{form}/review": ({"state": "approved", "ids": iid}, None),
        f"{form}/s/{iid}/review": ({"state": "approved"}, None),
        f"{form}/s/{iid}/comment": ({"body": "catatan"}, None),
        f"/p/{project.id}/forms/upload": (
            {},
            {"file": ("tanpa_media.xlsx", xlsx_from_md("tanpa_media", tmp_path))},
        ),
        f"/p/{project.id}/forms/foto_sederhana/publish": ({"version": "2"}, None),
        f"/p/{project.id}/forms/tanpa_media/discard": ({}, None),  # the upload's draft
        f"/p/{project.id}/forms/foto_sederhana/state": ({"state": "closing"}, None),
        f"/p/{project.id}/app-users": ({"display_name": "Petugas CSRF"}, None),
        f"/p/{project.id}/app-users/{app_user.actor.id}/forms": (
            {"xml_form_id": "foto_sederhana", "action": "unassign"},
            None,
        ),
        f"/p/{project.id}/app-users/{app_user.actor.id}/revoke": ({}, None),
        f"/p/{project.id}/inovasi/link": ({}, None),
        f"/p/{project.id}/inovasi/resolve": (
            {
                "submission_id": str(submission_id),
                "entity": innovation.entity.uuid,
                "name": "SIGAP-Bumil",
            },
            None,
        ),
        f"{officers}/buat": ({}, None),  # makes it if missing: here it is, and stays
        officers: ({"label": "Sari", "prop:jabatan": "Analis"}, None),
        f"{officers}/e/{officer}": ({"label": "Budi S.", "base_version": "1"}, None),
        f"{officers}/e/{officer}/hapus": ({}, None),
        "/users": (
            {
                "email": f"new-{uuid.uuid4().hex[:8]}@example.org",
                "password": PASSWORD,
                "display_name": "Baru",
            },
            None,
        ),
        "/users/roles": (
            {"project_id": project.id, "role": "supervisor", "actor_id": other.actor_id},
            None,
        ),
    }
    return project, email, posts


def _template(path: str) -> str:
    """The route a concrete path belongs to, as the route table spells it."""
    path = re.sub(r"^/p/\d+", "/p/{project_id:int}", path)
    path = re.sub(r"/f/foto_sederhana", "/f/{xml_form_id:str}", path)
    path = re.sub(r"/forms/(foto_sederhana|tanpa_media)/", "/forms/{xml_form_id:str}/", path)
    path = re.sub(r"/s/uuid:[0-9a-f-]+", "/s/{instance_id:str}", path)
    path = re.sub(r"/daftar/petugas", "/daftar/{name:str}", path)
    path = re.sub(r"/e/[0-9a-f-]{36}", "/e/{entity_uuid:str}", path)
    return re.sub(r"/app-users/\d+/", "/app-users/{actor_id:int}/", path)


def test_every_ui_post_route_is_in_the_table(scene, client):
    _, _, posts = scene
    assert {_template(p) for p in posts} == _ui_posts(client.app)


def test_ui_posts_without_the_csrf_token_are_403_and_change_nothing(services, scene, client):
    """No token, a forged one, and another browser's (valid, but not this cookie's)."""
    project, email, posts = scene
    ui_login(client, email)
    with make_client(services) as stranger:
        stranger.get("/login")
        forgeries = {
            "no token": None,
            "forged": "A" * 64,
            "another browser's": stranger.cookies["jebol_csrf"],
        }
    before = _everything(services)
    for forgery, token in forgeries.items():
        for path, (data, files) in posts.items():
            form = dict(data, **({"_csrf_token": token} if token else {}))
            response = client.post(path, data=form, files=files, follow_redirects=False)
            assert response.status_code == 403, (
                forgery,
                path,
                response.status_code,
                response.text[:200],
            )
    assert _everything(services) == before
    assert client.get(f"/p/{project.id}").status_code == 200  # still logged in


def test_ui_posts_with_the_csrf_token_work(services, scene):
    project, email, posts = scene
    with make_client(services) as client:
        ui_login(client, email)
        for path, (data, files) in posts.items():
            if path in ("/login", "/logout"):
                continue
            token = client.cookies["jebol_csrf"]
            response = client.post(
                path, data={**data, "_csrf_token": token}, files=files, follow_redirects=False
            )
            assert response.status_code == 303, (path, response.status_code, response.text[:300])
        header = client.post(
            f"/p/{project.id}/app-users",
            data={"display_name": "Lewat header"},
            headers={"x-csrftoken": client.cookies["jebol_csrf"]},
            follow_redirects=False,
        )
        assert header.status_code == 303  # htmx sends the token as a header
        out = client.post(
            "/logout", data={"_csrf_token": client.cookies["jebol_csrf"]}, follow_redirects=False
        )
        assert out.status_code == 303
    with make_client(services) as fresh:
        fresh.get("/login")
        data, _ = posts["/login"]
        response = fresh.post(
            "/login",
            data={**data, "_csrf_token": fresh.cookies["jebol_csrf"]},
            follow_redirects=False,
        )
        assert response.status_code == 303 and "jebol_session" in response.headers["set-cookie"]
    names = [
        row.actor.display_name
        for row in app_users.list_app_users(services.db, services.box, project.id)
    ]
    assert "Petugas CSRF" in names and "Lewat header" in names
