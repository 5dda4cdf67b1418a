"""The App users page: forms ticked for a new app user, assign and unassign, as its phone's
formList shows them; managers only. And the Users page's role names."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET

import pytest

from storage import app_users, roles, users
from tests.collect import FORM_LIST_NS, HEADERS
from tests.conftest import make_client
from tests.factories import key_url, make_project, publish
from tests.server.test_ui import login

PASSWORD = "kata-sandi-panjang"
CHIP = re.compile(r'<button class="chip[^"]*"[^>]*>([^<]+)</button>')


@pytest.fixture
def project_world(services):
    """A project with two published forms, a manager and a supervisor."""
    project = make_project(services)
    publish(services, project)
    publish(services, project, "tanpa_media")
    people = {}
    for role in ("manager", "supervisor"):
        user = users.create_user(
            services.db, f"{role}-{uuid.uuid4().hex[:8]}@example.org", PASSWORD
        )
        roles.assign_role(services.db, project.id, role, user.actor_id)
        people[role] = user.email
    return project, people


def listed(client, project, app_user) -> set[str]:
    """The form ids the app user's phone is offered (OpenRosa formList with its key)."""
    response = client.get(f"{key_url(project, app_user)}/formList", headers=HEADERS)
    assert response.status_code == 200, response.text
    return {e.text for e in ET.fromstring(response.content).iter(f"{FORM_LIST_NS}formID")}


def create(client, project, name: str, forms: list[str]):
    data = {"display_name": name, "forms": forms, "_csrf_token": client.cookies["jebol_csrf"]}
    response = client.post(f"/p/{project.id}/app-users", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response


def change(client, project, app_user, xml_form_id: str, action: str):
    return client.post(
        f"/p/{project.id}/app-users/{app_user.actor.id}/forms",
        data={
            "xml_form_id": xml_form_id,
            "action": action,
            "_csrf_token": client.cookies["jebol_csrf"],
        },
        follow_redirects=False,
    )


def test_creating_assigns_exactly_the_ticked_forms(services, project_world):
    project, people = project_world
    with make_client(services) as client:
        login(client, people["manager"])
        page = client.get(f"/p/{project.id}/app-users")
        assert page.status_code == 200
        assert "Ponsel hanya melihat formulir yang dicentang untuknya" in page.text
        for xml_form_id in ("foto_sederhana", "tanpa_media"):  # offered, ticked by default
            assert f'name="forms" value="{xml_form_id}" checked' in page.text
        response = create(client, project, "Satu formulir", ["tanpa_media"])
        one = app_users.find_app_user_by_name(
            services.db, services.box, project.id, "Satu formulir"
        )
        assert response.headers["location"] == f"/p/{project.id}/app-users#u{one.actor.id}"
        create(client, project, "Dua formulir", ["foto_sederhana", "tanpa_media"])
        create(client, project, "Tanpa formulir", [])
        both = app_users.find_app_user_by_name(
            services.db, services.box, project.id, "Dua formulir"
        )
        none = app_users.find_app_user_by_name(
            services.db, services.box, project.id, "Tanpa formulir"
        )
        assert listed(client, project, one) == {"tanpa_media"}
        assert listed(client, project, both) == {"foto_sederhana", "tanpa_media"}
        assert listed(client, project, none) == set()
        page = client.get(f"/p/{project.id}/app-users")
        assert page.text.count("Ponsel ini belum punya formulir") == 1  # the one without forms
        # A form that is not the project's is refused, and no app user is created.
        refused = client.post(
            f"/p/{project.id}/app-users",
            data={
                "display_name": "Salah",
                "forms": ["tidak_ada"],
                "_csrf_token": client.cookies["jebol_csrf"],
            },
            follow_redirects=False,
        )
        assert refused.status_code == 400
        assert (
            app_users.find_app_user_by_name(services.db, services.box, project.id, "Salah") is None
        )


def test_unassign_and_assign_from_the_page(services, project_world):
    project, people = project_world
    with make_client(services) as client:
        login(client, people["manager"])
        create(client, project, "Petugas A", ["foto_sederhana", "tanpa_media"])
        officer = app_users.find_app_user_by_name(
            services.db, services.box, project.id, "Petugas A"
        )
        form_action = f'action="/p/{project.id}/app-users/{officer.actor.id}/forms"'
        assert client.get(f"/p/{project.id}/app-users").text.count(form_action) == 2

        response = change(client, project, officer, "foto_sederhana", "unassign")
        assert response.status_code == 303
        assert response.headers["location"] == f"/p/{project.id}/app-users#u{officer.actor.id}"
        assert listed(client, project, officer) == {"tanpa_media"}
        assert change(client, project, officer, "foto_sederhana", "unassign").status_code == 303
        page = client.get(f"/p/{project.id}/app-users")
        assert "Tidak ditugaskan" in page.text and 'value="assign"' in page.text

        assert change(client, project, officer, "foto_sederhana", "assign").status_code == 303
        assert change(client, project, officer, "foto_sederhana", "assign").status_code == 303
        assert listed(client, project, officer) == {"foto_sederhana", "tanpa_media"}
        assert change(client, project, officer, "tidak_ada", "assign").status_code == 404
        assert change(client, project, officer, "foto_sederhana", "hapus").status_code == 400

        # A revoked app user shows no controls, and its forms cannot be changed.
        app_users.revoke_app_user_by_actor(services.db, project.id, officer.actor.id)
        page = client.get(f"/p/{project.id}/app-users")
        assert form_action not in page.text and "Dicabut" in page.text
        assert change(client, project, officer, "tanpa_media", "unassign").status_code == 400


def test_a_supervisor_may_not_assign_forms(services, project_world):
    project, people = project_world
    officer = app_users.create_app_user(services.db, services.box, project.id, "Petugas B")
    roles.assign_form(services.db, project.id, "foto_sederhana", officer.actor.id)
    with make_client(services) as client:
        login(client, people["supervisor"])
        assert client.get(f"/p/{project.id}/app-users").status_code == 403
        assert change(client, project, officer, "foto_sederhana", "unassign").status_code == 403
        assert change(client, project, officer, "tanpa_media", "assign").status_code == 403
        token = client.cookies["jebol_csrf"]
        created = client.post(
            f"/p/{project.id}/app-users",
            data={"display_name": "Petugas C", "forms": ["foto_sederhana"], "_csrf_token": token},
            follow_redirects=False,
        )
        assert created.status_code == 403
        assert listed(client, project, officer) == {"foto_sederhana"}
    assert (
        app_users.find_app_user_by_name(services.db, services.box, project.id, "Petugas C") is None
    )


def test_the_users_page_names_roles_for_people(services, project_world):
    project, _ = project_world
    admin = users.create_user(
        services.db, f"admin-{uuid.uuid4().hex[:8]}@example.org", PASSWORD, is_admin=True
    )
    with make_client(services) as client:
        login(client, admin.email)
        chips = set(CHIP.findall(client.get("/users").text))
        assert {"+ Manajer", "+ Supervisor", "+ Petugas"} <= chips, chips
        assert not {"+ manager", "+ formfill"} & chips
        client.get("/lang/en")
        chips = set(CHIP.findall(client.get("/users").text))
        assert {"+ Manager", "+ Supervisor", "+ Data collector"} <= chips, chips
