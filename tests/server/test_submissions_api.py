"""The /v1 submissions REST API in Central's shapes, on every backend, through the real app."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from storage import roles, users
from storage.blobs import S3BlobStore
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.factories import jpeg, make_project, photo_body, publish

PASSWORD = "kata-sandi-panjang"
XML = {"Content-Type": "application/xml"}
SUBMISSION_KEYS = {
    "instanceId",
    "submitterId",
    "deviceId",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "reviewState",
    "userAgent",
    "currentVersion",
}
VERSION_KEYS = {
    "instanceId",
    "instanceName",
    "submitterId",
    "deviceId",
    "userAgent",
    "createdAt",
    "current",
}


@dataclass(frozen=True)
class Person:
    actor_id: int
    auth: tuple[str, str]


@dataclass(frozen=True)
class Site:
    project_id: int
    url: str  # .../forms/foto_sederhana/submissions
    people: dict[str, Person]

    def auth(self, who: str) -> tuple[str, str]:
        return self.people[who].auth


@pytest.fixture(scope="module")
def people(services) -> dict[str, Person]:
    """One manager, one supervisor and two officers per backend (roles granted per project)."""
    tag = uuid.uuid4().hex[:8]
    made = {}
    for who in ("manager", "supervisor", "officer", "officer2"):
        email = f"{who}-{tag}@example.org"
        user = users.create_user(services.db, email, PASSWORD)
        made[who] = Person(user.actor_id, (email, PASSWORD))
    return made


@pytest.fixture
def site(services, people) -> Site:
    project = make_project(services)
    publish(services, project)
    for who, person in people.items():
        roles.assign_role(
            services.db,
            project.id,
            "formfill" if who.startswith("officer") else who,
            person.actor_id,
        )
    return Site(project.id, f"/v1/projects/{project.id}/forms/foto_sederhana/submissions", people)


def _xml(
    instance_id: str,
    name: str = "Budi",
    deprecated_id: str | None = None,
    main: str | None = "utama.jpg",
) -> bytes:
    return instance_xml(
        "foto_sederhana",
        "1",
        instance_id,
        photo_body(name, main=main),
        deprecated_id=deprecated_id,
        instance_name=name,
    )


def _create(
    client, site: Site, who: str = "officer", xml: bytes | None = None, **params: str
) -> str:
    instance_id = new_instance_id()
    response = client.post(
        site.url, content=xml or _xml(instance_id), headers=XML, auth=site.auth(who), params=params
    )
    assert response.status_code == 200, response.text
    return response.json()["instanceId"]


# ---- create, read ------------------------------------------------------------------------------


def test_create_answers_200_with_centrals_shape_and_reads_back(client, site):
    iid = new_instance_id()
    created = client.post(
        site.url,
        content=_xml(iid),
        params={"deviceID": "collect:abc"},
        headers={**XML, "User-Agent": "pyodk/1.0"},
        auth=site.auth("officer"),
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == SUBMISSION_KEYS and set(body["currentVersion"]) == VERSION_KEYS
    assert body["instanceId"] == iid and body["reviewState"] is None
    assert body["submitterId"] == site.people["officer"].actor_id
    assert (body["deviceId"], body["userAgent"]) == ("collect:abc", "pyodk/1.0")
    assert body["currentVersion"]["instanceName"] == "Budi"
    assert body["currentVersion"]["current"] is True
    one = client.get(f"{site.url}/{iid}", auth=site.auth("supervisor"))
    assert one.status_code == 200 and one.json() == body
    listed = client.get(site.url, auth=site.auth("manager"))
    assert listed.json() == [body] and listed.headers["X-Total-Count"] == "1"


def test_xml_suffix_serves_the_current_xml_byte_for_byte(client, site):
    iid = new_instance_id()
    xml = _xml(iid, name="Siti Ä")
    _create(client, site, xml=xml)
    response = client.get(f"{site.url}/{iid}.xml", auth=site.auth("supervisor"))
    assert response.status_code == 200 and response.content == xml
    assert response.headers["content-type"].startswith("text/xml")


def test_list_is_newest_first_with_limit_offset_and_total(client, site):
    made = [_create(client, site) for _ in range(3)]
    page = client.get(site.url, params={"limit": 2, "offset": 1}, auth=site.auth("manager"))
    assert [s["instanceId"] for s in page.json()] == [made[1], made[0]]
    assert page.headers["X-Total-Count"] == "3"


def test_create_with_deprecated_id_is_400(client, site):
    iid = _create(client, site)
    response = client.post(
        site.url,
        content=_xml(new_instance_id(), deprecated_id=iid),
        headers=XML,
        auth=site.auth("manager"),
    )
    assert response.status_code == 400 and "PUT" in response.json()["message"]


def test_create_with_xml_of_another_form_is_400(client, site):
    other = instance_xml("tanpa_media", "2024010101", new_instance_id())
    response = client.post(site.url, content=other, headers=XML, auth=site.auth("manager"))
    assert response.status_code == 400 and "tanpa_media" in response.json()["message"]


def test_anonymous_is_401_and_another_project_is_404(services, client, site):
    assert client.get(site.url).status_code == 401
    elsewhere = make_project(services)
    publish(services, elsewhere)
    response = client.get(
        f"/v1/projects/{elsewhere.id}/forms/foto_sederhana/submissions", auth=site.auth("manager")
    )
    assert response.status_code == 404 and response.json()["code"] == 404.1


def test_officer_sees_only_own_submissions(client, site):
    own = _create(client, site, "officer")
    other = _create(client, site, "officer2")
    listed = client.get(site.url, auth=site.auth("officer"))
    assert [s["instanceId"] for s in listed.json()] == [own]
    assert listed.headers["X-Total-Count"] == "1"
    for path in (other, f"{other}.xml", f"{other}/versions", f"{other}/attachments"):
        assert client.get(f"{site.url}/{path}", auth=site.auth("officer")).status_code == 404
    assert client.get(f"{site.url}/{own}.xml", auth=site.auth("officer")).status_code == 200
    everyone = client.get(site.url, auth=site.auth("supervisor")).json()
    assert {s["instanceId"] for s in everyone} == {own, other}


# ---- review, comments, audits ------------------------------------------------------------------


def test_review_state_is_set_and_audited(client, site):
    iid = _create(client, site)
    response = client.patch(
        f"{site.url}/{iid}", json={"reviewState": "approved"}, auth=site.auth("supervisor")
    )
    assert response.status_code == 200 and response.json()["reviewState"] == "approved"
    assert response.json()["updatedAt"] is not None
    audits = client.get(f"{site.url}/{iid}/audits", auth=site.auth("manager")).json()
    assert [a["action"] for a in audits] == ["submission.update", "submission.create"]
    assert audits[0]["details"]["reviewState"] == "approved"
    assert audits[0]["actorId"] == site.people["supervisor"].actor_id
    assert set(audits[0]) == {"actorId", "action", "acteeId", "details", "loggedAt"}


def test_invalid_review_state_is_400(client, site):
    iid = _create(client, site)
    for state in ("done", None):
        response = client.patch(
            f"{site.url}/{iid}", json={"reviewState": state}, auth=site.auth("manager")
        )
        assert response.status_code == 400 and "hasIssues" in response.json()["message"]


def test_officer_may_not_review_comment_or_read_audits(client, site):
    iid = _create(client, site)
    auth = site.auth("officer")
    assert (
        client.patch(f"{site.url}/{iid}", json={"reviewState": "approved"}, auth=auth).status_code
        == 403
    )
    assert (
        client.post(f"{site.url}/{iid}/comments", json={"body": "x"}, auth=auth).status_code == 403
    )
    assert client.get(f"{site.url}/{iid}/audits", auth=auth).status_code == 403


def test_comments_round_trip(client, site):
    iid = _create(client, site)
    for text in ("Foto buram", "Sudah diganti"):
        posted = client.post(
            f"{site.url}/{iid}/comments", json={"body": text}, auth=site.auth("supervisor")
        )
        assert posted.status_code == 200, posted.text
    assert posted.json()["actorId"] == site.people["supervisor"].actor_id
    listed = client.get(f"{site.url}/{iid}/comments", auth=site.auth("manager")).json()
    assert [c["body"] for c in listed] == ["Sudah diganti", "Foto buram"]
    assert set(listed[0]) == {"body", "actorId", "createdAt"}
    empty = client.post(
        f"{site.url}/{iid}/comments", json={"body": "  "}, auth=site.auth("manager")
    )
    assert empty.status_code == 400


# ---- edits and versions ------------------------------------------------------------------------


def test_put_makes_a_new_version_listed_newest_first(client, site):
    first = _create(client, site)
    second = new_instance_id()
    edited_xml = _xml(second, name="Budi Baru", deprecated_id=first)
    response = client.put(
        f"{site.url}/{first}", content=edited_xml, headers=XML, auth=site.auth("supervisor")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["instanceId"] == first and body["reviewState"] == "edited"
    assert body["currentVersion"]["instanceId"] == second
    assert body["currentVersion"]["instanceName"] == "Budi Baru"
    versions = client.get(f"{site.url}/{first}/versions", auth=site.auth("officer")).json()
    assert [(v["instanceId"], v["current"]) for v in versions] == [(second, True), (first, False)]
    old = client.get(f"{site.url}/{first}/versions/{first}", auth=site.auth("manager"))
    assert set(old.json()) == VERSION_KEYS and old.json()["current"] is False
    old_xml = client.get(f"{site.url}/{first}/versions/{first}.xml", auth=site.auth("manager"))
    assert old_xml.content == _xml(first)
    assert client.get(f"{site.url}/{first}.xml", auth=site.auth("manager")).content == edited_xml
    assert (
        client.get(f"{site.url}/{first}/versions/uuid:nope", auth=site.auth("manager")).status_code
        == 404
    )


def test_put_without_deprecated_id_is_400_and_a_stale_one_409(client, site):
    first = _create(client, site)
    plain = client.put(
        f"{site.url}/{first}",
        content=_xml(new_instance_id()),
        headers=XML,
        auth=site.auth("manager"),
    )
    assert plain.status_code == 400 and "deprecatedID" in plain.json()["message"]
    second = new_instance_id()
    assert (
        client.put(
            f"{site.url}/{first}",
            content=_xml(second, deprecated_id=first),
            headers=XML,
            auth=site.auth("manager"),
        ).status_code
        == 200
    )
    stale = client.put(
        f"{site.url}/{first}",
        content=_xml(new_instance_id(), deprecated_id=first),
        headers=XML,
        auth=site.auth("manager"),
    )
    assert stale.status_code == 409


# ---- attachments -------------------------------------------------------------------------------


def test_attachment_upload_then_download_is_byte_identical(services, client, site):
    name = 'bukti "Ä";1.jpg'  # a plain file name, yet unsafe in a header as it is
    iid = _create(client, site, xml=_xml(new_instance_id(), main=name))
    url = f"{site.url}/{iid}/attachments"
    file_url = f"{url}/{quote(name, safe='')}"
    assert client.get(url, auth=site.auth("officer")).json() == [{"name": name, "exists": False}]
    assert client.get(file_url, auth=site.auth("manager")).status_code == 404
    photo = jpeg(seed=31) + bytes(1_500_000)  # more than one spooling buffer
    uploaded = client.post(
        file_url,
        content=photo,
        auth=site.auth("supervisor"),
        headers={"Content-Type": "image/jpeg"},
    )
    assert uploaded.status_code == 200 and uploaded.json() == {"success": True}
    assert client.get(url, auth=site.auth("officer")).json() == [{"name": name, "exists": True}]
    response = client.get(file_url, auth=site.auth("officer"), follow_redirects=False)
    if isinstance(services.blobs, S3BlobStore):
        assert response.status_code == 307
        response = httpx.get(response.headers["Location"])  # the test client routes every host
    else:
        assert response.headers["ETag"] == f'"{hashlib.sha256(photo).hexdigest()}"'
        assert response.headers["Content-Disposition"] == (
            'attachment; filename="bukti ____1.jpg"; '
            "filename*=UTF-8''bukti%20%22%C3%84%22%3B1.jpg"
        )
        again = client.get(
            file_url, auth=site.auth("officer"), headers={"If-None-Match": response.headers["ETag"]}
        )
        assert again.status_code == 304
    assert response.status_code == 200 and response.content == photo
    assert response.headers["content-type"] == "image/jpeg"
    audits = client.get(f"{site.url}/{iid}/audits", auth=site.auth("manager")).json()
    assert audits[0]["action"] == "submission.attachment.update"
    assert audits[0]["details"]["name"] == name


def test_attachment_the_xml_does_not_reference_is_404(client, site):
    iid = _create(client, site)
    response = client.post(
        f"{site.url}/{iid}/attachments/lain.jpg", content=jpeg(), auth=site.auth("manager")
    )
    assert response.status_code == 404
    officer = client.post(
        f"{site.url}/{iid}/attachments/utama.jpg", content=jpeg(), auth=site.auth("officer")
    )
    assert officer.status_code == 403


def test_attachment_delete_unlinks_it(client, site):
    iid = _create(client, site)
    url = f"{site.url}/{iid}/attachments"
    client.post(f"{url}/utama.jpg", content=jpeg(seed=32), auth=site.auth("manager"))
    response = client.delete(f"{url}/utama.jpg", auth=site.auth("manager"))
    assert response.status_code == 200 and response.json() == {"success": True}
    assert client.get(url, auth=site.auth("manager")).json() == [
        {"name": "utama.jpg", "exists": False}
    ]
    assert client.get(f"{url}/utama.jpg", auth=site.auth("manager")).status_code == 404


def test_edits_between_the_parts_of_a_split_upload(client, site):
    """An officer's split upload, a supervisor's PUT in between (issue #11): the later part
    lands in the current version; after an edit that drops the name, a new file for it is a
    409 through OpenRosa and a 404 through REST, and the same file again is a harmless retry."""
    first = new_instance_id()
    xml = instance_xml("foto_sederhana", "1", first, photo_body(evidence=["b1.jpg"]))
    photo = jpeg(seed=34)

    def post(name: str, data: bytes, last: bool = True) -> httpx.Response:
        parts = [
            ("xml_submission_file", ("s.xml", xml, "text/xml")),
            (name, (name, data, "image/jpeg")),
        ]
        if not last:
            parts.append(("*isIncomplete*", ("", b"yes", "text/plain")))
        return client.post(
            f"/v1/projects/{site.project_id}/submission",
            files=parts,
            headers=HEADERS,
            auth=site.auth("officer"),
        )

    def edit(evidence: list[str]) -> None:
        current = client.get(f"{site.url}/{first}", auth=site.auth("supervisor")).json()
        body = instance_xml(
            "foto_sederhana",
            "1",
            new_instance_id(),
            photo_body("Budi Baru", evidence=evidence),
            deprecated_id=current["currentVersion"]["instanceId"],
        )
        response = client.put(
            f"{site.url}/{first}", content=body, headers=XML, auth=site.auth("supervisor")
        )
        assert response.status_code == 200, response.text

    assert post("utama.jpg", jpeg(seed=33), last=False).status_code == 201
    edit(["b1.jpg"])
    assert post("b1.jpg", photo).status_code == 201
    url = f"{site.url}/{first}/attachments"
    assert client.get(url, auth=site.auth("manager")).json() == [
        {"name": "b1.jpg", "exists": True},
        {"name": "utama.jpg", "exists": True},
    ]
    edit([])
    assert post("b1.jpg", photo).status_code == 201  # stored before the edit: a retry
    refused = post("b1.jpg", jpeg(seed=35))
    assert refused.status_code == 409 and "has been edited" in refused.text
    by_rest = client.post(
        f"{url}/b1.jpg",
        content=jpeg(seed=35),
        auth=site.auth("manager"),
        headers={"Content-Type": "image/jpeg"},
    )
    assert by_rest.status_code == 404 and "current version" in by_rest.json()["message"]
    assert client.get(url, auth=site.auth("manager")).json() == [
        {"name": "utama.jpg", "exists": True}
    ]


# ---- soft delete -------------------------------------------------------------------------------


def test_soft_delete_hides_and_restore_shows(client, site):
    iid = _create(client, site)
    one = f"{site.url}/{iid}"
    assert client.delete(one, auth=site.auth("supervisor")).status_code == 403
    deleted = client.delete(one, auth=site.auth("manager"))
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert client.get(one, auth=site.auth("manager")).status_code == 404
    assert client.get(site.url, auth=site.auth("manager")).json() == []
    trash = client.get(site.url, params={"deleted": "true"}, auth=site.auth("manager")).json()
    assert [s["instanceId"] for s in trash] == [iid] and trash[0]["deletedAt"] is not None
    again = client.post(site.url, content=_xml(iid), headers=XML, auth=site.auth("officer"))
    assert again.status_code == 409  # its instanceID stays taken
    restored = client.post(f"{one}/restore", auth=site.auth("manager"))
    assert restored.status_code == 200 and restored.json() == {"success": True}
    assert client.get(one, auth=site.auth("manager")).json()["deletedAt"] is None
    assert client.post(f"{one}/restore", auth=site.auth("manager")).status_code == 404
