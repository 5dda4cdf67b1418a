"""Submission rules behind the REST API, on each backend: edits, review, deletion, attachments."""

from __future__ import annotations

import hashlib

import pytest
from sqlmodel import select

from storage import submissions
from storage.blobs import blob_key
from storage.errors import AlreadyExists, Conflict, InvalidInput, NotFound, SubmissionDeleted
from storage.models import Audit
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.factories import jpeg, make_project, photo_body, publish

FORM = "foto_sederhana"


@pytest.fixture
def project(services):
    project = make_project(services)
    publish(services, project)
    return project


def _send(services, project, instance_id=None, *, actor_id=None, deprecated_id=None, **rules):
    instance_id = instance_id or new_instance_id()
    xml = instance_xml(FORM, "1", instance_id, photo_body(), deprecated_id=deprecated_id)
    return submissions.ingest(
        services.db, services.blobs, project.id, xml, sender=Sender(actor_id=actor_id), **rules
    )


def _audits(services, subject_id):
    with services.db.read() as tx:
        return [
            a.action
            for a in tx.exec(
                select(Audit)
                .where(Audit.subject_type == "submission", Audit.subject_id == subject_id)
                .order_by(Audit.id)
            )
        ]


def test_rest_create_refuses_a_deprecated_id(services, project):
    first = _send(services, project)
    with pytest.raises(InvalidInput, match="PUT"):
        _send(services, project, deprecated_id=first.submission.instance_id, allow_edit=False)


def test_rest_create_refuses_any_instance_id_the_form_holds(services, project):
    # Central's unique key: the current version, a version since edited, the same bytes.
    first = _send(services, project)
    iid = first.submission.instance_id
    edit = _send(services, project, deprecated_id=iid)
    for taken in (iid, edit.version.instance_id):
        with pytest.raises(AlreadyExists, match="already exists") as raised:
            _send(services, project, taken, allow_edit=False)
        assert raised.value.details["values"][1] == taken


def test_edit_must_name_its_submission_and_its_current_version(services, project):
    one, other = _send(services, project), _send(services, project)
    one_id = one.submission.instance_id
    with pytest.raises(InvalidInput, match="deprecatedID"):
        _send(services, project, edit_of=one_id)
    with pytest.raises(Conflict, match="not the current version"):
        _send(services, project, deprecated_id=other.submission.instance_id, edit_of=one_id)
    with pytest.raises(NotFound):
        _send(services, project, deprecated_id=one_id, edit_of="uuid:unknown")
    edit_id = new_instance_id()
    edited = _send(services, project, edit_id, deprecated_id=one_id, edit_of=one_id)
    assert edited.outcome == "edited"
    again = _send(services, project, edit_id, deprecated_id=one_id, edit_of=one_id)
    assert again.outcome == "retried"  # the same PUT twice is harmless
    with pytest.raises(Conflict, match="not the current version"):
        _send(services, project, deprecated_id=one_id, edit_of=one_id)


def test_review_state_is_checked_and_audited_in_its_transaction(services, project):
    sent = _send(services, project, actor_id=None)
    iid = sent.submission.instance_id
    with pytest.raises(InvalidInput):
        submissions.set_review_state(services.db, project.id, FORM, iid, "received", actor_id=None)
    summary = submissions.set_review_state(
        services.db, project.id, FORM, iid, "hasIssues", actor_id=None
    )
    assert summary.submission.review_state == "hasIssues" and summary.current.current
    assert _audits(services, sent.submission.id) == ["submission.create", "submission.update"]


def test_soft_delete_hides_restore_shows_and_resubmission_is_refused(services, project):
    sent = _send(services, project)
    iid = sent.submission.instance_id
    submissions.soft_delete(services.db, project.id, FORM, iid, actor_id=None)
    with pytest.raises(NotFound):
        submissions.get_summary(services.db, project.id, FORM, iid)
    with pytest.raises(NotFound):
        submissions.soft_delete(services.db, project.id, FORM, iid, actor_id=None)
    assert submissions.list_summaries(services.db, project.id, FORM) == []
    assert [
        s.submission.instance_id
        for s in submissions.list_summaries(services.db, project.id, FORM, deleted=True)
    ] == [iid]
    with pytest.raises(SubmissionDeleted):
        _send(services, project, iid)
    submissions.restore(services.db, project.id, FORM, iid, actor_id=None)
    assert submissions.get_summary(services.db, project.id, FORM, iid).submission.deleted_at is None
    assert _audits(services, sent.submission.id)[-2:] == ["submission.delete", "submission.restore"]


