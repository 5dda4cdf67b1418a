"""Every hostile document, opened in Chromium by a logged-in admin, runs no script.

Three passes over the documents of tests/security/documents.py (form XML, submission and
version XML, SVG and HTML media and attachments, over REST, OpenRosa and the web form):
1. as served: saved as a download, nothing runs;
2. with `Content-Disposition` stripped in flight, so the browser renders it inline: the
   sandboxing CSP alone still stops every script;
3. the control, with the CSP stripped too: the payload runs, which shows the watch works.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import make_client
from tests.security.documents import FORM_ID, LABEL, HostileWorld, make_hostile_world

INLINE_CAPABLE = (
    "form xml",
    "submission xml",
    "attachment svg",
    "web form media svg",
    "web form media html",
    "openrosa media html",
)


@pytest.fixture(scope="module")
def hostile(services_sqlite, tmp_path_factory) -> Iterator[HostileWorld]:
    with make_client(services_sqlite) as client:
        yield make_hostile_world(services_sqlite, client, tmp_path_factory.mktemp("hostile"))


def _watch(page) -> list[str]:
    ran: list[str] = []
    page.on(
        "console", lambda message: ran.append(message.text) if "PWNED" in message.text else None
    )
    page.on(
        "request", lambda request: ran.append(request.url) if "__pwned__" in request.url else None
    )
    return ran


def _open(page, url: str) -> int | None:
    """The status of a document rendered in the page; None when it was saved as a download."""
    from playwright.sync_api import Error

    try:
        response = page.goto(url)
    except Error as error:  # a download aborts the navigation
        assert "Download is starting" in str(error) or "ERR_ABORTED" in str(error), error
        response = None
    page.wait_for_timeout(250)
    return response.status if response is not None else None


def _login(page, live, world: HostileWorld) -> None:
    """The admin logs in to the UI; the page also sends the admin's Bearer token on every
    request, the worst case: the REST documents the cookie alone cannot open are served too."""
    page.goto(f"{live.url}/login")
    page.fill("input[name=email]", world.admin_email)
    page.fill("input[name=password]", world.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/p/**")
    page.set_extra_http_headers({"Authorization": f"Bearer {world.admin_token}"})


def _strip(page, url: str, *names: str) -> None:
    def handler(route) -> None:
        response = route.fetch()
        headers = {k: v for k, v in response.headers.items() if k.lower() not in names}
        route.fulfill(response=response, headers=headers)

    page.route(url, handler)


def test_hostile_documents_run_no_script(page, live, hostile: HostileWorld) -> None:
    _login(page, live, hostile)
    ran = _watch(page)
    for name, path in hostile.urls.items():
        _open(page, live.url + path)
        assert not ran, (name, ran)


def test_the_sandbox_alone_stops_script_when_rendered_inline(
    page, live, hostile: HostileWorld
) -> None:
    _login(page, live, hostile)
    ran = _watch(page)
    for name in INLINE_CAPABLE:
        url = live.url + hostile.urls[name]
        _strip(page, url, "content-disposition")
        assert _open(page, url) == 200, name  # rendered, not downloaded
        assert not ran, (name, ran)


def test_control_without_the_headers_the_payload_runs(page, live, hostile: HostileWorld) -> None:
    _login(page, live, hostile)
    ran = _watch(page)
    for name in ("submission xml", "attachment svg", "web form media html"):
        url = live.url + hostile.urls[name]
        _strip(page, url, "content-disposition", "content-security-policy")
        assert _open(page, url) == 200, name
        assert ran, f"{name}: the payload did not run even unprotected; the watch is broken"
        ran.clear()


def test_a_markup_label_is_text_in_the_map_popup(page, live, hostile: HostileWorld) -> None:
    _login(page, live, hostile)
    ran = _watch(page)
    page.goto(f"{live.url}/p/{hostile.project_id}/f/{FORM_ID}/s/{hostile.instance_id}")
    page.locator("#map .leaflet-marker-icon").first.click()
    popup = page.locator(".leaflet-popup-content")
    assert popup.inner_text() == LABEL  # the characters, not an <img> element
    assert popup.locator("img").count() == 0 and not ran
