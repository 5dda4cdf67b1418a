"""Every route reaches every form id ODK Central accepts: "/" (sent as %2F), "%", "+", "*",
"=", "'", ":" and emoji, percent-encoded in the path as pyodk and Collect send them."""

from __future__ import annotations

from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import pytest

from tests.collect import instance_xml, new_instance_id
from tests.factories import make_app_user, make_project, make_user

# pyodk's end-to-end fixtures use the first; the others one character class each.
FORM_IDS = ["''=+/*-451%/%", "a/b", "100%", "a+b", "a*b=c", "o'neil", "uuid:1234", "✅"]


def xform(form_id: str, version: str = "1") -> bytes:
    return (
        '<?xml version="1.0"?><h:html xmlns="http://www.w3.org/2002/xforms" '
        'xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa">'
        "<h:head><h:title>Id uji</h:title><model><instance>"
        f"<data id={quoteattr(form_id)} version={quoteattr(version)}><nama/>"
        "<meta><instanceID/></meta></data></instance>"
        '<bind nodeset="/data/nama" type="string"/>'
        '<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" '
        'jr:preload="uid"/></model></h:head>'
        '<h:body><input ref="/data/nama"><label>Nama</label></input></h:body></h:html>'
    ).encode()


@pytest.fixture
def project(services):
    return make_project(services)


@pytest.fixture
def manager(services, project):
    return make_user(services, project, "manager")


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_every_route_reaches_the_form(client, services, project, manager, form_id):
    base = f"/v1/projects/{project.id}/forms"
    path = f"{base}/{quote(form_id, safe='')}"
    xml = {"Content-Type": "application/xml"}

    created = client.post(base, content=xform(form_id), headers=xml, auth=manager)
    assert created.status_code == 200, created.text
    assert created.json()["xmlFormId"] == form_id

    # A draft, published: the path pyodk's fixtures stopped at.
    draft = client.post(f"{path}/draft", content=xform(form_id, "2"), headers=xml, auth=manager)
    assert draft.status_code == 200, draft.text
    published = client.post(f"{path}/draft/publish", auth=manager)
    assert published.status_code == 200, published.text

    got = client.get(path, auth=manager)
    assert got.status_code == 200 and got.json()["xmlFormId"] == form_id
    assert got.json()["version"] == "2"
    assert client.get(f"{path}.xml", auth=manager).content == xform(form_id, "2")
    versions = client.get(f"{path}/versions", auth=manager)
    assert [v["version"] for v in versions.json()] == ["2"], versions.text  # 1 was a draft

    # REST submission, then the list, one submission and the OData feed.
    instance_id = new_instance_id()
    body = instance_xml(form_id, "2", instance_id, "<nama>Budi</nama>")
    sent = client.post(f"{path}/submissions", content=body, headers=xml, auth=manager)
    assert sent.status_code == 200, sent.text
    listed = client.get(f"{path}/submissions", auth=manager).json()
    assert [s["instanceId"] for s in listed] == [instance_id]
    one = client.get(f"{path}/submissions/{quote(instance_id, safe='')}.xml", auth=manager)
    assert one.status_code == 200 and one.content == body
    odata = client.get(f"{path}.svc/Submissions", auth=manager)
    assert odata.status_code == 200, odata.text
    assert [row["nama"] for row in odata.json()["value"]] == ["Budi"]

    # OpenRosa: the formList's downloadUrl reaches the form, and a phone submits to it.
    # The form is assigned to the app user through Central's route (pyodk's create_app_users).
    app_user = make_app_user(services, project)
    assignment = f"{path}/assignments/2/{app_user.actor.id}"
    assert client.post(assignment, auth=manager).json() == {"success": True}
    assert client.get(f"{path}/assignments", auth=manager).json() == [
        {"actorId": app_user.actor.id, "roleId": 2}
    ]
    key = f"/v1/key/{app_user.token}/projects/{project.id}"
    listing = client.get(f"{key}/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert listing.status_code == 200, listing.text
    url = listing.text.split("<downloadUrl>")[1].split("</downloadUrl>")[0]
    download = client.get(url.replace("http://testserver.local", ""))
    assert download.status_code == 200 and download.content == xform(form_id, "2")
    second = instance_xml(form_id, "2", new_instance_id(), "<nama>Sari</nama>")
    phone = client.post(
        f"{key}/submission",
        files={"xml_submission_file": ("submission.xml", second, "text/xml")},
        headers={"X-OpenRosa-Version": "1.0"},
    )
    assert phone.status_code == 201, phone.text

    deleted = client.delete(path, auth=manager)
    assert deleted.status_code == 200, deleted.text
    assert client.get(path, auth=manager).status_code == 404


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx_without_form_id(tmp_path) -> bytes:
    """An XLSForm whose settings sheet names no form_id (as pyodk's pull_data fixture)."""
    from forms.library.build_xlsx import parse_markdown, write_xlsx

    source = "| survey |\n| | type | name | label |\n| | text | nama | Nama |\n"
    source += "| settings |\n| | version |\n| | 7 |\n"
    path = tmp_path / "tanpa_id.xlsx"
    write_xlsx(parse_markdown(source), path)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("pull_data", "pull_data"),
        ("%E2%9C%85", "✅"),  # pyodk percent-encodes the header
        ("uuid%3A0f1e", "uuid:0f1e"),
        ("o'neil", "o&#39;neil"),  # Central HTML-escapes it (pyxform-http's sanitize)
        ("a%2Fb", "b"),  # and keeps what follows the last "/"
    ],
)
def test_xlsform_fallback_header_names_the_form(
    client, project, manager, tmp_path, header, expected
):
    created = client.post(
        f"/v1/projects/{project.id}/forms?ignoreWarnings=true",
        content=_xlsx_without_form_id(tmp_path),
        headers={"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": header},
        auth=manager,
    )
    assert created.status_code == 200, created.text
    assert created.json()["xmlFormId"] == expected
    xml = client.get(
        f"/v1/projects/{project.id}/forms/{quote(expected, safe='')}/draft.xml", auth=manager
    )
    assert xml.status_code == 200, xml.text
    assert b"<data " in xml.content  # the root element stays pyxform's, as in Central