def test_submitter_filter_hides_other_peoples_submissions(services, project):
    mine = _send(services, project, actor_id=None)
    count = submissions.count_submissions(services.db, project.id, FORM)
    assert count == 1
    with pytest.raises(NotFound):
        submissions.get_summary(
            services.db, project.id, FORM, mine.submission.instance_id, submitter_id=-1
        )
    assert submissions.count_submissions(services.db, project.id, FORM, submitter_id=-1) == 0


def test_attachment_added_by_hand_is_carried_to_the_next_version(services, project, tmp_path):
    sent = _send(services, project)
    iid = sent.submission.instance_id
    photo = jpeg(seed=41)
    path = tmp_path / "upload"
    path.write_bytes(photo)
    upload = IncomingFile("utama.jpg", path, len(photo), hashlib.sha256(photo).hexdigest())
    with pytest.raises(NotFound):
        submissions.add_attachment(
            services.db,
            services.blobs,
            project.id,
            FORM,
            iid,
            IncomingFile("lain.jpg", path, upload.size, upload.sha256),
            actor_id=None,
        )
    submissions.add_attachment(
        services.db, services.blobs, project.id, FORM, iid, upload, actor_id=None
    )
    stored = submissions.get_attachment(services.db, project.id, FORM, iid, "utama.jpg")
    assert stored.blob.content_type == "image/jpeg"
    assert services.blobs.read_bytes(blob_key(stored.blob.sha256)) == photo
    _send(services, project, deprecated_id=iid)  # an edit that does not resend the photo
    assert (
        submissions.get_attachment(services.db, project.id, FORM, iid, "utama.jpg").blob.sha256
        == upload.sha256
    )
    submissions.clear_attachment(services.db, project.id, FORM, iid, "utama.jpg", actor_id=None)
    assert [
        (a.name, a.blob_sha256)
        for a in submissions.list_attachments(services.db, project.id, FORM, iid)
    ] == [("utama.jpg", None)]


def test_list_submissions_keeps_each_views_attachments(services, project, tmp_path):
    photo = jpeg(seed=42)
    path = tmp_path / "p"
    path.write_bytes(photo)
    files = [IncomingFile("utama.jpg", path, len(photo), hashlib.sha256(photo).hexdigest())]
    xml = instance_xml(FORM, "1", new_instance_id(), photo_body())
    submissions.ingest(
        services.db, services.blobs, project.id, xml, files, sender=Sender(actor_id=None)
    )
    _send(services, project)
    views = submissions.list_submissions(services.db, project.id, FORM)
    assert [[a.blob_sha256 is not None for a in v.attachments] for v in views] == [[False], [True]]


# ---- a split upload's later part after an edit (issue #11) -------------------------------------


def _file(tmp_path, name, data):
    path = tmp_path / f"{hashlib.sha256(data).hexdigest()[:16]}-{len(list(tmp_path.iterdir()))}"
    path.write_bytes(data)
    return IncomingFile(name, path, len(data), hashlib.sha256(data).hexdigest())


def _ingest(services, project, xml, files=(), **rules):
    return submissions.ingest(
        services.db, services.blobs, project.id, xml, files, sender=Sender(actor_id=None), **rules
    )


def _files(services, project, iid):
    """(name, sha256) of the current version's attachments."""
    return [
        (a.name, a.blob_sha256)
        for a in submissions.list_attachments(services.db, project.id, FORM, iid)
    ]


def _version_files(services, version_id):
    with services.db.read() as tx:
        return [(a.name, a.blob_sha256) for a in submissions._attachments(tx, version_id)]


