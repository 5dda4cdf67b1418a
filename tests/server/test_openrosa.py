"""OpenRosa as ODK Collect uses it, on every backend, through the real app."""

from __future__ import annotations

import hashlib
import threading

import pytest

from storage import app_users, roles, submissions, users
from storage import forms as form_store
from storage.blobs import blob_key
from tests.collect import HEADERS, CollectClient, instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import (
    DATA,
    assign_forms,
    jpeg,
    key_url,
    make_app_user,
    make_project,
    photo_body,
    publish,
)


@pytest.fixture
def field(services, client, tmp_path):
    """A project with the photo test form (and its logo) and one app user's Collect client."""
    project = make_project(services)
    logo = tmp_path / "logo.png"
    logo.write_bytes(jpeg(seed=99))
    published = publish(services, project, media={"logo.png": logo})
    app_user = make_app_user(services, project, forms=["foto_sederhana"])
    collect = CollectClient(client, f"{client.base_url}{key_url(project, app_user)}")
    return project, published, app_user, collect


def _stored(services, project, instance_id):
    return submissions.get_submission(services.db, project.id, "foto_sederhana", instance_id)


def _post_raw(client, url, parts, headers=HEADERS):
    return client.post(f"{url}/submission", headers=headers, files=parts)


# ---- formList, form, manifest, media -----------------------------------------------------------


def test_form_list_hash_is_md5_of_the_served_form(field):
    project, published, _, collect = field
    [listed] = collect.form_list()
    assert (listed.form_id, listed.version, listed.name) == (
        "foto_sederhana",
        "1",
        "Foto sederhana",
    )
    served = collect.download(listed.download_url)
    assert listed.hash == "md5:" + hashlib.md5(served.content).hexdigest()
    assert served.content == published.version.xml
    assert listed.manifest_url.endswith("/forms/foto_sederhana/manifest")
    assert "/v1/key/" in listed.download_url  # URLs keep the key prefix


def test_every_openrosa_reply_has_the_headers(field, client):
    project, _, app_user, collect = field
    base = key_url(project, app_user)
    for response in (
        client.get(f"{base}/formList", headers=HEADERS),
        client.get(f"{base}/formList"),  # no version header: 400, headers anyway
        client.head(f"{base}/submission", headers=HEADERS),
        client.get(f"{base}/forms/nope/manifest", headers=HEADERS),
    ):
        assert response.headers["X-OpenRosa-Version"] == "1.0"
        assert int(response.headers["X-OpenRosa-Accept-Content-Length"]) == 100 * 1024 * 1024


def test_form_list_honours_form_id_and_hides_closing_forms(services, field):
    project, _, app_user, collect = field
    publish(services, project, "tanpa_media")
    assign_forms(services, project, app_user, "tanpa_media")
    assert {f.form_id for f in collect.form_list()} == {"foto_sederhana", "tanpa_media"}
    [only] = collect.form_list("tanpa_media")
    assert only.manifest_url is None  # no media expected: no manifest
    form_store.set_state(services.db, project.id, "tanpa_media", "closing")
    assert [f.form_id for f in collect.form_list()] == ["foto_sederhana"]


def test_manifest_lists_media_and_download_is_byte_identical(field, tmp_path):
    _, _, _, collect = field
    [listed] = collect.form_list()
    [(name, digest, url)] = collect.manifest(listed.manifest_url)
    logo = (tmp_path / "logo.png").read_bytes()
    assert name == "logo.png" and digest == "md5:" + hashlib.md5(logo).hexdigest()
    assert collect.download(url).content == logo


def test_unknown_form_is_404_with_an_openrosa_envelope(field, client):
    project, _, app_user, _ = field
    response = client.get(f"{key_url(project, app_user)}/forms/nope.xml", headers=HEADERS)
    assert response.status_code == 404
    assert b"<OpenRosaResponse" in response.content and b'nature="error"' in response.content


# ---- submissions -------------------------------------------------------------------------------


def test_head_submission_is_204_with_accept_content_length(field, client):
    project, _, app_user, _ = field
    response = client.head(f"{key_url(project, app_user)}/submission", headers=HEADERS)
    assert response.status_code == 204 and response.content == b""


