"""The authorization matrix: every route of the app, as every kind of caller.

Routes are enumerated from the app's own route table and must each have an entry in RULES,
so a new route cannot be forgotten. Allowed calls run against a fresh little world (a
project with a published form, a draft, a submission by the officer, an app user), so a
DELETE by one role never hides the route from the next. Policy does not depend on the
database, so the matrix runs on the SQLite backend only.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

import pytest

from forms.compile import compile_xlsform
from server.app import create_app
from storage import datasets, entities, roles, submissions, users
from storage import forms as form_store
from storage.submissions import IncomingFile, Sender
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import DATA, jpeg, make_app_user, make_project, photo_body

ROLES = ("admin", "manager", "supervisor", "formfill", "app_user_other", "anonymous")
RANK = {"anon": 0, "any": 1, "submit": 2, "review": 3, "manage": 4, "admin": 5, "nobody": 6}
HOLDS = {
    "admin": 5,
    "manager": 4,
    "supervisor": 3,
    "formfill": 2,
    "app_user_other": 0,
    "anonymous": 0,
}

# (method, path under /v1 or the app root) -> the least a caller must be.
RULES = {
    ("GET", "/projects/{project_id:int}/formList"): "submit",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/manifest"): "submit",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/attachments/{name:str}"): "submit",
    ("GET", "/projects/{project_id:int}/datasets/{name:str}/integrity"): "submit",
    ("HEAD", "/projects/{project_id:int}/submission"): "submit",
    ("POST", "/projects/{project_id:int}/submission"): "submit",
    ("GET", "/projects"): "any",
    ("POST", "/projects"): "admin",
    ("GET", "/projects/{project_id:int}"): "submit",
    ("PATCH", "/projects/{project_id:int}"): "manage",
    ("GET", "/projects/{project_id:int}/forms"): "submit",
    ("POST", "/projects/{project_id:int}/forms"): "manage",
    ("GET", "/projects/{project_id:int}/forms/{form_file:str}"): "submit",
    ("DELETE", "/projects/{project_id:int}/forms/{xml_form_id:str}"): "manage",
    ("PATCH", "/projects/{project_id:int}/forms/{xml_form_id:str}"): "manage",
    ("DELETE", "/projects/{project_id:int}/forms/{xml_form_id:str}/draft"): "manage",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/draft"): "manage",
    ("POST", "/projects/{project_id:int}/forms/{xml_form_id:str}/draft"): "manage",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/draft.xml"): "manage",
    ("POST", "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/publish"): "manage",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/attachments"): "manage",
    (
        "DELETE",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/attachments/{name:str}",
    ): "manage",
    (
        "POST",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/attachments/{name:str}",
    ): "manage",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/attachments"): "submit",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/versions"): "review",
    (
        "GET",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/versions/{version_file:str}",
    ): "review",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions"): "submit",
    ("POST", "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions"): "submit",
    (
        "DELETE",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}",
    ): "manage",
    (
        "GET",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}",
    ): "submit",
    (
        "PATCH",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}",
    ): "review",
    (
        "PUT",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}",
    ): "review",
    (
        "POST",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}/restore",
    ): "manage",
    (
        "GET",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}/versions",
    ): "submit",
    (
        "GET",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}"
        "/versions/{version_id:str}",
    ): "submit",
    (
        "GET",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}"
        "/attachments",
    ): "submit",
    (
        "DELETE",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}"
        "/attachments/{name:str}",
    ): "review",
    (
        "GET",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}"
        "/attachments/{name:str}",
    ): "submit",
    (
        "POST",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}"
        "/attachments/{name:str}",
    ): "review",
    (
        "GET",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}/comments",
    ): "review",
    (
        "POST",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}/comments",
    ): "review",
    (
        "GET",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}/audits",
    ): "review",
    ("POST", "/sessions"): "anon",
    ("DELETE", "/sessions/{token:str}"): "any",
    ("GET", "/users/current"): "any",
    ("GET", "/users"): "admin",
    ("POST", "/users"): "admin",
    ("DELETE", "/users/{actor_id:int}"): "admin",
    ("GET", "/users/{actor_id:int}"): "admin",
    ("PATCH", "/users/{actor_id:int}"): "admin",
    ("PUT", "/users/{actor_id:int}/password"): "nobody",  # only the user itself
    ("GET", "/roles"): "anon",
    ("GET", "/roles/{role:str}"): "anon",
    ("GET", "/projects/{project_id:int}/assignments"): "manage",
    ("DELETE", "/projects/{project_id:int}/assignments/{role:str}/{actor_id:int}"): "manage",
    ("POST", "/projects/{project_id:int}/assignments/{role:str}/{actor_id:int}"): "manage",
    ("DELETE", "/assignments/{role:str}/{actor_id:int}"): "admin",
    ("POST", "/assignments/{role:str}/{actor_id:int}"): "admin",
    ("GET", "/projects/{project_id:int}/datasets"): "review",
    ("GET", "/projects/{project_id:int}/datasets/{name:str}"): "review",
    ("POST", "/projects/{project_id:int}/datasets"): "manage",
    ("POST", "/projects/{project_id:int}/datasets/{name:str}/properties"): "manage",
    ("PATCH", "/projects/{project_id:int}/datasets/{name:str}"): "manage",
    ("GET", "/projects/{project_id:int}/datasets/{name:str}/entities"): "review",
    ("POST", "/projects/{project_id:int}/datasets/{name:str}/entities"): "manage",
    ("GET", "/projects/{project_id:int}/datasets/{name:str}/entities/{uuid:str}"): "review",
    ("PATCH", "/projects/{project_id:int}/datasets/{name:str}/entities/{uuid:str}"): "manage",
    ("DELETE", "/projects/{project_id:int}/datasets/{name:str}/entities/{uuid:str}"): "manage",
    (
        "POST",
        "/projects/{project_id:int}/datasets/{name:str}/entities/{uuid:str}/restore",
    ): "manage",
    (
        "GET",
        "/projects/{project_id:int}/datasets/{name:str}/entities/{uuid:str}/versions",
    ): "review",
    ("GET", "/projects/{project_id:int}/datasets/{list_svc:str}/{table:path}"): "review",
    ("GET", "/projects/{project_id:int}/app-users"): "manage",
    ("POST", "/projects/{project_id:int}/app-users"): "manage",
    ("DELETE", "/projects/{project_id:int}/app-users/{actor_id:int}"): "manage",
    ("GET", "/projects/{project_id:int}/app-users/{actor_id:int}/collect-settings"): "manage",
    ("GET", "/projects/{project_id:int}/app-users/{actor_id:int}/qr.png"): "manage",
    ("GET", "/projects/{project_id:int}/app-users/{actor_id:int}/qr.svg"): "manage",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/assignments"): "manage",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/assignments/{role:str}"): "manage",
    (
        "DELETE",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/assignments/{role:str}/{actor_id:int}",
    ): "manage",
    (
        "POST",
        "/projects/{project_id:int}/forms/{xml_form_id:str}/assignments/{role:str}/{actor_id:int}",
    ): "manage",
    ("GET", "/audits"): "admin",
    ("GET", "/projects/{project_id:int}/forms/{form_svc:str}/{table:path}"): "review",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions.csv.zip"): "review",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions.csv"): "review",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions.xlsx"): "review",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions.geojson"): "review",
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/media.zip"): "review",
    ("GET", "/projects/{project_id:int}/iid-report.xlsx"): "review",
    ("GET", "/projects/{project_id:int}/iid-report.zip"): "review",
    ("GET", "/projects/{project_id:int}/iid-portal.zip"): "review",
    ("GET", "/projects/{project_id:int}/opd-coverage"): "review",
}
# The supervisor UI (not under /v1): anonymous callers are sent to the login page.
UI_RULES = {
    ("GET", "/"): "any",
    ("GET", "/p/{project_id:int}"): "submit",
    ("GET", "/p/{project_id:int}/f/{xml_form_id:str}"): "submit",
    ("GET", "/p/{project_id:int}/f/{xml_form_id:str}/board"): "submit",
    ("POST", "/p/{project_id:int}/f/{xml_form_id:str}/review"): "review",
    ("GET", "/p/{project_id:int}/f/{xml_form_id:str}/s/{instance_id:str}"): "submit",
    (
        "GET",
        "/p/{project_id:int}/f/{xml_form_id:str}/s/{instance_id:str}/thumb/{size:int}/{name:str}",
    ): "submit",
    ("POST", "/p/{project_id:int}/f/{xml_form_id:str}/s/{instance_id:str}/review"): "review",
    ("POST", "/p/{project_id:int}/f/{xml_form_id:str}/s/{instance_id:str}/comment"): "review",
    ("GET", "/p/{project_id:int}/forms"): "manage",
    ("POST", "/p/{project_id:int}/forms/upload"): "manage",
    ("POST", "/p/{project_id:int}/forms/{xml_form_id:str}/publish"): "manage",
    ("POST", "/p/{project_id:int}/forms/{xml_form_id:str}/discard"): "manage",
    ("POST", "/p/{project_id:int}/forms/{xml_form_id:str}/state"): "manage",
    ("GET", "/p/{project_id:int}/inovasi"): "submit",
    ("GET", "/p/{project_id:int}/iid"): "review",
    ("GET", "/p/{project_id:int}/cakupan"): "review",
    ("GET", "/p/{project_id:int}/daftar/{name:str}"): "manage",
    ("POST", "/p/{project_id:int}/daftar/{name:str}"): "manage",
    ("POST", "/p/{project_id:int}/daftar/{name:str}/buat"): "manage",
    ("POST", "/p/{project_id:int}/daftar/{name:str}/e/{entity_uuid:str}"): "manage",
    ("GET", "/p/{project_id:int}/daftar/{name:str}/e/{entity_uuid:str}/hapus"): "manage",
    ("POST", "/p/{project_id:int}/daftar/{name:str}/e/{entity_uuid:str}/hapus"): "manage",
    ("GET", "/p/{project_id:int}/inovasi/{entity_uuid:str}"): "submit",
    ("POST", "/p/{project_id:int}/inovasi/link"): "review",
    ("POST", "/p/{project_id:int}/inovasi/resolve"): "review",
    ("GET", "/p/{project_id:int}/app-users"): "manage",
    ("POST", "/p/{project_id:int}/app-users"): "manage",
    ("POST", "/p/{project_id:int}/app-users/{actor_id:int}/revoke"): "manage",
    ("POST", "/p/{project_id:int}/app-users/{actor_id:int}/forms"): "manage",
    ("GET", "/users"): "admin",
    ("POST", "/users"): "admin",
    ("POST", "/users/roles"): "admin",
}
PUBLIC = {
    "/health/live",
    "/health/ready",
    "/schema",
    "/schema/scalar",
    "/schema/swagger",
    "/schema/{path:str}",
    "/schema/openapi.json",
    "/schema/oauth2-redirect.html",
    "/login",
    "/favicon.ico",
    "/logout",
    "/lang/{code:str}",
    "/static/{file_path:path}",
    # The officer web form: the app-user key in the path authorises it (tested with
    # bad, other-project and revoked keys in tests/server/test_webform.py).
    "/f/sw.js",
    "/f/{key:str}",
    "/f/{key:str}/-/antrian",
    "/f/{key:str}/-/manifest.webmanifest",
    "/f/{key:str}/-/qr.svg",
    "/f/{key:str}/{xml_form_id:str}",
    "/f/{key:str}/{xml_form_id:str}/form.xml",
    "/f/{key:str}/{xml_form_id:str}/media/{name:str}",
    "/static/webform/{build:str}/{name:path}",
}
ENTITY_UUID = "12345678-1234-4123-8123-123456789abc"  # an entity of every world's list
OFFICER_UUID = "12345678-1234-4123-8123-123456789abd"  # an officer of every world
OPENROSA_FOR_KEYS = {
    key for key in RULES if key[1].endswith(("/formList", "/manifest", "/submission"))
} | {
    ("GET", "/projects/{project_id:int}/forms/{xml_form_id:str}/attachments/{name:str}"),
    ("GET", "/projects/{project_id:int}/forms/{form_file:str}"),
    ("GET", "/projects/{project_id:int}/datasets/{name:str}/integrity"),
}
# A form reading the world's entity list: who may fill it may check the list's integrity.
LIST_FORM = b"""| survey |
| | type | name | label |
| | select_one_from_file inovasi.csv | inovasi | Inovasi |
| settings |
| | form_id | version |
| | pilih_inovasi | 1 |
"""


@dataclass
class World:
    project_id: int
    instance_id: str
    app_user_actor: int
    app_user_token: str
    bystander_actor: int


@pytest.fixture(scope="module")
def setting(services):
    if services.db.dialect != "sqlite":
        pytest.skip("policy is backend-independent: the matrix runs on SQLite")
    tag = uuid.uuid4().hex[:8]
    people = {}
    for role in ("admin", "manager", "supervisor", "formfill"):
        user = users.create_user(
            services.db, f"{role}-{tag}@example.org", "kata-sandi-panjang", is_admin=role == "admin"
        )
        people[role] = user
    other_project = make_project(services)
    stranger = make_app_user(services, other_project)
    xml = compile_xlsform((DATA / "foto_sederhana.md").read_bytes(), "f.md").xml
    list_xml = compile_xlsform(LIST_FORM, "l.md").xml
    return {"people": people, "stranger": stranger, "xml": xml, "list_xml": list_xml}


def make_world(services, setting, tmp_path) -> World:
    project = make_project(services)
    people = setting["people"]
    for role in ("manager", "supervisor", "formfill"):
        roles.assign_role(services.db, project.id, role, people[role].actor_id)
    logo = tmp_path / f"logo-{project.id}.png"
    logo.write_bytes(jpeg(seed=1))
    form_store.publish_xform(
        services.db, services.blobs, project.id, setting["xml"], media={"logo.png": logo}
    )
    form_store.draft_from_published(services.db, project.id, "foto_sederhana")
    photo = jpeg(seed=2)
    part = tmp_path / f"photo-{project.id}"
    part.write_bytes(photo)
    iid = new_instance_id()
    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        instance_xml("foto_sederhana", "1", iid, photo_body()),
        [IncomingFile("utama.jpg", part, len(photo), hashlib.sha256(photo).hexdigest())],
        sender=Sender(actor_id=people["formfill"].actor_id),
    )
    app_user = make_app_user(services, project)
    roles.assign_form(services.db, project.id, "foto_sederhana", app_user.actor.id)
    form_store.publish_xform(services.db, services.blobs, project.id, setting["list_xml"])
    roles.assign_form(services.db, project.id, "pilih_inovasi", app_user.actor.id)
    datasets.create_list(services.db, project.id, "inovasi")
    entities.create(services.db, project.id, "inovasi", {"uuid": ENTITY_UUID, "label": "x"})
    datasets.create_list(services.db, project.id, "petugas")  # kept in the UI (/daftar/)
    entities.create(services.db, project.id, "petugas", {"uuid": OFFICER_UUID, "label": "y"})
    bystander = users.create_user(services.db, f"bystander-{uuid.uuid4().hex[:8]}@example.org")
    roles.assign_role(services.db, project.id, "supervisor", bystander.actor_id)
    users.set_admin(services.db, bystander.actor_id, True)  # a target for /assignments/admin
    return World(project.id, iid, app_user.actor.id, app_user.token, bystander.actor_id)


def fill(path: str, world: World, token: str) -> str:
    values = {
        "project_id": world.project_id,
        "xml_form_id": "foto_sederhana",
        "form_svc": "foto_sederhana.svc",
        "list_svc": "inovasi.svc",
        "table": "Entities" if "/datasets/" in path else "Submissions",
        "uuid": ENTITY_UUID,
        "entity_uuid": OFFICER_UUID if "/daftar/" in path else ENTITY_UUID,
        "form_file": "foto_sederhana",
        "version_file": "1",
        "instance_id": world.instance_id,
        "version_id": world.instance_id,
        "token": token,
        "path": "openapi.yaml",
        "key": world.app_user_token,
    }
    if "/app-users/" in path or "/forms/{xml_form_id:str}/assignments/" in path:
        values["actor_id"] = world.app_user_actor
    else:
        values["actor_id"] = world.bystander_actor
    values["role"] = "formfill"  # GET /roles/{role}
    if "/assignments/" in path:
        values["role"] = (
            "app-user" if "/forms/" in path else "supervisor" if "/projects/" in path else "admin"
        )
    values["name"] = (
        "inovasi"
        if "/datasets/" in path
        else "petugas"  # the officers' list: a page may create it, then add and edit
        if "/daftar/" in path
        else "utama.jpg"
        if "/s" in path
        else "logo.png"
    )
    values["size"] = 320
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values[m.group(1)]), path)


def call(client, method: str, url: str, headers: dict[str, str]):
    headers = {**HEADERS, **headers, "x-csrftoken": csrf_token(client)}
    kwargs = {"follow_redirects": False}
    if url.endswith("/submission") and method == "POST":
        xml = instance_xml("foto_sederhana", "1", new_instance_id(), photo_body(main=None))
        kwargs["files"] = [("xml_submission_file", ("s.xml", xml, "text/xml"))]
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return client.request(method, url, headers=headers, **kwargs)


def csrf_token(client) -> str:
    """The UI's CSRF cookie value, which Litestar accepts as the x-csrftoken header."""
    if "jebol_csrf" not in client.cookies:
        client.get("/login")
    return client.cookies["jebol_csrf"]