def _split_then_edit(services, project, tmp_path, edited_evidence):
    """Part 1 of a split upload (utama.jpg sent, b1.jpg still to come), then an edit."""
    first_id, edit_id = new_instance_id(), new_instance_id()
    first_xml = instance_xml(FORM, "1", first_id, photo_body(evidence=["b1.jpg"]))
    main = jpeg(seed=60)
    part1 = _ingest(services, project, first_xml, [_file(tmp_path, "utama.jpg", main)])
    assert part1.missing == ["b1.jpg"]
    _ingest(
        services,
        project,
        instance_xml(
            FORM,
            "1",
            edit_id,
            photo_body("Diubah", evidence=edited_evidence),
            deprecated_id=first_id,
        ),
    )
    return first_id, first_xml, part1.version.id, hashlib.sha256(main).hexdigest()


def test_a_later_part_after_an_edit_lands_in_the_current_version(services, project, tmp_path):
    """The edit still references b1.jpg and lacks it: part 2 (the original XML) fills it in
    the current version too, so the 201 means the file is where a reader looks for it."""
    first_id, first_xml, first_version, main = _split_then_edit(
        services, project, tmp_path, ["b1.jpg"]
    )
    photo = jpeg(seed=61)
    sha = hashlib.sha256(photo).hexdigest()
    part2 = _ingest(services, project, first_xml, [_file(tmp_path, "b1.jpg", photo)])
    assert part2.outcome == "retried" and part2.missing == []
    assert _files(services, project, first_id) == [("b1.jpg", sha), ("utama.jpg", main)]
    assert _version_files(services, first_version) == [("b1.jpg", sha), ("utama.jpg", main)]
    again = _ingest(services, project, first_xml, [_file(tmp_path, "b1.jpg", photo)])
    assert again.outcome == "retried"  # the phone's retry of part 2 is harmless


@pytest.mark.parametrize("edited_evidence", [[], ["b9.jpg"]], ids=["dropped", "renamed"])
def test_a_later_part_the_current_version_does_not_show_is_refused(
    services, project, tmp_path, edited_evidence
):
    """The edit no longer references b1.jpg: storing it only on the superseded version would
    answer 201 for a file no current reader sees, so it is a 409 and nothing changes."""
    first_id, first_xml, first_version, main = _split_then_edit(
        services, project, tmp_path, edited_evidence
    )
    before = _files(services, project, first_id)
    with pytest.raises(Conflict, match="has been edited") as refused:
        _ingest(services, project, first_xml, [_file(tmp_path, "b1.jpg", jpeg(seed=62))])
    assert "b1.jpg" in str(refused.value) and first_id in str(refused.value)
    assert _files(services, project, first_id) == before
    assert _version_files(services, first_version) == [("b1.jpg", None), ("utama.jpg", main)]
    # The XML alone (no file) repeats what is stored: still a harmless retry.
    assert _ingest(services, project, first_xml).outcome == "retried"


def test_a_later_part_whose_name_holds_another_file_now_is_refused(services, project, tmp_path):
    first_id, first_xml, _, _ = _split_then_edit(services, project, tmp_path, ["b1.jpg"])
    other = jpeg(seed=63)
    submissions.add_attachment(
        services.db,
        services.blobs,
        project.id,
        FORM,
        first_id,
        _file(tmp_path, "b1.jpg", other),
        actor_id=None,
    )
    with pytest.raises(Conflict, match="b1.jpg"):
        _ingest(services, project, first_xml, [_file(tmp_path, "b1.jpg", jpeg(seed=64))])
    assert dict(_files(services, project, first_id))["b1.jpg"] == hashlib.sha256(other).hexdigest()


def test_a_resent_complete_upload_after_an_edit_is_still_a_retry(services, project, tmp_path):
    """Everything the phone sends was stored before the edit (a lost 201, sent again): the
    edit chose to drop the photo, the old version keeps it; nothing new, so no refusal."""
    iid = new_instance_id()
    xml = instance_xml(FORM, "1", iid, photo_body())
    photo = jpeg(seed=65)
    _ingest(services, project, xml, [_file(tmp_path, "utama.jpg", photo)])
    _ingest(
        services,
        project,
        instance_xml(FORM, "1", new_instance_id(), photo_body(main=None), deprecated_id=iid),
    )
    again = _ingest(services, project, xml, [_file(tmp_path, "utama.jpg", photo)])
    assert again.outcome == "retried" and _files(services, project, iid) == []