def test_submission_with_photos_lands_in_database_and_blob_store(services, field):
    project, _, _, collect = field
    iid = new_instance_id()
    photos = {"utama.jpg": jpeg(seed=1), "b1.jpg": jpeg(seed=2), "b2.jpg": jpeg(seed=3)}
    xml = instance_xml(
        "foto_sederhana", "1", iid, photo_body(evidence=["b1.jpg", "b2.jpg"]), instance_name="Budi"
    )
    result = collect.submit(xml, photos)
    assert result.statuses == [201], result.bodies
    assert "<OpenRosaResponse" in result.bodies[0]
    view = _stored(services, project, iid)
    assert view.current.xml == xml  # kept byte for byte
    assert view.current.instance_name == "Budi"
    assert view.current.values["bukti"][1]["bukti_foto"] == "b2.jpg"
    assert {a.name for a in view.attachments} == set(photos)
    for attachment in view.attachments:
        stored = services.blobs.read_bytes(blob_key(attachment.blob_sha256))
        assert stored == photos[attachment.name]
        assert attachment.content_type == "image/jpeg"


def test_split_upload_completes_across_posts(services, field):
    project, _, app_user, _ = field
    with make_client(services, max_submission_bytes=150_000) as small:
        collect = CollectClient(small, f"{small.base_url}{key_url(project, app_user)}")
        photos = {f"b{i}.jpg": jpeg(size=220, seed=i) + b"\0" * 60_000 for i in range(4)}
        iid = new_instance_id()
        xml = instance_xml("foto_sederhana", "1", iid, photo_body(main=None, evidence=list(photos)))
        assert len(collect.batches(xml, photos, 150_000)) > 1
        result = collect.submit(xml, photos)
    assert result.statuses == [201] * len(result.statuses) and len(result.statuses) > 1
    view = _stored(services, project, iid)
    assert all(a.blob_sha256 for a in view.attachments) and len(view.attachments) == 4


def test_partial_upload_then_resend_adds_the_missing_attachment(services, field, client):
    project, _, app_user, collect = field
    iid = new_instance_id()
    xml = instance_xml("foto_sederhana", "1", iid, photo_body(evidence=["b1.jpg"]))
    first = _post_raw(
        client,
        key_url(project, app_user),
        [
            ("xml_submission_file", ("s.xml", xml, "text/xml")),
            ("utama.jpg", ("utama.jpg", jpeg(seed=5), "image/jpeg")),
            ("*isIncomplete*", ("", b"yes", "text/plain")),
        ],
    )
    assert first.status_code == 201
    assert [
        a.name for a in _stored(services, project, iid).attachments if a.blob_sha256 is None
    ] == ["b1.jpg"]
    second = collect.submit(xml, {"b1.jpg": jpeg(seed=6)})
    assert second.statuses == [201]
    assert all(a.blob_sha256 for a in _stored(services, project, iid).attachments)


def test_same_instance_id_other_xml_is_409(field):
    _, _, _, collect = field
    iid = new_instance_id()
    assert (
        collect.submit(instance_xml("foto_sederhana", "1", iid, photo_body(main=None))).status
        == 201
    )
    other = collect.submit(instance_xml("foto_sederhana", "1", iid, photo_body("Lain", main=None)))
    assert other.status == 409 and "instanceID" in other.bodies[0]


def test_edit_with_deprecated_id_carries_attachments_and_marks_edited(services, field):
    project, _, _, collect = field
    first_id, second_id = new_instance_id(), new_instance_id()
    photo = jpeg(seed=7)
    assert (
        collect.submit(
            instance_xml("foto_sederhana", "1", first_id, photo_body()), {"utama.jpg": photo}
        ).status
        == 201
    )
    edited = instance_xml(
        "foto_sederhana", "1", second_id, photo_body("Budi Baru"), deprecated_id=first_id
    )
    assert collect.submit(edited).status == 201  # the photo is not sent again
    view = _stored(services, project, first_id)
    assert view.submission.review_state == "edited"
    assert view.current.instance_id == second_id and view.current.values["nama"] == "Budi Baru"
    [attachment] = view.attachments
    assert services.blobs.read_bytes(blob_key(attachment.blob_sha256)) == photo


