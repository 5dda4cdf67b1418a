"""The officer web form's server side (/f/{key}/…, /f/sw.js, /static/webform/…) on every
backend: pages for a key, the form's XML and media, the service worker, the browser files
(compressed, immutable), and a server without the browser files."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re

import pytest

from server.webform import assets
from storage import app_users
from storage import forms as form_store
from tests.conftest import make_client
from tests.factories import DATA, jpeg, make_app_user, make_project

SMALL = "webform_kecil"


@pytest.fixture
def field(services, tmp_path):
    project = make_project(services)
    logo = tmp_path / "logo.png"
    logo.write_bytes(jpeg(seed=5))
    published = form_store.publish_xlsform(
        services.db,
        services.blobs,
        project.id,
        (DATA / f"{SMALL}.md").read_bytes(),
        f"{SMALL}.md",
        media={"logo.png": logo},
    )
    app_user = make_app_user(services, project, forms=[SMALL])
    return project, published, app_user, logo.read_bytes()


def _island(html: str) -> dict:
    return json.loads(
        re.search(
            r'<script type="application/json" id="wf-config">(.*?)</script>', html, re.DOTALL
        ).group(1)
    )


def test_the_list_and_form_pages_carry_what_works_offline(services, field):
    project, published, app_user, _ = field
    key = app_user.token
    with make_client(services) as client:
        page = client.get(f"/f/{key}/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Formulir yang dapat diisi" in page.text and "Formulir kecil" in page.text
        assert page.headers["referrer-policy"] == "no-referrer"  # the key never leaves
        assert page.headers["cache-control"] == "no-cache"
        config = _island(page.text)
        [form] = config["forms"]
        assert form["hash"] == published.version.md5
        assert form["xml"] == f"/f/{key}/{SMALL}/form.xml?v={published.version.md5}"
        assert list(form["media"]) == ["logo.png"]
        assert config["urls"]["submission"] == f"/v1/key/{key}/projects/{project.id}/submission"
        assert config["text"]["offlineReady"] == "Tersedia offline"

        form_page = client.get(f"/f/{key}/{SMALL}")
        assert form_page.status_code == 200 and "Simpan draf" in form_page.text
        assert _island(form_page.text)["form"]["id"] == SMALL
        # The import map is the page's only inline script, allowed by its hash.
        import_map = re.search(r'<script type="importmap">(.*?)</script>', form_page.text).group(1)
        digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
        csp = form_page.headers["content-security-policy"]
        assert f"'sha256-{digest}'" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
        assert json.loads(import_map)["imports"]["vue"].endswith("/vue/vue.esm-browser.prod.js")

        queue = client.get(f"/f/{key}/-/antrian")
        assert queue.status_code == 200 and "Menunggu dikirim" in queue.text

        manifest = client.get(f"/f/{key}/-/manifest.webmanifest")
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        body = manifest.json()
        assert body["start_url"] == f"/f/{key}/" and body["scope"] == f"/f/{key}/"
        assert body["display"] == "standalone"
        sizes = {icon["sizes"] for icon in body["icons"]}
        assert {"192x192", "512x512"} <= sizes
        qr = client.get(f"/f/{key}/-/qr.svg")
        assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in qr.content
        for icon in body["icons"]:
            png = client.get(icon["src"])
            assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_form_xml_and_media_come_through_this_server(services, field):
    _project, published, app_user, logo = field
    key = app_user.token
    with make_client(services) as client:
        xml = client.get(f"/f/{key}/{SMALL}/form.xml?v={published.version.md5}")
        assert xml.status_code == 200 and xml.content == published.version.xml
        media = client.get(f"/f/{key}/{SMALL}/media/logo.png", follow_redirects=False)
        assert media.status_code == 200 and media.content == logo  # never a redirect to S3
        assert client.get(f"/f/{key}/{SMALL}/media/nope.png").status_code == 404


def test_keys_and_forms_that_cannot_be_opened(services, field):
    project, _, app_user, _ = field
    other = make_app_user(services, make_project(services))
    with make_client(services) as client:
        bad = client.get("/f/not-a-key/")
        assert bad.status_code == 404 and "Tautan ini tidak berlaku" in bad.text
        assert client.get(f"/f/{other.token}/{SMALL}").status_code == 404  # another project
        assert client.get(f"/f/{other.token}/{SMALL}/form.xml").status_code == 404
        assert client.get(f"/f/{app_user.token}/tidak_ada").status_code == 404
        form_store.set_state(services.db, project.id, SMALL, "closed")
        assert client.get(f"/f/{app_user.token}/{SMALL}").status_code == 404
        assert "Formulir kecil" not in client.get(f"/f/{app_user.token}/").text
        app_users.revoke_app_user(services.db, project.id, app_user.app_user.id)
        revoked = client.get(f"/f/{app_user.token}/")
        assert revoked.status_code == 403 and "dicabut" in revoked.text
        assert client.get(f"/f/{app_user.token}/-/manifest.webmanifest").status_code == 403


def test_service_worker_and_browser_files(services):
    built = assets.current()
    if not built.ready:
        pytest.skip("browser files missing: run `make assets` (needs npm)")
    with make_client(services) as client:
        worker = client.get("/f/sw.js")
        assert worker.status_code == 200 and "javascript" in worker.headers["content-type"]
        assert worker.headers["cache-control"] == "no-cache"
        assert worker.headers["service-worker-allowed"] == "/f/"
        shell = json.loads(re.search(r"^const SHELL = (.*);$", worker.text, re.MULTILINE).group(1))
        assert f'const BUILD = "{built.build}";' in worker.text
        names = {url.split(f"/{built.build}/", 1)[1] for url in shell}
        assert {
            "web-forms/index.js",
            "vue/vue.esm-browser.prod.js",
            "idb-keyval/index.js",
            "app/form.js",
            "app/outbox.js",
            "app/icon-192.png",
        } <= names
        assert "app/sw.js" not in names  # the worker itself is served at /f/sw.js
        assert any(re.fullmatch(r"web-forms/index-[\w-]+\.js", n) for n in names)

        url = built.url("web-forms/index.js")
        packed = client.get(url, headers={"accept-encoding": "gzip"})
        assert packed.status_code == 200
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["cache-control"] == "public, max-age=31536000, immutable"
        raw = (assets.VENDOR / "web-forms" / "index.js").read_bytes()
        assert packed.content == raw  # the client decoded it
        assert int(packed.headers["content-length"]) < len(raw) * 0.6  # fonts are base64
        again = client.get(url, headers={"if-none-match": packed.headers["etag"]})
        assert again.status_code == 304
        plain = client.get(url, headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == raw
        assert gzip.decompress(built.get("web-forms/index.js").gzipped) == raw
        stale = client.get("/static/webform/0000/web-forms/index.js")
        assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
        assert client.get(built.url("web-forms/package.json")).status_code == 404
        assert client.get(built.url("../../app.py")).status_code == 404


def test_without_the_browser_files_the_page_says_how_to_build_them(
    services, field, tmp_path, monkeypatch
):
    _, _, app_user, _ = field
    bare = assets.scan(vendor=tmp_path / "no-vendor")
    monkeypatch.setattr(assets, "current", lambda: bare)
    assert not bare.ready
    with make_client(services) as client:
        page = client.get(f"/f/{app_user.token}/{SMALL}")
        assert page.status_code == 200 and "make assets" in page.text
        assert 'type="module"' not in page.text and "importmap" not in page.text
        listing = client.get(f"/f/{app_user.token}/")
        assert listing.status_code == 200 and "Formulir kecil" in listing.text
        assert "const SHELL = [];" in client.get("/f/sw.js").text