def test_rest_attachment_upload_after_an_edit_goes_to_the_current_version(
    services, project, tmp_path
):
    """The REST upload names the submission (its first instanceID) and always means the
    current version: a name only the superseded version references is a 404."""
    first_id, _, first_version, _ = _split_then_edit(services, project, tmp_path, ["b9.jpg"])
    photo = jpeg(seed=66)
    with pytest.raises(NotFound, match="current version"):
        submissions.add_attachment(
            services.db,
            services.blobs,
            project.id,
            FORM,
            first_id,
            _file(tmp_path, "b1.jpg", photo),
            actor_id=None,
        )
    submissions.add_attachment(
        services.db,
        services.blobs,
        project.id,
        FORM,
        first_id,
        _file(tmp_path, "b9.jpg", photo),
        actor_id=None,
    )
    assert dict(_files(services, project, first_id))["b9.jpg"] == hashlib.sha256(photo).hexdigest()
    assert dict(_version_files(services, first_version))["b1.jpg"] is None


# ---- attachment names: one normalisation on both sides (issue #11) ---------------------------


def test_a_part_name_with_spaces_matches_the_xml_value_with_spaces(services, project, tmp_path):
    iid = new_instance_id()
    photo = jpeg(seed=67)
    xml = instance_xml(FORM, "1", iid, photo_body(main=" photo 1.jpg "))
    sent = _ingest(services, project, xml, [_file(tmp_path, " photo 1.jpg ", photo)])
    assert sent.missing == []
    assert _files(services, project, iid) == [("photo 1.jpg", hashlib.sha256(photo).hexdigest())]
    # REST names go through the same rule.
    assert (
        submissions.get_attachment(services.db, project.id, FORM, iid, " photo 1.jpg ").name
        == "photo 1.jpg"
    )


def test_two_different_files_for_one_name_are_refused(services, project, tmp_path):
    """Which of two different files is the photo cannot be told: refuse, so the phone keeps
    both, instead of keeping one and answering 201."""
    iid = new_instance_id()
    xml = instance_xml(FORM, "1", iid, photo_body())
    with pytest.raises(InvalidInput, match="utama.jpg"):
        _ingest(
            services,
            project,
            xml,
            [
                _file(tmp_path, "utama.jpg", jpeg(seed=68)),
                _file(tmp_path, " utama.jpg", jpeg(seed=69)),
            ],
        )
    with pytest.raises(NotFound):
        submissions.get_summary(services.db, project.id, FORM, iid)
    same = jpeg(seed=70)  # the same file twice is harmless
    sent = _ingest(
        services,
        project,
        xml,
        [_file(tmp_path, "utama.jpg", same), _file(tmp_path, "utama.jpg ", same)],
    )
    assert sent.missing == []


def test_parts_the_xml_does_not_name_are_ignored_but_audited(services, project, tmp_path):
    """As Central: a part the XML does not reference is not kept. It is not silent either:
    the submission's audit entry names what was left out."""
    iid = new_instance_id()
    xml = instance_xml(FORM, "1", iid, photo_body())
    sent = _ingest(
        services,
        project,
        xml,
        [
            _file(tmp_path, "utama.jpg", jpeg(seed=71)),
            _file(tmp_path, "extra.jpg", jpeg(seed=72)),
            _file(tmp_path, "*isIncomplete*", b"yes"),
        ],
    )
    assert sent.ignored == ["extra.jpg"]
    with services.db.read() as tx:
        entry = tx.exec(
            select(Audit).where(
                Audit.subject_type == "submission",
                Audit.subject_id == sent.submission.id,
                Audit.action == "submission.create",
            )
        ).one()
    assert entry.details["ignored"] == ["extra.jpg"]