def test_unknown_form_or_version_is_404(field):
    _, _, _, collect = field
    assert collect.submit(instance_xml("tidak_ada", "1", new_instance_id())).status == 404
    assert collect.submit(instance_xml("foto_sederhana", "99", new_instance_id())).status == 404


def test_older_published_version_is_still_accepted(services, field, tmp_path):
    project, _, _, collect = field
    newer = (DATA / "foto_sederhana.md").read_text().replace("| 1 | Indonesian", "| 2 | Indonesian")
    form_store.publish_xlsform(services.db, services.blobs, project.id, newer.encode(), "f.md")
    assert collect.form_list()[0].version == "2"
    assert (
        collect.submit(
            instance_xml("foto_sederhana", "1", new_instance_id(), photo_body(main=None))
        ).status
        == 201
    )


def test_closed_form_is_409_and_closing_still_accepts(services, field):
    project, _, _, collect = field
    form_store.set_state(services.db, project.id, "foto_sederhana", "closing")
    assert (
        collect.submit(
            instance_xml("foto_sederhana", "1", new_instance_id(), photo_body(main=None))
        ).status
        == 201
    )
    form_store.set_state(services.db, project.id, "foto_sederhana", "closed")
    assert (
        collect.submit(
            instance_xml("foto_sederhana", "1", new_instance_id(), photo_body(main=None))
        ).status
        == 409
    )


def test_missing_xml_part_is_400(field, client):
    project, _, app_user, _ = field
    response = _post_raw(
        client, key_url(project, app_user), [("utama.jpg", ("utama.jpg", jpeg(), "image/jpeg"))]
    )
    assert response.status_code == 400 and b"xml_submission_file" in response.content


def test_malformed_xml_is_400(field, client):
    project, _, app_user, _ = field
    response = _post_raw(
        client,
        key_url(project, app_user),
        [("xml_submission_file", ("s.xml", b"<data id='x'><oops></data>", "text/xml"))],
    )
    assert response.status_code == 400 and b"not well-formed" in response.content


def test_concurrent_posts_of_one_instance_id_make_one_submission(services, field, client):
    project, _, app_user, _ = field
    iid = new_instance_id()
    xml = instance_xml("foto_sederhana", "1", iid, photo_body())
    photo = jpeg(seed=11)
    statuses: list[int] = []
    clients = [make_client(services) for _ in range(6)]  # each runs its own event loop thread
    barrier = threading.Barrier(len(clients))

    def send(own) -> None:
        with own:
            barrier.wait()
            response = _post_raw(
                own,
                key_url(project, app_user),
                [
                    ("xml_submission_file", ("s.xml", xml, "text/xml")),
                    ("utama.jpg", ("utama.jpg", photo, "image/jpeg")),
                ],
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(own,)) for own in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 6
    listed = submissions.list_submissions(services.db, project.id, "foto_sederhana", limit=1000)
    assert [view.submission.instance_id for view in listed].count(iid) == 1


def test_retrying_client_gets_201_for_an_already_stored_submission(field):
    _, _, _, collect = field
    xml = instance_xml("foto_sederhana", "1", new_instance_id(), photo_body())
    photos = {"utama.jpg": jpeg(seed=12)}
    assert collect.submit(xml, photos).status == 201
    assert collect.submit(xml, photos).status == 201  # the phone never saw the first answer


# ---- bad input -----------------------------------------------------------------------------

XXE_FILE = b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<data id="foto_sederhana" version="1"><nama>&x;</nama><meta><instanceID>uuid:xxe1</instanceID></meta></data>"""
XXE_NET = b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>
<data id="foto_sederhana" version="1"><nama>&x;</nama><meta><instanceID>uuid:xxe2</instanceID></meta></data>"""
BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(8)
    )
    + b']><data id="foto_sederhana" version="1"><nama>&i;</nama>'
    b"<meta><instanceID>uuid:bomb</instanceID></meta></data>"
)


