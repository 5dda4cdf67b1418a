"""What a phone, a form author or an upload sent is never served so that it runs in our origin
(server/isolation.py), and where the supervisor UI's session cookie counts (server/auth.py).

The browser half, which opens each document in Chromium as a logged-in admin, is
tests/browser/test_isolation.py."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import TestClient

from server.app import Services
from server.isolation import route_kind
from tests.collect import HEADERS
from tests.security.conftest import ui_login
from tests.security.documents import HostileWorld, make_hostile_world


@pytest.fixture
def hostile(services: Services, client: TestClient, tmp_path) -> HostileWorld:
    return make_hostile_world(services, client, tmp_path)


def _bearer(world: HostileWorld) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.admin_token}", **HEADERS}


def _sandboxed(response) -> None:
    csp = response.headers.get("content-security-policy", "")
    assert "sandbox" in csp.split(";")[0] and "default-src 'none'" in csp, csp
    assert response.headers.get("x-content-type-options") == "nosniff"


@pytest.mark.parametrize(
    "name",
    [
        "form xml",
        "form version xml",
        "submission xml",
        "submission version xml",
        "attachment svg",
        "attachment html",
        "openrosa form xml",
        "openrosa media svg",
        "openrosa media html",
        "web form xml",
        "web form media svg",
        "web form media html",
    ],
)
def test_hostile_document_is_sandboxed_and_downloaded(
    client: TestClient, hostile: HostileWorld, name: str
) -> None:
    response = client.get(hostile.urls[name], headers=_bearer(hostile), follow_redirects=False)
    _sandboxed(response)
    if response.status_code == 307:  # S3: the store's own origin, still as a download
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["response-content-disposition"][0].startswith("attachment"), query
        return
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-disposition"].startswith("attachment")
    assert b"PWNED" in response.content  # served as stored, byte for byte: not rewritten


def test_the_sandbox_cannot_be_loosened_by_the_document(
    client: TestClient, hostile: HostileWorld
) -> None:
    """Stored bytes are never headers; and a foreign route's own CSP would be replaced."""
    response = client.get(hostile.urls["submission xml"], headers=_bearer(hostile))
    assert response.headers.get_list("content-security-policy") == [
        response.headers["content-security-policy"]
    ]


def test_json_errors_and_unknown_paths_are_sandboxed(client: TestClient) -> None:
    for response in (
        client.get("/v1/users/current"),
        client.get("/nowhere/<svg>"),
        client.get("/v1/projects/999999999/forms"),
    ):
        assert response.status_code in (401, 404), response.status_code
        _sandboxed(response)


def test_own_pages_keep_their_policy(client: TestClient, hostile: HostileWorld) -> None:
    login = client.get("/login")
    csp = login.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "sandbox" not in csp
    assert login.headers["x-content-type-options"] == "nosniff"
    web_form = client.get(f"/f/{hostile.key}/")
    assert "script-src 'self'" in web_form.headers["content-security-policy"]
    assert "sandbox" not in web_form.headers["content-security-policy"]


def test_ui_error_page_carries_the_page_policy(client: TestClient, hostile: HostileWorld) -> None:
    ui_login(client, hostile.admin_email, hostile.password)
    missing = client.get(f"/p/{hostile.project_id}/f/no-such-form")
    assert missing.status_code == 404
    assert "script-src 'self'" in missing.headers["content-security-policy"]


def test_ui_cookie_counts_only_for_ui_and_its_downloads(
    client: TestClient, hostile: HostileWorld
) -> None:
    ui_login(client, hostile.admin_email, hostile.password)
    assert client.get("/").status_code == 200
    # The JSON API and the raw documents: the cookie is nobody there.
    for url in (
        "/v1/users/current",
        f"/v1/projects/{hostile.project_id}/app-users",
        hostile.urls["submission xml"],
        hostile.urls["submission version xml"],
        hostile.urls["form version xml"],
    ):
        assert client.get(url).status_code == 401, url
    # What the UI links to for download.
    form = f"/v1/projects/{hostile.project_id}/forms/jahat"
    for url in (
        hostile.urls["attachment svg"],
        hostile.urls["form xml"],
        f"{form}/submissions.csv.zip?attachments=false",
        f"/v1/projects/{hostile.project_id}/iid-report.zip",
    ):
        response = client.get(url, follow_redirects=False)
        assert response.status_code in (200, 307), (url, response.status_code)
    # Never for writes outside the UI (no CSRF token there).
    assert (
        client.post(
            f"/v1/projects/{hostile.project_id}/app-users", json={"displayName": "x"}
        ).status_code
        == 401
    )


# Every route whose body is not sandboxed, by kind. A new route lands here only deliberately:
# its body must be entirely ours (templates, our scripts, generated images).
OWN_ROUTES = {
    "/f/sw.js",
    "/f/{key:str}",
    "/f/{key:str}/-/antrian",
    "/f/{key:str}/{xml_form_id:str}",
    "/f/{key:str}/-/manifest.webmanifest",
    "/f/{key:str}/-/qr.svg",
    "/static/webform/{build:str}/{name:path}",
    "/static/{file_path:path}",
}


def test_every_route_is_sandboxed_unless_listed(client: TestClient) -> None:
    own, ui = set(), set()
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            kind = route_kind({"route_handler": handler})  # type: ignore[typeddict-item]
            if route.path.startswith("/schema"):
                assert kind == "own", route.path  # the OpenAPI docs: our HTML
            elif kind == "own":
                own.add(route.path)
            elif kind == "ui":
                ui.add(route.path)
    assert own == OWN_ROUTES
    # The UI router serves our templates and thumbnails we made; nothing under /v1 or /f.
    assert ui and not any(p.startswith(("/v1", "/f/")) for p in ui), sorted(ui)
