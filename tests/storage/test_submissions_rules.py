"""Submission rules behind the REST API, on each backend: edits, review, deletion, attachments."""

from __future__ import annotations

import hashlib

import pytest
from sqlmodel import select

from storage import submissions
from storage.blobs import blob_key
from storage.errors import Conflict, InvalidInput, NotFound, SubmissionDeleted
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
    return submissions.ingest(services.db, services.blobs, project.id, xml,
                              sender=Sender(actor_id=actor_id), **rules)


def _audits(services, subject_id):
    with services.db.read() as tx:
        return [a.action for a in tx.exec(select(Audit).where(
            Audit.subject_type == "submission", Audit.subject_id == subject_id)
            .order_by(Audit.id))]


def test_rest_create_refuses_a_deprecated_id(services, project):
    first = _send(services, project)
    with pytest.raises(InvalidInput, match="PUT"):
        _send(services, project, deprecated_id=first.submission.instance_id, allow_edit=False)


def test_rest_create_refuses_a_version_since_edited(services, project):
    first = _send(services, project)
    iid = first.submission.instance_id
    _send(services, project, deprecated_id=iid)
    with pytest.raises(Conflict, match="older version"):
        _send(services, project, iid, allow_edit=False)


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
        submissions.set_review_state(services.db, project.id, FORM, iid, "received",
                                     actor_id=None)
    summary = submissions.set_review_state(services.db, project.id, FORM, iid, "hasIssues",
                                           actor_id=None)
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
    assert [s.submission.instance_id for s in
            submissions.list_summaries(services.db, project.id, FORM, deleted=True)] == [iid]
    with pytest.raises(SubmissionDeleted):
        _send(services, project, iid)
    submissions.restore(services.db, project.id, FORM, iid, actor_id=None)
    assert submissions.get_summary(services.db, project.id, FORM, iid).submission.deleted_at is None
    assert _audits(services, sent.submission.id)[-2:] == ["submission.delete",
                                                          "submission.restore"]


def test_submitter_filter_hides_other_peoples_submissions(services, project):
    mine = _send(services, project, actor_id=None)
    count = submissions.count_submissions(services.db, project.id, FORM)
    assert count == 1
    with pytest.raises(NotFound):
        submissions.get_summary(services.db, project.id, FORM, mine.submission.instance_id,
                                submitter_id=-1)
    assert submissions.count_submissions(services.db, project.id, FORM, submitter_id=-1) == 0


def test_attachment_added_by_hand_is_carried_to_the_next_version(services, project, tmp_path):
    sent = _send(services, project)
    iid = sent.submission.instance_id
    photo = jpeg(seed=41)
    path = tmp_path / "upload"
    path.write_bytes(photo)
    upload = IncomingFile("utama.jpg", path, len(photo), hashlib.sha256(photo).hexdigest())
    with pytest.raises(NotFound):
        submissions.add_attachment(services.db, services.blobs, project.id, FORM, iid,
                                   IncomingFile("lain.jpg", path, upload.size, upload.sha256),
                                   actor_id=None)
    submissions.add_attachment(services.db, services.blobs, project.id, FORM, iid, upload,
                               actor_id=None)
    stored = submissions.get_attachment(services.db, project.id, FORM, iid, "utama.jpg")
    assert stored.blob.content_type == "image/jpeg"
    assert services.blobs.read_bytes(blob_key(stored.blob.sha256)) == photo
    _send(services, project, deprecated_id=iid)  # an edit that does not resend the photo
    assert submissions.get_attachment(services.db, project.id, FORM, iid,
                                      "utama.jpg").blob.sha256 == upload.sha256
    submissions.clear_attachment(services.db, project.id, FORM, iid, "utama.jpg", actor_id=None)
    assert [(a.name, a.blob_sha256) for a in submissions.list_attachments(
        services.db, project.id, FORM, iid)] == [("utama.jpg", None)]


def test_list_submissions_keeps_each_views_attachments(services, project, tmp_path):
    photo = jpeg(seed=42)
    path = tmp_path / "p"
    path.write_bytes(photo)
    files = [IncomingFile("utama.jpg", path, len(photo), hashlib.sha256(photo).hexdigest())]
    xml = instance_xml(FORM, "1", new_instance_id(), photo_body())
    submissions.ingest(services.db, services.blobs, project.id, xml, files,
                       sender=Sender(actor_id=None))
    _send(services, project)
    views = submissions.list_submissions(services.db, project.id, FORM)
    assert [[a.blob_sha256 is not None for a in v.attachments] for v in views] == [[False],
                                                                                  [True]]