@pytest.mark.parametrize("xml", [XXE_FILE, XXE_NET, BOMB], ids=["xxe-file", "xxe-net", "bomb"])
def test_doctype_and_entities_are_400_and_nothing_stored(services, field, client, xml):
    project, _, app_user, _ = field
    response = _post_raw(
        client, key_url(project, app_user), [("xml_submission_file", ("s.xml", xml, "text/xml"))]
    )
    assert response.status_code == 400 and b"DOCTYPE" in response.content
    assert submissions.list_submissions(services.db, project.id, "foto_sederhana") == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b.jpg", "c\\d.jpg", ".."])
def test_attachment_names_that_look_like_paths_are_refused(services, field, client, name):
    project, _, app_user, _ = field
    xml = instance_xml(
        "foto_sederhana", "1", new_instance_id(), photo_body(main=name.replace("\\", "\\"))
    )
    response = _post_raw(
        client,
        key_url(project, app_user),
        [("xml_submission_file", ("s.xml", xml, "text/xml")), (name, (name, jpeg(), "image/jpeg"))],
    )
    assert response.status_code == 400 and b"plain file name" in response.content
    assert submissions.list_submissions(services.db, project.id, "foto_sederhana") == []


def test_part_names_are_never_paths(services, field, client, tmp_path):
    """An unreferenced part with a hostile name is ignored; nothing is written outside tmp."""
    project, _, app_user, _ = field
    iid = new_instance_id()
    xml = instance_xml("foto_sederhana", "1", iid, photo_body(main=None))
    response = _post_raw(
        client,
        key_url(project, app_user),
        [
            ("xml_submission_file", ("s.xml", xml, "text/xml")),
            ("../../../../tmp/owned.txt", ("../../../../tmp/owned.txt", b"owned", "text/plain")),
        ],
    )
    assert response.status_code == 201
    assert _stored(services, project, iid).attachments == []
    assert not list(tmp_path.parent.glob("owned.txt"))


def test_body_over_the_limit_is_413_before_reading(services, field):
    project, _, app_user, _ = field
    with make_client(services, max_submission_bytes=50_000) as small:
        response = small.post(
            f"{key_url(project, app_user)}/submission",
            headers=HEADERS,
            files=[
                ("xml_submission_file", ("s.xml", b"<x/>", "text/xml")),
                ("big.jpg", ("big.jpg", b"\xff" * 80_000, "image/jpeg")),
            ],
        )
    assert response.status_code == 413
    assert response.headers["X-OpenRosa-Version"] == "1.0"


@pytest.mark.parametrize("headers", [{}, {"X-OpenRosa-Version": "2.0"}])
def test_missing_or_wrong_openrosa_version_is_400(field, client, headers):
    project, _, app_user, _ = field
    xml = instance_xml("foto_sederhana", "1", new_instance_id(), photo_body(main=None))
    response = _post_raw(
        client,
        key_url(project, app_user),
        [("xml_submission_file", ("s.xml", xml, "text/xml"))],
        headers=headers,
    )
    assert response.status_code == 400 and b"X-OpenRosa-Version" in response.content


def test_unknown_key_is_403_and_malformed_key_is_401(field, client):
    project, *_ = field
    unknown = "A" * 64
    assert (
        client.get(f"/v1/key/{unknown}/projects/{project.id}/formList", headers=HEADERS).status_code
        == 403
    )
    assert (
        client.get(f"/v1/key/short/projects/{project.id}/formList", headers=HEADERS).status_code
        == 401
    )


def test_revoked_key_is_403_at_once(services, field, client):
    project, _, app_user, collect = field
    assert collect.accept_content_length() > 0
    app_users.revoke_app_user(services.db, project.id, app_user.app_user.id)
    response = client.head(f"{key_url(project, app_user)}/submission", headers=HEADERS)
    assert response.status_code == 403


def test_app_user_of_another_project_cannot_see_this_one(services, field, client):
    project, *_ = field
    other = make_project(services)
    stranger = make_app_user(services, other)
    response = client.get(
        f"/v1/key/{stranger.token}/projects/{project.id}/formList", headers=HEADERS
    )
    assert response.status_code == 404


