"""Hostile documents as a phone, a form author and an upload would send them, and every URL
that serves them back: the subjects of tests/security/test_isolation.py and of the browser
test that opens each one as a logged-in admin (tests/browser/test_isolation.py).

Each payload, if it ever ran, would log `PWNED` to the console and request `/__pwned__`; both
are watched for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from litestar.testing import TestClient

from server.app import Services
from storage import forms as form_store
from storage import users
from tests.collect import HEADERS, new_instance_id
from tests.factories import assign_forms, make_app_user, make_project

FORM_ID = "jahat"
JS = "console.log('PWNED');fetch('/__pwned__');"

# A question label that is markup: shown as these characters, never parsed (the map popup).
LABEL = '<img src="x" onerror="console.log(\'PWNED\')">Lokasi'
MARKUP_LABEL = (
    LABEL.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
)

XFORM = f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
<h:head><h:title>Jahat</h:title><h:script>{JS}</h:script>
<model>
<itext><translation lang="default" default="true()">
<text id="/data/nama:label"><value>Nama</value><value form="image">jr://images/evil.svg</value>
<value form="big-image">jr://file/evil.html</value></text>
<text id="/data/lokasi:label"><value>{MARKUP_LABEL}</value></text>
</translation></itext>
<instance><data id="{FORM_ID}" version="1"><nama/><lokasi/><foto/><dok/><meta><instanceID/></meta></data>
</instance>
<bind nodeset="/data/nama" type="string"/>
<bind nodeset="/data/lokasi" type="geopoint"/>
<bind nodeset="/data/foto" type="binary"/>
<bind nodeset="/data/dok" type="binary"/>
<bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>
</model></h:head>
<h:body>
<input ref="/data/nama"><label ref="jr:itext('/data/nama:label')"/></input>
<input ref="/data/lokasi"><label ref="jr:itext('/data/lokasi:label')"/></input>
<upload ref="/data/foto" mediatype="image/*"><label>Foto</label></upload>
<upload ref="/data/dok" mediatype="application/*"><label>Dokumen</label></upload>
</h:body></h:html>
""".encode()

SVG = (
    f'<svg xmlns="http://www.w3.org/2000/svg" onload="{JS}"><script>{JS}</script>'
    '<rect width="10" height="10"/></svg>'
).encode()
HTML = f'<!doctype html><title>x</title><script>{JS}</script><img src=x onerror="{JS}">'.encode()


def submission_xml(instance_id: str) -> bytes:
    """An XHTML script inside a text answer: stored as sent, served back byte for byte."""
    return (
        f'<?xml version="1.0"?><data xmlns:h="http://www.w3.org/1999/xhtml" id="{FORM_ID}" '
        f'version="1"><nama>Budi<h:script>{JS}</h:script></nama><lokasi>-0.68 100.78 250 5</lokasi><foto>evil.svg</foto>'
        f"<dok>evil.html</dok><meta><instanceID>{instance_id}</instanceID></meta>"
        f"</data>"
    ).encode()


@dataclass
class HostileWorld:
    project_id: int
    key: str
    instance_id: str
    admin_email: str
    password: str
    admin_token: str
    urls: dict[str, str] = field(default_factory=dict)


def make_hostile_world(services: Services, client: TestClient, folder: Path) -> HostileWorld:
    """The hostile form published with its media, and a hostile submission sent as a phone
    sends it (OpenRosa, with both files)."""
    project = make_project(services)
    media = {"evil.svg": folder / "evil.svg", "evil.html": folder / "evil.html"}
    media["evil.svg"].write_bytes(SVG)
    media["evil.html"].write_bytes(HTML)
    form_store.publish_xform(services.db, services.blobs, project.id, XFORM, media=media)
    app_user = make_app_user(services, project)
    assign_forms(services, project, app_user)
    instance_id = new_instance_id()
    sent = client.post(
        f"/v1/key/{app_user.token}/projects/{project.id}/submission",
        headers=HEADERS,
        files=[
            ("xml_submission_file", ("s.xml", submission_xml(instance_id), "text/xml")),
            ("evil.svg", ("evil.svg", SVG, "image/svg+xml")),
            ("evil.html", ("evil.html", HTML, "text/html")),
        ],
    )
    assert sent.status_code == 201, sent.text
    email, password = f"admin-{uuid.uuid4().hex[:8]}@example.org", "kata-sandi-panjang"
    admin = users.create_user(services.db, email, password, is_admin=True)
    token, _ = users.create_session(services.db, admin.actor_id, 1)
    world = HostileWorld(project.id, app_user.token, instance_id, email, password, token)
    p, k, i = project.id, app_user.token, instance_id
    form = f"/v1/projects/{p}/forms/{FORM_ID}"
    world.urls = {
        "form xml": f"{form}.xml",
        "form version xml": f"{form}/versions/1.xml",
        "submission xml": f"{form}/submissions/{i}.xml",
        "submission version xml": f"{form}/submissions/{i}/versions/{i}.xml",
        "attachment svg": f"{form}/submissions/{i}/attachments/evil.svg",
        "attachment html": f"{form}/submissions/{i}/attachments/evil.html",
        "openrosa form xml": f"/v1/key/{k}/projects/{p}/forms/{FORM_ID}.xml",
        "openrosa media svg": f"/v1/key/{k}/projects/{p}/forms/{FORM_ID}/attachments/evil.svg",
        "openrosa media html": f"/v1/key/{k}/projects/{p}/forms/{FORM_ID}/attachments/evil.html",
        "web form xml": f"/f/{k}/{FORM_ID}/form.xml",
        "web form media svg": f"/f/{k}/{FORM_ID}/media/evil.svg",
        "web form media html": f"/f/{k}/{FORM_ID}/media/evil.html",
    }
    return world
