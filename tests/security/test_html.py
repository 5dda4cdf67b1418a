"""HTML and script in everything people type: answers, instance names, file names, comments,
form titles and labels, project, user and app-user names. Every page that shows them serves
them escaped; the pages carry the headers that keep a browser from guessing or framing them.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from urllib.parse import quote

import pytest

from storage import forms as form_store
from storage import submissions, users
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml
from tests.conftest import make_client
from tests.factories import assign_forms, jpeg, make_app_user, make_project, photo_body, publish
from tests.security.conftest import PASSWORD, ui_login

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
COMMENT = "<!--<script>x</script>"  # also tries to put a JSON island's parser off
RAW = ("<script>alert(1)", "<img src=x onerror", "<!--<script>")
ESCAPED = (
    "&lt;script&gt;alert(1)",
    "&lt;img src=x onerror=alert(1)&gt;",
    "\\u003cscript>alert(1)",
    "\\u003cimg src=x onerror",
)
HOSTILE_FORM = f"""| survey |
| | type | name | label |
| | text | jawab | {IMG} |
| | select_one pilihan | pilih | {SCRIPT} |
| choices |
| | list_name | name | label |
| | pilihan | a | {IMG} |
| settings |
| | form_id | form_title | version |
| | bahaya | {SCRIPT} | 1 |
"""


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture(scope="module")
def page_site(services, tmp_path_factory):
    project = make_project(services, f"{SCRIPT} {uuid.uuid4().hex[:6]}")
    make_project(services)  # two projects: the admin's home page lists them
    publish(services, project)
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, HOSTILE_FORM.encode(), "bahaya.md"
    )
    app_user = make_app_user(services, project, name=IMG)
    assign_forms(services, project, app_user)
    email = f"admin-html-{uuid.uuid4().hex[:8]}@example.org"
    admin = users.create_user(services.db, email, PASSWORD, display_name=SCRIPT, is_admin=True)
    photo_name = f"{IMG}.jpg"
    instance_id = f"uuid:{IMG}{uuid.uuid4().hex[:6]}"
    photo = jpeg(seed=70)
    part = tmp_path_factory.mktemp("html") / "photo"
    part.write_bytes(photo)
    body = photo_body(_xml_text(SCRIPT), main=_xml_text(photo_name), evidence=[])
    body += f"<bukti><bukti_foto/><bukti_catatan>{_xml_text(IMG)}</bukti_catatan></bukti>"
    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        instance_xml(
            "foto_sederhana", "1", _xml_text(instance_id), body, instance_name=_xml_text(IMG)
        ),
        [
            IncomingFile(
                photo_name, part, len(photo), hashlib.sha256(photo).hexdigest(), "image/jpeg"
            )
        ],
        sender=Sender(actor_id=app_user.actor.id),
    )
    answers = f"<jawab>{_xml_text(SCRIPT)}</jawab><pilih>a</pilih>"
    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        instance_xml("bahaya", "1", f"uuid:{uuid.uuid4()}", answers),
        sender=Sender(actor_id=None),
    )
    submissions.set_review_state(
        services.db, project.id, "foto_sederhana", instance_id, "hasIssues", actor_id=admin.actor_id
    )
    submissions.add_comment(
        services.db, project.id, "foto_sederhana", instance_id, COMMENT, actor_id=admin.actor_id
    )
    with make_client(services) as client:
        ui_login(client, email)
        yield project, instance_id, app_user, photo_name, client


def _pages(project, instance_id, app_user):
    form = f"/p/{project.id}/f/foto_sederhana"
    return {
        "projects": "/",
        "project-home": f"/p/{project.id}",
        "submission-table": form,
        "submission-page": f"{form}/s/{quote(instance_id)}",
        "board": f"{form}/board",
        "board-by-question": f"{form}/board?group=question",
        "hostile-form-table": f"/p/{project.id}/f/bahaya",
        "forms-list": f"/p/{project.id}/forms",
        "app-users": f"/p/{project.id}/app-users",
        "users": "/users",
        "web-form-list": f"/f/{app_user.token}/",
        "web-form": f"/f/{app_user.token}/bahaya",
    }


PAGES = [
    "projects",
    "project-home",
    "submission-table",
    "submission-page",
    "board",
    "board-by-question",
    "hostile-form-table",
    "forms-list",
    "app-users",
    "users",
    "web-form-list",
    "web-form",
]


@pytest.mark.parametrize("page", PAGES)
def test_hostile_text_is_shown_escaped(page_site, page):
    project, instance_id, app_user, _, client = page_site
    response = client.get(_pages(project, instance_id, app_user)[page])
    assert response.status_code == 200, response.text[:300]
    html = response.text
    for raw in RAW:
        assert raw not in html, (raw, html[max(0, html.find(raw) - 200) : html.find(raw) + 100])
    assert any(escaped in html for escaped in ESCAPED), "the hostile text is not on the page"


def test_the_comment_and_the_history_are_escaped(page_site):
    project, instance_id, app_user, _, client = page_site
    html = client.get(_pages(project, instance_id, app_user)["submission-page"]).text
    assert "&lt;!--&lt;script&gt;x&lt;/script&gt;" in html  # the comment
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 2  # the name and the note


@pytest.mark.parametrize("page", ["web-form-list", "web-form"])
def test_the_web_forms_json_island_has_no_angle_bracket(page_site, page):
    project, instance_id, app_user, _, client = page_site
    html = client.get(_pages(project, instance_id, app_user)[page]).text
    island = re.search(
        r'<script type="application/json" id="wf-config">(.*?)</script>', html, re.S
    ).group(1)
    assert "<" not in island
    assert SCRIPT in json.dumps(json.loads(island), ensure_ascii=False) or IMG in json.dumps(
        json.loads(island), ensure_ascii=False
    )


def test_a_hostile_file_name_cannot_break_the_download_header(services, page_site):
    project, instance_id, _, photo_name, client = page_site
    response = client.get(
        f"/v1/projects/{project.id}/forms/foto_sederhana/submissions/"
        f"{quote(instance_id, safe='')}/attachments/{quote(photo_name)}",
        follow_redirects=False,
    )
    if response.status_code == 307:  # S3: the presigned URL carries the header, quoted
        assert "response-content-disposition" in response.headers["location"]
        return
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    plain = re.fullmatch(r'attachment; filename="([^"]*)"; filename\*=UTF-8\'\'(\S+)', disposition)
    assert plain, disposition  # one quoted ASCII name (no quote, backslash or ; in it)
    assert not set(plain.group(1)) & set('"\\;/\r\n')


# The supervisor UI's pages and the officer's web form: what a browser is told.
HEADER_PAGES = ["project-home", "submission-page", "board", "forms-list", "web-form"]


@pytest.mark.parametrize("page", HEADER_PAGES)
def test_pages_carry_nosniff_and_a_content_security_policy(page_site, page):
    project, instance_id, app_user, _, client = page_site
    response = client.get(_pages(project, instance_id, app_user)[page])
    assert response.headers.get("x-content-type-options") == "nosniff"
    policy = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert re.search(r"script-src 'self'(?! 'unsafe-inline')", policy), policy