def test_anonymous_call_without_key_is_401_with_basic_challenge(field, client):
    project, *_ = field
    response = client.get(f"/v1/projects/{project.id}/formList", headers=HEADERS)
    assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]


def test_web_user_with_basic_auth_can_list_forms(services, field, client):
    project, *_ = field
    email = f"manager-{project.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, project.id, "manager", user.actor_id)
    response = client.get(
        f"/v1/projects/{project.id}/formList", headers=HEADERS, auth=(email, "kata-sandi-panjang")
    )
    assert response.status_code == 200 and b"foto_sederhana" in response.content
    assert (
        client.get(
            f"/v1/projects/{project.id}/formList",
            headers=HEADERS,
            auth=(email, "salah-sandi-panjang"),
        ).status_code
        == 401
    )


def test_a_later_part_after_an_edit_is_kept_in_the_current_version_or_refused(
    services, field, client
):
    """Split upload, then an edit, then the later parts with the original XML (issue #11): a
    file the current version references and lacks is kept there (201); one it no longer
    references is a 409 that says why, and the phone keeps it."""
    project, _, app_user, collect = field
    base = key_url(project, app_user)
    first_id = new_instance_id()
    xml = instance_xml("foto_sederhana", "1", first_id, photo_body(evidence=["b1.jpg", "b2.jpg"]))
    photos = {name: jpeg(seed=80 + i) for i, name in enumerate(["utama.jpg", "b1.jpg", "b2.jpg"])}

    def part(name, last=False):
        parts = [
            ("xml_submission_file", ("s.xml", xml, "text/xml")),
            (name, (name, photos[name], "image/jpeg")),
        ]
        if not last:
            parts.append(("*isIncomplete*", ("", b"yes", "text/plain")))
        return _post_raw(client, base, parts)

    assert part("utama.jpg").status_code == 201
    edited = instance_xml(
        "foto_sederhana",
        "1",
        new_instance_id(),
        photo_body("Diubah", evidence=["b1.jpg"]),
        deprecated_id=first_id,
    )
    assert collect.submit(edited).status == 201  # keeps b1.jpg, drops b2.jpg
    assert part("b1.jpg").status_code == 201
    view = _stored(services, project, first_id)
    assert view.current.values["nama"] == "Diubah"
    assert {
        a.name: services.blobs.read_bytes(blob_key(a.blob_sha256)) for a in view.attachments
    } == {"utama.jpg": photos["utama.jpg"], "b1.jpg": photos["b1.jpg"]}
    refused = part("b2.jpg", last=True)
    assert refused.status_code == 409, refused.text
    assert "<OpenRosaResponse" in refused.text and "has been edited" in refused.text
    assert "b2.jpg" in refused.text
    assert [a.name for a in _stored(services, project, first_id).attachments] == [
        "b1.jpg",
        "utama.jpg",
    ]


def test_long_instance_name_and_device_id_are_201_on_every_database(services, field, client):
    """PostgreSQL's VARCHAR limits used to make these a 400 there and a 201 on SQLite."""
    project, _, app_user, _ = field
    iid = new_instance_id()
    name, device = "Kunjungan " + "n" * 2000, "collect:" + "d" * 400
    xml = instance_xml("foto_sederhana", "1", iid, photo_body(main=None), instance_name=name)
    response = client.post(
        f"{key_url(project, app_user)}/submission",
        headers=HEADERS,
        params={"deviceID": device},
        files=[("xml_submission_file", ("s.xml", xml, "text/xml"))],
    )
    assert response.status_code == 201, response.text
    view = _stored(services, project, iid)
    assert (view.current.instance_name, view.current.device_id) == (name, device)
    refused = client.post(
        f"{key_url(project, app_user)}/submission",
        headers=HEADERS,
        params={"deviceID": "collect:\x00"},
        files=[
            (
                "xml_submission_file",
                (
                    "s.xml",
                    instance_xml("foto_sederhana", "1", new_instance_id(), photo_body(main=None)),
                    "text/xml",
                ),
            )
        ],
    )
    assert refused.status_code == 400 and "NUL" in refused.text