def test_creating_an_existing_form_or_submission_is_409_3(client, services, project, manager):
    base = f"/v1/projects/{project.id}/forms"
    xml = {"Content-Type": "application/xml"}
    first = client.post(f"{base}?publish=true", content=xform("ada"), headers=xml, auth=manager)
    assert first.status_code == 200, first.text
    again = client.post(base, content=xform("ada", "2"), headers=xml, auth=manager)
    assert again.status_code == 409
    assert again.json() == {
        "code": 409.3,
        "message": f"A resource already exists with projectId,xmlFormId value(s) of "
        f"{project.id},ada.",
        "details": {
            "fields": ["projectId", "xmlFormId"],
            "values": [str(project.id), "ada"],
            "table": "forms",
        },
    }
    assert client.get(f"{base}/ada", auth=manager).json()["version"] == "1"  # untouched

    instance_id = new_instance_id()
    body = instance_xml("ada", "1", instance_id, "<nama>Budi</nama>")
    assert client.post(
        f"{base}/ada/submissions", content=body, headers=xml, auth=manager
    ).is_success
    other = instance_xml("ada", "1", instance_id, "<nama>Lain</nama>")
    edit = instance_xml("ada", "1", instance_id, "<nama>Lain</nama>", deprecated_id="uuid:x")
    for repeat in (body, other, edit):  # identical, different, carrying a deprecatedID
        response = client.post(f"{base}/ada/submissions", content=repeat, headers=xml, auth=manager)
        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["code"] == 409.3
        assert problem["details"]["fields"] == ["formId", "instanceId", "draft"]
        assert problem["details"]["values"][1:] == [instance_id, "f"]
    stored = client.get(f"{base}/ada/submissions/{quote(instance_id, safe='')}.xml", auth=manager)
    assert stored.content == body
    # OpenRosa keeps its own rules: the identical XML again is a 201 (a phone's retry).
    key = f"/v1/key/{make_app_user(services, project, forms=['ada']).token}/projects/{project.id}"
    phone = client.post(
        f"{key}/submission",
        files={"xml_submission_file": ("submission.xml", body, "text/xml")},
        headers={"X-OpenRosa-Version": "1.0"},
    )
    assert phone.status_code == 201, phone.text


def test_the_supervisor_pages_link_to_the_form(services, project, manager):
    """The UI's links carry the form id as one path segment (a "/" inside it escaped)."""
    import re

    from tests.conftest import make_client
    from tests.server.test_ui import login

    form_id = "''=+/*-451%/%"
    with make_client(services) as client:
        xml = {"Content-Type": "application/xml"}
        base = f"/v1/projects/{project.id}/forms"
        assert client.post(
            f"{base}?publish=true", content=xform(form_id), headers=xml, auth=manager
        ).is_success
        body = instance_xml(form_id, "1", new_instance_id(), "<nama>Budi</nama>")
        path = f"{base}/{quote(form_id, safe='')}/submissions"
        assert client.post(path, content=body, headers=xml, auth=manager).is_success
        assert login(client, manager[0]).status_code == 303
        home = client.get(f"/p/{project.id}")
        links = set(re.findall(r'href="(/p/\d+/f/[^"?#]+)"', home.text))
        assert links == {
            f"/p/{project.id}/f/{quote(form_id, safe='')}",
            f"/p/{project.id}/f/{quote(form_id, safe='')}/board",
        }, links
        for link in links:
            page = client.get(link)
            assert page.status_code == 200, (link, page.text[:300])
        table = client.get(f"/p/{project.id}/f/{quote(form_id, safe='')}")
        [row] = re.findall(r'href="(/p/\d+/f/[^"]+/s/[^"]+)"', table.text)
        assert client.get(row.replace("&amp;", "&")).status_code == 200