def caller_headers(role: str, services, setting) -> dict[str, str]:
    if role == "anonymous":
        return {}
    if role == "app_user_other":
        return {"Authorization": f"Bearer {setting['stranger'].token}"}
    token, _ = users.create_session(services.db, setting["people"][role].actor_id, 1)
    return {"Authorization": f"Bearer {token}"}


def _routes(app) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", set()) - {"OPTIONS"}):
            found.append((method, route.path))
    return found


def test_every_route_has_a_rule(services):
    app = create_app(services.settings, services, prepare=False)
    listed = {
        (m, p.removeprefix("/v1"))
        for m, p in _routes(app)
        if p.startswith("/v1/") and not p.startswith("/v1/key/")
    }
    assert listed == set(RULES), (sorted(listed - set(RULES)), sorted(set(RULES) - listed))
    others = {(m, p) for m, p in _routes(app) if not p.startswith("/v1/") and p not in PUBLIC}
    assert others == set(UI_RULES), (sorted(others - set(UI_RULES)), sorted(set(UI_RULES) - others))


def test_every_route_declares_who_may_call_it(services):
    """One idiom: each route's decorator (or its router) says who may call it, as guards or as
    `opt=PUBLIC`; no route leaves it to a check inside its body."""
    app = create_app(services.settings, services, prepare=False)
    undeclared = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            methods = set(getattr(handler, "http_methods", ())) - {"OPTIONS"}
            if not methods:
                continue  # Litestar's own OPTIONS answer
            public = bool(handler.opt.get("public"))
            guarded = bool(handler.resolve_guards())
            if public == guarded:  # neither, or a guard on a route also called public
                undeclared.append((sorted(methods), route.path, public, guarded))
    assert undeclared == []


