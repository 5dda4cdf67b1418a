"""Submissions: ingest (new, retried, edited), and the reads that serve them back.

`ingest` keeps DESIGN §8: attachments reach the blob store before the one short transaction
that records the submission; the caller answers 201 only after `ingest` returns. A retry of
the same instanceID with the same bytes is harmless, and the unique (form, instanceID) index
means two racing POSTs can never make two submissions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from forms.instance import Instance, is_safe_attachment_name, read_instance

from . import audit, content
from .blobs import BlobStore
from .db import Database
from .errors import Conflict, FormClosed, InvalidInput, NotFound, SubmissionDeleted, XmlConflict
from .forms import find_published_version, get_form, schema_of
from .models import Blob, Form, FormVersion, Submission, SubmissionAttachment, SubmissionVersion, utcnow

_RACE_RETRIES = 3


@dataclass(frozen=True)
class IncomingFile:
    """One received file part: its field name is the attachment's file name (OpenRosa)."""

    name: str
    path: Path
    size: int
    sha256: str
    content_type: str | None = None


@dataclass(frozen=True)
class Ingested:
    submission: Submission
    version: SubmissionVersion
    outcome: str  # created | retried | edited
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sender:
    actor_id: int | None
    device_id: str | None = None
    user_agent: str | None = None


def ingest(db: Database, blobs: BlobStore, project_id: int, xml: bytes,
           files: Sequence[IncomingFile] = (), *, sender: Sender,
           xml_form_id: str | None = None) -> Ingested:
    instance = read_instance(xml)
    if xml_form_id is not None and instance.form_id != xml_form_id:
        raise InvalidInput(f"The submission is for form {instance.form_id!r}, "
                           f"not {xml_form_id!r}.")
    form = get_form(db, project_id, instance.form_id)
    form_version = find_published_version(db, form, instance.version)
    if form_version is None:
        raise NotFound(f"version {instance.version!r} of form {instance.form_id!r}")
    if form.state == "closed":
        raise FormClosed(form.xml_form_id)
    names = instance.attachment_names(schema_of(form_version).binary_paths)
    unsafe = [name for name in names if not is_safe_attachment_name(name)]
    if unsafe:
        raise InvalidInput(f"Attachment name {unsafe[0]!r} is not a plain file name.")
    stored: dict[str, content.StoredBlob] = {}
    for incoming in files:
        if incoming.name in names and incoming.name not in stored:
            stored[incoming.name] = content.put_path(
                blobs, incoming.path, sha256=incoming.sha256, size=incoming.size,
                content_type=content.guess_type(incoming.name, incoming.content_type))
    xml_sha256 = hashlib.sha256(xml).hexdigest()
    for attempt in range(_RACE_RETRIES):
        try:
            with db.transaction() as tx:
                return _apply(tx, form, form_version, instance, xml, xml_sha256, names, stored,
                              sender)
        except IntegrityError:
            if attempt == _RACE_RETRIES - 1:
                raise
            # Another request stored this instanceID first: decide again against its row.
    raise AssertionError("unreachable")


def _apply(tx: Session, form: Form, form_version: FormVersion, instance: Instance, xml: bytes,
           xml_sha256: str, names: list[str], stored: dict[str, content.StoredBlob],
           sender: Sender) -> Ingested:
    for blob in stored.values():
        content.record(tx, blob)
    existing = _version_by_instance(tx, form.id, instance.instance_id)
    if existing is not None:
        submission = tx.get(Submission, existing.submission_id)
        if existing.xml_sha256 != xml_sha256:
            raise XmlConflict(instance.instance_id)
        if submission.deleted_at is not None:
            raise SubmissionDeleted(instance.instance_id)
        added = _attach(tx, existing, names, stored, carried={})
        if added:
            audit.record(tx, sender.actor_id, "submission.attachment.update", "submission",
                         submission.id, {"instanceId": instance.instance_id, "names": added})
        return Ingested(submission, existing, "retried", _missing(tx, existing))

    if instance.deprecated_id:
        previous = _version_by_instance(tx, form.id, instance.deprecated_id)
        if previous is None:
            raise NotFound(f"submission {instance.deprecated_id!r} (the deprecatedID)")
        if not previous.is_current:
            raise Conflict(f"The deprecatedID {instance.deprecated_id!r} is not the current "
                           "version of its submission.")
        submission = tx.get(Submission, previous.submission_id)
        if submission.deleted_at is not None:
            raise SubmissionDeleted(instance.deprecated_id)
        previous.is_current = False
        tx.flush()
        carried = {a.name: a for a in _attachments(tx, previous.id)}
        version = _new_version(tx, submission, form_version, instance, xml, xml_sha256, sender)
        _attach(tx, version, names, stored, carried)
        submission.review_state = "edited"
        submission.updated_at = utcnow()
        audit.record(tx, sender.actor_id, "submission.update.version", "submission",
                     submission.id, {"instanceId": instance.instance_id,
                                     "deprecatedId": instance.deprecated_id})
        return Ingested(submission, version, "edited", _missing(tx, version))

    submission = Submission(form_id=form.id, instance_id=instance.instance_id,
                            submitter_id=sender.actor_id, device_id=sender.device_id,
                            user_agent=sender.user_agent)
    tx.add(submission)
    tx.flush()
    version = _new_version(tx, submission, form_version, instance, xml, xml_sha256, sender)
    _attach(tx, version, names, stored, carried={})
    audit.record(tx, sender.actor_id, "submission.create", "submission", submission.id,
                 {"instanceId": instance.instance_id, "formVersion": form_version.version})
    return Ingested(submission, version, "created", _missing(tx, version))


