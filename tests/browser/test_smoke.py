"""The browser harness works: chromium opens a page of the live server at a phone's size, and
the vendored browser libraries (web/ -> `make assets` -> server/static/vendor/) are served."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from tests.browser import screenshot

VENDOR = Path(__file__).resolve().parents[2] / "server" / "static" / "vendor"


def test_health_page_opens_on_a_phone(live, page):
    response = page.goto(f"{live.url}/health/live")
    assert response is not None and response.status == 200
    assert '"status":"ok"' in page.inner_text("body").replace(" ", "")
    # A page without <meta name="viewport"> gets a phone's 980 px layout viewport, so the
    # phone itself is checked through the screen.
    assert page.evaluate(
        "[screen.width, screen.height, devicePixelRatio, navigator.language,"
        " navigator.maxTouchPoints > 0]"
    ) == [360, 740, 2, "id-ID", True]

    png = screenshot(page, "smoke-health-live", full_page=False)
    width, height = struct.unpack(">II", png.read_bytes()[16:24])  # the IHDR chunk
    assert (width, height) == (720, 1480)  # 360x740 at device scale factor 2


def test_vendor_libraries_are_served_and_run(live, page):
    if not (VENDOR / "htmx.min.js").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{VENDOR} is empty: `make assets` must run before the tests")
        pytest.skip(f"{VENDOR} is empty: run `make assets` (needs npm)")
    # A page of ours (the login page): a response of the API is sandboxed, no script runs there.
    page.goto(f"{live.url}/login")
    htmx = page.request.get(f"{live.url}/static/vendor/htmx.min.js")
    assert htmx.status == 200
    assert "javascript" in htmx.headers["content-type"]
    assert htmx.body() == (VENDOR / "htmx.min.js").read_bytes()

    for name in [
        "photoswipe/photoswipe.css",
        "leaflet/leaflet.css",
        "leaflet/images/marker-icon.png",
        "leaflet/images/marker-icon-2x.png",
        "leaflet/images/marker-shadow.png",
        "leaflet/images/layers.png",
    ]:
        assert page.request.get(f"{live.url}/static/vendor/{name}").status == 200, name

    page.add_script_tag(url="/static/vendor/htmx.min.js")
    page.add_script_tag(url="/static/vendor/leaflet/leaflet.js")
    assert page.evaluate("htmx.version").startswith("2.")
    assert page.evaluate("L.version").startswith("1.9.")
    # ES modules load only with a JavaScript MIME type, which is what this checks.
    kinds = page.evaluate("""Promise.all([
        import('/static/vendor/photoswipe/photoswipe.esm.min.js'),
        import('/static/vendor/photoswipe/photoswipe-lightbox.esm.min.js'),
    ]).then(([pswp, lightbox]) => [typeof pswp.default, typeof lightbox.default])""")
    assert kinds == ["function", "function"]