@pytest.mark.parametrize("prefix, rules", [("/v1", RULES), ("", UI_RULES)], ids=["v1", "ui"])
def test_matrix(services, setting, tmp_path, prefix, rules):
    shared = make_world(services, setting, tmp_path)
    failures = []
    with make_client(services) as client:
        headers = {role: caller_headers(role, services, setting) for role in ROLES}
        for (method, path), need in rules.items():
            for role in ROLES:
                allowed = HOLDS[role] >= RANK[need]
                world = make_world(services, setting, tmp_path) if allowed else shared
                if allowed and path.endswith("/entities/{uuid:str}/restore"):
                    entities.delete(services.db, world.project_id, "inovasi", ENTITY_UUID)
                elif allowed and path.endswith("/restore"):
                    submissions.soft_delete(
                        services.db,
                        world.project_id,
                        "foto_sederhana",
                        world.instance_id,
                        actor_id=None,
                    )
                token = (
                    caller_headers(role, services, setting)["Authorization"][7:]
                    if path.startswith("/sessions/{")
                    and role not in ("anonymous", "app_user_other")
                    else "x"
                )
                response = call(
                    client, method, f"{prefix}{fill(path, world, token)}", headers[role]
                )
                status = response.status_code
                refused = 401 if prefix else 303  # the UI sends anonymous callers to log in
                if not prefix and role == "anonymous":
                    ok = status == 303 and response.headers["location"].startswith("/login")
                elif allowed:
                    ok = (
                        status < 400
                        and not (
                            not prefix
                            and status == 303
                            and response.headers["location"].startswith("/login")
                        )
                    ) or status in (400, 409)
                else:
                    ok = status in (refused, 401, 403, 404)
                if need == "anon":
                    ok = status < 500 and status not in (403, 404)
                if not ok or status >= 500:
                    failures.append(
                        f"{role:15} {method:6} {path} -> {status} {response.text[:120]}"
                    )
    assert not failures, "\n" + "\n".join(failures)