def _new_version(tx: Session, submission: Submission, form_version: FormVersion,
                 instance: Instance, xml: bytes, xml_sha256: str,
                 sender: Sender) -> SubmissionVersion:
    version = SubmissionVersion(
        submission_id=submission.id, form_id=submission.form_id,
        form_version_id=form_version.id, instance_id=instance.instance_id,
        deprecated_id=instance.deprecated_id, instance_name=instance.instance_name,
        xml=xml, xml_sha256=xml_sha256, values=instance.values, submitter_id=sender.actor_id,
        device_id=sender.device_id, user_agent=sender.user_agent, is_current=True)
    tx.add(version)
    tx.flush()
    return version


def _attach(tx: Session, version: SubmissionVersion, names: list[str],
            stored: dict[str, content.StoredBlob],
            carried: dict[str, SubmissionAttachment]) -> list[str]:
    """Give each referenced name a row; fill it from this upload or from the previous version."""
    rows = {a.name: a for a in _attachments(tx, version.id)}
    changed = []
    for name in names:
        row = rows.get(name)
        if row is None:
            row = SubmissionAttachment(submission_version_id=version.id, name=name)
            old = carried.get(name)
            if old is not None and old.blob_sha256:
                row.blob_sha256, row.content_type, row.size = (old.blob_sha256, old.content_type,
                                                               old.size)
                row.updated_at = old.updated_at
            tx.add(row)
        blob = stored.get(name)
        if blob is not None and row.blob_sha256 != blob.sha256:
            row.blob_sha256, row.content_type, row.size = blob.sha256, blob.content_type, blob.size
            row.updated_at = utcnow()
            changed.append(name)
    tx.flush()
    return changed


def _missing(tx: Session, version: SubmissionVersion) -> list[str]:
    return [a.name for a in _attachments(tx, version.id) if a.blob_sha256 is None]


def _version_by_instance(tx: Session, form_id: int, instance_id: str) -> SubmissionVersion | None:
    return tx.exec(select(SubmissionVersion).where(SubmissionVersion.form_id == form_id,
                                                   SubmissionVersion.instance_id == instance_id)
                   ).first()


def _attachments(tx: Session, version_id: int) -> list[SubmissionAttachment]:
    return list(tx.exec(select(SubmissionAttachment)
                        .where(SubmissionAttachment.submission_version_id == version_id)
                        .order_by(SubmissionAttachment.name)))


# ---- reads -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubmissionView:
    submission: Submission
    current: SubmissionVersion
    attachments: list[SubmissionAttachment]


def get_submission(db: Database, project_id: int, xml_form_id: str,
                   instance_id: str) -> SubmissionView:
    form = get_form(db, project_id, xml_form_id)
    with db.read() as tx:
        submission = tx.exec(select(Submission).where(Submission.form_id == form.id,
                                                      Submission.instance_id == instance_id)).first()
        if submission is None:
            raise NotFound("submission")
        current = tx.exec(select(SubmissionVersion).where(
            SubmissionVersion.submission_id == submission.id, SubmissionVersion.is_current)).one()
        return SubmissionView(submission, current, _attachments(tx, current.id))


def list_submissions(db: Database, project_id: int, xml_form_id: str, *, limit: int = 100,
                     offset: int = 0) -> list[SubmissionView]:
    form = get_form(db, project_id, xml_form_id)
    with db.read() as tx:
        rows = tx.exec(select(Submission, SubmissionVersion)
                       .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
                       .where(Submission.form_id == form.id, SubmissionVersion.is_current,
                              Submission.deleted_at.is_(None))
                       .order_by(Submission.id.desc()).limit(limit).offset(offset)).all()
        return [SubmissionView(s, v, _attachments(tx, v.id)) for s, v in rows]


def get_attachment_blob(db: Database, version_id: int, name: str) -> Blob:
    with db.read() as tx:
        blob = tx.exec(select(Blob).join(SubmissionAttachment,
                                         SubmissionAttachment.blob_sha256 == Blob.sha256)
                       .where(SubmissionAttachment.submission_version_id == version_id,
                              SubmissionAttachment.name == name)).first()
    if blob is None:
        raise NotFound("attachment")
    return blob