def test_matrix_on_key_routes(services, setting, tmp_path):
    """Under /v1/key/{key}: the own key may use OpenRosa only (REST answers 403); another
    project's key sees nothing (404 on OpenRosa, 403 on REST); a malformed key is 401."""
    failures = []
    app = create_app(services.settings, services, prepare=False)
    key_routes = [
        (m, p.removeprefix("/v1/key/{key:str}"))
        for m, p in _routes(app)
        if p.startswith("/v1/key/")
    ]
    assert {r for r in key_routes if r in OPENROSA_FOR_KEYS} == OPENROSA_FOR_KEYS
    with make_client(services) as client:
        for method, path in key_routes:
            world = make_world(services, setting, tmp_path)
            url = fill(path, world, "x")
            openrosa = (method, path) in OPENROSA_FOR_KEYS
            own = call(client, method, f"/v1/key/{world.app_user_token}{url}", {}).status_code
            other = call(
                client, method, f"/v1/key/{setting['stranger'].token}{url}", {}
            ).status_code
            malformed = call(client, method, f"/v1/key/not-a-key{url}", {}).status_code
            expected_own_ok = own < 400 if openrosa else own == 403
            if path.endswith("{form_file:str}"):
                expected_own_ok = own == 403  # JSON form resource: REST, refused for keys
                xml = client.get(f"/v1/key/{world.app_user_token}{url}.xml", headers=HEADERS)
                expected_own_ok = expected_own_ok and xml.status_code == 200
            if not expected_own_ok:
                failures.append(f"own key   {method} {path} -> {own}")
            if other != (
                404 if openrosa and not path.endswith("{form_file:str}") else 403
            ) and not (path.endswith("{form_file:str}") and other == 404):
                failures.append(f"other key {method} {path} -> {other}")
            if malformed != 401:
                failures.append(f"malformed {method} {path} -> {malformed}")
    assert not failures, "\n" + "\n".join(failures)
