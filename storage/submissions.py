"""Submissions: ingest (new, retried, edited), review, and the reads that serve them back.

`ingest` keeps DESIGN §8: attachments reach the blob store before the one short transaction
that records the submission; the caller answers 201 only after `ingest` returns. A retry of
the same instanceID with the same bytes is harmless, and the unique (form, instanceID) index
means two racing POSTs can never make two submissions.

A later part of a split upload can arrive after the submission was edited (the phone sent
part 1, someone made a new version, the phone sends part 2 with the original XML). Its files
must end up where readers look, the current version: each new file also fills the current
version's attachment of that name when the current XML references it and lacks it (or holds
the same file); otherwise the whole request is a Conflict (409) and nothing is stored, so the
phone keeps its files. Files the superseded version already held are a plain retry.

Attachment names are compared after `forms.instance.attachment_name` on both sides: the
XML's values and the names files arrive under (multipart parts, REST paths). A part the XML
does not reference is not kept (as in Central); its name goes into the audit entry the
request writes (a retry that changes nothing writes none).

The REST operations (review state, soft delete and restore, attachments added or cleared by
hand, comments) each open one transaction and write their audit entry in it. Lookups by a
submission's first instanceID go through `_locate`: a soft-deleted submission, or one an officer
did not send (`submitter_id`), is not found.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from forms.instance import Instance, attachment_name, is_safe_attachment_name, read_instance

from . import audit, content, entity_submissions, search
from .blobs import BlobStore
from .db import Database
from .errors import (
    AlreadyExists,
    Conflict,
    FormClosed,
    InvalidInput,
    NotFound,
    SubmissionDeleted,
    XmlConflict,
)
from .forms import binary_paths, cached_schema, get_form, locate_form, resolve_in
from .models import (
    Audit,
    Blob,
    Comment,
    Form,
    FormVersion,
    Submission,
    SubmissionAttachment,
    SubmissionVersion,
    utcnow,
)
from .roles import require_assigned_in
from .users import Identity

_RACE_RETRIES = 3
# Review states a person may set (Central's); `None` is "received", `edited` also comes by itself.
# The one list of them: browse.FILTER_STATES (the pages' and exports' filters) adds RECEIVED.
REVIEW_STATES = ("hasIssues", "edited", "approved", "rejected")
RECEIVED = "received"  # a submission nobody has reviewed (review_state NULL)
MAX_COMMENT_CHARS = 10_000
# OpenRosa's split-upload marker travels as a part but is no file: never listed as ignored.
NOT_FILES = frozenset({"*isIncomplete*"})
MAX_IGNORED_LISTED = 20


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
    ignored: list[str] = field(default_factory=list)  # parts the XML does not reference

    @property
    def summary(self) -> SubmissionSummary:
        return SubmissionSummary(self.submission, VersionSummary.of(self.version))


@dataclass(frozen=True)
class Sender:
    actor_id: int | None
    device_id: str | None = None
    user_agent: str | None = None


def ingest(
    db: Database,
    blobs: BlobStore,
    project_id: int,
    xml: bytes,
    files: Sequence[IncomingFile] = (),
    *,
    sender: Sender,
    xml_form_id: str | None = None,
    allow_edit: bool = True,
    edit_of: str | None = None,
    app_user: Identity | None = None,
) -> Ingested:
    """Store a submission XML and the attachments it references.

    `app_user`: the sender is this app user, so the form must be assigned to it (else
    Forbidden, and nothing is stored).

    `xml_form_id`: the XML must be for this form. `allow_edit=False` is a REST create, as
    Central's: an instanceID the form already holds is AlreadyExists (whatever the XML), and
    an XML carrying meta/deprecatedID is refused (edits use PUT). `edit_of`: the XML must be a new version of the
    submission with this first instanceID, its deprecatedID that submission's current version
    (a REST PUT).
    """
    instance = read_instance(xml)
    if xml_form_id is not None and instance.form_id != xml_form_id:
        raise InvalidInput(f"The submission is for form {instance.form_id!r}, not {xml_form_id!r}.")
    if edit_of is not None and not instance.deprecated_id:
        raise InvalidInput(
            "An edit needs meta/deprecatedID holding the instanceID of the "
            "submission's current version."
        )
    # One read: the form, its version, the app user's assignment, the files already stored.
    with db.read() as tx:
        form, form_version = resolve_in(tx, project_id, instance.form_id, instance.version)
        if app_user is not None:
            require_assigned_in(tx, app_user, form)
        if form.state == "closed":
            raise FormClosed(form.xml_form_id)
        names = instance.attachment_names(binary_paths(form_version))
        unsafe = [name for name in names if not is_safe_attachment_name(name)]
        if unsafe:
            raise InvalidInput(f"Attachment name {unsafe[0]!r} is not a plain file name.")
        uploads, ignored = _match_files(names, files)
        known = content.recorded_digests(tx, {f.sha256 for f in uploads.values()})
    stored = {
        name: _put(blobs, name, incoming, recorded=incoming.sha256 in known)
        for name, incoming in uploads.items()
    }
    xml_sha256 = hashlib.sha256(xml).hexdigest()
    for attempt in range(_RACE_RETRIES):
        try:
            with db.transaction() as tx:
                if edit_of is not None:
                    _check_edit_target(tx, form, instance, edit_of)
                if not allow_edit:
                    _check_new(tx, form, instance)
                ingested = _apply(
                    tx,
                    form,
                    form_version,
                    instance,
                    xml,
                    xml_sha256,
                    names,
                    stored,
                    sender,
                    ignored,
                )
                if ingested.outcome in ("created", "edited"):
                    _process_entities(tx, project_id, form_version, ingested, instance, sender)
            # put_path skips an object already stored; if that was an old orphan, `jebol gc`
            # may have removed it before our row committed (storage/gc.py): put it again.
            for name, incoming in uploads.items():
                if stored[name].check_after_commit:
                    _put(blobs, name, incoming)
            return ingested
        except IntegrityError:
            if attempt == _RACE_RETRIES - 1:
                raise
            # Another request stored this instanceID first: decide again against its row.
    raise AssertionError("unreachable")


def _process_entities(
    tx: Session,
    project_id: int,
    form_version: FormVersion,
    ingested: Ingested,
    instance: Instance,
    sender: Sender,
) -> None:
    schema = cached_schema(form_version)
    if entity_submissions.wants_processing(schema):
        context = entity_submissions.Context(
            project_id,
            schema,
            ingested.submission,
            ingested.version,
            sender.actor_id,
            sender.user_agent,
            fresh=ingested.outcome == "created",
        )
        entity_submissions.apply(tx, context, instance)


def _match_files(
    names: list[str], files: Sequence[IncomingFile]
) -> tuple[dict[str, IncomingFile], list[str]]:
    """Each referenced name's file (names compared after `attachment_name`), and the names of
    the parts the XML does not reference. Two different files under one name are refused:
    keeping either would drop the other after a 201."""
    wanted = set(names)
    uploads: dict[str, IncomingFile] = {}
    ignored: list[str] = []
    for incoming in files:
        name = attachment_name(incoming.name)
        if name in wanted:
            kept = uploads.setdefault(name, incoming)
            if kept.sha256 != incoming.sha256:
                raise InvalidInput(
                    f"Two different files were sent for the attachment {name!r}; "
                    "nothing was stored."
                )
        elif incoming.name not in NOT_FILES and name not in ignored:
            ignored.append(name)
    return uploads, ignored


def _put(
    blobs: BlobStore, name: str, incoming: IncomingFile, *, recorded: bool = False
) -> content.StoredBlob:
    return content.put_path(
        blobs,
        incoming.path,
        sha256=incoming.sha256,
        size=incoming.size,
        content_type=content.guess_type(name, incoming.content_type),
        recorded=recorded,
    )


def _with_ignored(details: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    """An audit entry's details, naming the parts that were not kept (a few, printable)."""
    if ignored:
        details["ignored"] = [
            "".join(ch if ch.isprintable() else "?" for ch in name[:255])
            for name in ignored[:MAX_IGNORED_LISTED]
        ]
        if len(ignored) > MAX_IGNORED_LISTED:
            details["ignoredCount"] = len(ignored)
    return details


def _apply(
    tx: Session,
    form: Form,
    form_version: FormVersion,
    instance: Instance,
    xml: bytes,
    xml_sha256: str,
    names: list[str],
    stored: dict[str, content.StoredBlob],
    sender: Sender,
    ignored: list[str],
) -> Ingested:
    for blob in stored.values():
        content.record(tx, blob)
    # Locked (PostgreSQL): an edit of this version waits for us before it copies its files.
    existing = _version_by_instance(tx, form.id, instance.instance_id, for_update=True)
    if existing is not None:
        submission = tx.get(Submission, existing.submission_id)
        if existing.xml_sha256 != xml_sha256:
            raise XmlConflict(instance.instance_id)
        if submission.deleted_at is not None:
            raise SubmissionDeleted(instance.instance_id)
        details: dict[str, Any] = {"instanceId": instance.instance_id}
        if existing.is_current:
            added = _attach(tx, existing, names, stored, carried={})
        else:
            added, current = _attach_superseded(tx, submission, existing, stored)
            if current is not None:
                details["currentInstanceId"] = current
        if added:
            audit.record(
                tx,
                sender.actor_id,
                "submission.attachment.update",
                "submission",
                submission.id,
                _with_ignored({**details, "names": added}, ignored),
            )
        return Ingested(submission, existing, "retried", _missing(tx, existing), ignored)

    if instance.deprecated_id:
        previous = _version_by_instance(tx, form.id, instance.deprecated_id)
        if previous is None:
            raise NotFound(f"submission {instance.deprecated_id!r} (the deprecatedID)")
        if not previous.is_current:
            raise Conflict(
                f"The deprecatedID {instance.deprecated_id!r} is not the current "
                "version of its submission."
            )
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
        audit.record(
            tx,
            sender.actor_id,
            "submission.update.version",
            "submission",
            submission.id,
            _with_ignored(
                {"instanceId": instance.instance_id, "deprecatedId": instance.deprecated_id},
                ignored,
            ),
        )
        return Ingested(submission, version, "edited", _missing(tx, version), ignored)

    submission = Submission(
        form_id=form.id,
        instance_id=instance.instance_id,
        submitter_id=sender.actor_id,
        device_id=sender.device_id,
        user_agent=sender.user_agent,
    )
    tx.add(submission)
    tx.flush()
    version = _new_version(tx, submission, form_version, instance, xml, xml_sha256, sender)
    _attach(tx, version, names, stored, carried={}, fresh=True)
    audit.record(
        tx,
        sender.actor_id,
        "submission.create",
        "submission",
        submission.id,
        _with_ignored(
            {"instanceId": instance.instance_id, "formVersion": form_version.version}, ignored
        ),
    )
    return Ingested(submission, version, "created", [n for n in names if n not in stored], ignored)


def _attach_superseded(
    tx: Session,
    submission: Submission,
    old: SubmissionVersion,
    stored: dict[str, content.StoredBlob],
) -> tuple[list[str], str | None]:
    """Files sent with an XML that has since been edited (a split upload's later part).

    A file the old version already holds is a retry. Each other one must also become the
    current version's file of that name: that version's XML references the name and has no
    file for it yet (or this very file). If any cannot, nothing is stored: a Conflict, so the
    phone keeps the files rather than hearing 201 for a file no reader of the current version
    would see. Returns the names changed and the current version's instanceID (None when
    there was nothing new)."""
    held = {a.name: a.blob_sha256 for a in _attachments(tx, old.id)}
    fresh = {name: blob for name, blob in stored.items() if held.get(name) != blob.sha256}
    if not fresh:
        return [], None
    current = _current_version(tx, submission.id, for_update=True)
    rows = {a.name: a.blob_sha256 for a in _attachments(tx, current.id)}
    unseen = [
        name
        for name, blob in fresh.items()
        if name not in rows or rows[name] not in (None, blob.sha256)
    ]
    if unseen:
        raise Conflict(
            f"The submission {submission.instance_id!r} has been edited since this upload "
            f"began (its current version is {current.instance_id!r}). The file(s) "
            f"{', '.join(repr(n) for n in unseen)} belong to the older version "
            f"{old.instance_id!r} and would not be part of the current one, so nothing was "
            "stored. Keep the files; a supervisor can add them to the current version."
        )
    changed = _attach(tx, current, list(fresh), fresh, carried={})
    changed += [n for n in _attach(tx, old, list(fresh), fresh, carried={}) if n not in changed]
    return sorted(changed), current.instance_id


def _check_edit_target(tx: Session, form: Form, instance: Instance, edit_of: str) -> None:
    """A REST edit must name the submission it changes and that submission's current version."""
    submission = tx.exec(
        select(Submission).where(
            Submission.form_id == form.id,
            Submission.instance_id == edit_of,
            Submission.deleted_at.is_(None),
        )
    ).first()
    if submission is None:
        raise NotFound("submission")
    existing = _version_by_instance(tx, form.id, instance.instance_id)
    if existing is not None:  # a retry of this edit (same bytes) or a clash; _apply decides
        if existing.submission_id != submission.id:
            raise Conflict(
                f"The instanceID {instance.instance_id!r} belongs to another submission."
            )
        if not existing.is_current:
            raise Conflict(
                f"The instanceID {instance.instance_id!r} is an older version of "
                "this submission; it has since been edited."
            )
        return
    current = _current_version(tx, submission.id)
    if current.instance_id != instance.deprecated_id:
        raise Conflict(
            f"The deprecatedID {instance.deprecated_id!r} is not the current version "
            f"of submission {edit_of!r} (that is {current.instance_id!r}); get the "
            "current version and edit it again."
        )


def _check_new(tx: Session, form: Form, instance: Instance) -> None:
    """A REST create: the instanceID must be new to the form (Central's unique key), and the
    XML no edit."""
    if _version_by_instance(tx, form.id, instance.instance_id) is not None:
        raise AlreadyExists(
            "submissions", {"formId": form.id, "instanceId": instance.instance_id, "draft": False}
        )
    if instance.deprecated_id:
        raise InvalidInput(
            "The submission carries meta/deprecatedID: send an edit with PUT "
            "to the submission it changes."
        )


def _new_version(
    tx: Session,
    submission: Submission,
    form_version: FormVersion,
    instance: Instance,
    xml: bytes,
    xml_sha256: str,
    sender: Sender,
) -> SubmissionVersion:
    version = SubmissionVersion(
        submission_id=submission.id,
        form_id=submission.form_id,
        form_version_id=form_version.id,
        instance_id=instance.instance_id,
        deprecated_id=instance.deprecated_id,
        instance_name=instance.instance_name,
        xml=xml,
        xml_sha256=xml_sha256,
        values=instance.values,
        search_text=search.text_of(instance.values, instance.instance_name),
        submitter_id=sender.actor_id,
        device_id=sender.device_id,
        user_agent=sender.user_agent,
        is_current=True,
    )
    tx.add(version)
    tx.flush()
    return version


def _attach(
    tx: Session,
    version: SubmissionVersion,
    names: list[str],
    stored: dict[str, content.StoredBlob],
    carried: dict[str, SubmissionAttachment],
    fresh: bool = False,
) -> list[str]:
    """Give each referenced name a row; fill it from this upload or from the previous version.
    `fresh`: the version was just made and has no rows yet (saves a query)."""
    rows = {} if fresh else {a.name: a for a in _attachments(tx, version.id)}
    changed = []
    for name in names:
        row = rows.get(name)
        if row is None:
            row = SubmissionAttachment(submission_version_id=version.id, name=name)
            old = carried.get(name)
            if old is not None and old.blob_sha256:
                row.blob_sha256, row.content_type, row.size = (
                    old.blob_sha256,
                    old.content_type,
                    old.size,
                )
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


def _version_by_instance(
    tx: Session, form_id: int, instance_id: str, *, for_update: bool = False
) -> SubmissionVersion | None:
    """`for_update` locks the row (PostgreSQL) and reads it afresh, not from the session."""
    query = select(SubmissionVersion).where(
        SubmissionVersion.form_id == form_id, SubmissionVersion.instance_id == instance_id
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return tx.exec(query).first()


def _attachments(tx: Session, version_id: int) -> list[SubmissionAttachment]:
    return list(
        tx.exec(
            select(SubmissionAttachment)
            .where(SubmissionAttachment.submission_version_id == version_id)
            .order_by(SubmissionAttachment.name)
        )
    )


# ---- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionView:
    submission: Submission
    current: SubmissionVersion
    attachments: list[SubmissionAttachment]


@dataclass(frozen=True)
class VersionSummary:
    """A version without its XML and values: what lists and REST answers need."""

    instance_id: str
    instance_name: str | None
    submitter_id: int | None
    device_id: str | None
    user_agent: str | None
    created_at: datetime
    current: bool

    @classmethod
    def of(cls, version: SubmissionVersion) -> VersionSummary:
        return cls(
            version.instance_id,
            version.instance_name,
            version.submitter_id,
            version.device_id,
            version.user_agent,
            version.created_at,
            version.is_current,
        )


@dataclass(frozen=True)
class SubmissionSummary:
    submission: Submission
    current: VersionSummary


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment of a current version whose file is stored."""

    name: str
    blob: Blob


_SUMMARY_COLUMNS = (
    SubmissionVersion.instance_id,
    SubmissionVersion.instance_name,
    SubmissionVersion.submitter_id,
    SubmissionVersion.device_id,
    SubmissionVersion.user_agent,
    SubmissionVersion.created_at,
    SubmissionVersion.is_current,
)


def get_submission(
    db: Database, project_id: int, xml_form_id: str, instance_id: str
) -> SubmissionView:
    form = get_form(db, project_id, xml_form_id)
    with db.read() as tx:
        submission = tx.exec(
            select(Submission).where(
                Submission.form_id == form.id, Submission.instance_id == instance_id
            )
        ).first()
        if submission is None:
            raise NotFound("submission")
        current = _current_version(tx, submission.id)
        return SubmissionView(submission, current, _attachments(tx, current.id))


def list_submissions(
    db: Database, project_id: int, xml_form_id: str, *, limit: int = 100, offset: int = 0
) -> list[SubmissionView]:
    form = get_form(db, project_id, xml_form_id)
    with db.read() as tx:
        rows = tx.exec(
            select(Submission, SubmissionVersion)
            .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
            .where(
                Submission.form_id == form.id,
                SubmissionVersion.is_current,
                Submission.deleted_at.is_(None),
            )
            .order_by(Submission.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        attachments: dict[int, list[SubmissionAttachment]] = {v.id: [] for _, v in rows}
        if attachments:
            for attachment in tx.exec(
                select(SubmissionAttachment)
                .where(SubmissionAttachment.submission_version_id.in_(list(attachments)))
                .order_by(SubmissionAttachment.name)
            ):
                attachments[attachment.submission_version_id].append(attachment)
        return [SubmissionView(s, v, attachments[v.id]) for s, v in rows]


def list_summaries(
    db: Database,
    project_id: int,
    xml_form_id: str,
    *,
    limit: int | None = None,
    offset: int = 0,
    submitter_id: int | None = None,
    deleted: bool = False,
) -> list[SubmissionSummary]:
    """Newest first, without XML or values. `deleted=True` lists the soft-deleted ones instead;
    `submitter_id` keeps only what that actor sent."""
    if (limit is not None and limit < 0) or offset < 0:
        raise InvalidInput("limit and offset must not be negative.")
    with db.read() as tx:
        query = (
            _summary_query(locate_form(tx, project_id, xml_form_id), submitter_id, deleted)
            .order_by(Submission.id.desc())
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        return [SubmissionSummary(row[0], VersionSummary(*row[1:])) for row in tx.exec(query)]


def count_submissions(
    db: Database,
    project_id: int,
    xml_form_id: str,
    *,
    submitter_id: int | None = None,
    deleted: bool = False,
) -> int:
    with db.read() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        query = (
            select(func.count())
            .select_from(Submission)
            .where(Submission.form_id == form.id, _deleted_clause(deleted))
        )
        if submitter_id is not None:
            query = query.where(Submission.submitter_id == submitter_id)
        return int(tx.exec(query).one())


def get_summary(
    db: Database,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    *,
    submitter_id: int | None = None,
) -> SubmissionSummary:
    with db.read() as tx:
        row = tx.exec(
            _summary_query(
                locate_form(tx, project_id, xml_form_id), submitter_id, deleted=False
            ).where(Submission.instance_id == instance_id)
        ).first()
    if row is None:
        raise NotFound("submission")
    return SubmissionSummary(row[0], VersionSummary(*row[1:]))


def get_current_xml(
    db: Database,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    *,
    submitter_id: int | None = None,
) -> bytes:
    """The current version's XML, byte for byte as received."""
    with db.read() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id, submitter_id=submitter_id)
        return tx.exec(
            select(SubmissionVersion.xml).where(
                SubmissionVersion.submission_id == submission.id, SubmissionVersion.is_current
            )
        ).one()


def list_versions(
    db: Database,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    *,
    submitter_id: int | None = None,
) -> list[VersionSummary]:
    """Every version of a submission, newest first."""
    with db.read() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id, submitter_id=submitter_id)
        rows = tx.exec(
            select(*_SUMMARY_COLUMNS)
            .where(SubmissionVersion.submission_id == submission.id)
            .order_by(SubmissionVersion.id.desc())
        ).all()
    return [VersionSummary(*row) for row in rows]


def get_version(
    db: Database,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    version_instance_id: str,
    *,
    submitter_id: int | None = None,
) -> SubmissionVersion:
    """One version (with its XML) of the submission first sent as `instance_id`."""
    with db.read() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id, submitter_id=submitter_id)
        version = tx.exec(
            select(SubmissionVersion).where(
                SubmissionVersion.submission_id == submission.id,
                SubmissionVersion.instance_id == version_instance_id,
            )
        ).first()
    if version is None:
        raise NotFound("submission version")
    return version


def list_attachments(
    db: Database,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    *,
    submitter_id: int | None = None,
) -> list[SubmissionAttachment]:
    """The files the current version references; `blob_sha256` is None for a missing one."""
    with db.read() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id, submitter_id=submitter_id)
        return _attachments(tx, _current_version(tx, submission.id).id)


def get_attachment(
    db: Database,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    name: str,
    *,
    submitter_id: int | None = None,
) -> StoredAttachment:
    """A stored file of the current version; NotFound when unknown or not (yet) received."""
    name = attachment_name(name)
    with db.read() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id, submitter_id=submitter_id)
        blob = tx.exec(
            select(Blob)
            .join(SubmissionAttachment, SubmissionAttachment.blob_sha256 == Blob.sha256)
            .join(
                SubmissionVersion,
                SubmissionVersion.id == SubmissionAttachment.submission_version_id,
            )
            .where(
                SubmissionVersion.submission_id == submission.id,
                SubmissionVersion.is_current,
                SubmissionAttachment.name == name,
            )
        ).first()
    if blob is None:
        raise NotFound("attachment")
    return StoredAttachment(name, blob)


def get_attachment_blob(db: Database, version_id: int, name: str) -> Blob:
    name = attachment_name(name)
    with db.read() as tx:
        blob = tx.exec(
            select(Blob)
            .join(SubmissionAttachment, SubmissionAttachment.blob_sha256 == Blob.sha256)
            .where(
                SubmissionAttachment.submission_version_id == version_id,
                SubmissionAttachment.name == name,
            )
        ).first()
    if blob is None:
        raise NotFound("attachment")
    return blob


def list_comments(
    db: Database, project_id: int, xml_form_id: str, instance_id: str
) -> list[Comment]:
    """Newest first, as Central lists them."""
    with db.read() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id)
        return list(
            tx.exec(
                select(Comment)
                .where(Comment.submission_id == submission.id)
                .order_by(Comment.id.desc())
            )
        )


def list_audits(db: Database, project_id: int, xml_form_id: str, instance_id: str) -> list[Audit]:
    """The audit entries whose subject is this submission, newest first."""
    with db.read() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id)
        return list(
            tx.exec(
                select(Audit)
                .where(Audit.subject_type == "submission", Audit.subject_id == submission.id)
                .order_by(Audit.id.desc())
            )
        )


# ---- review and upkeep (REST) ----------------------------------------------------------------


def set_review_state(
    db: Database,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    state: str | None,
    *,
    actor_id: int | None,
) -> SubmissionSummary:
    if state not in REVIEW_STATES:
        raise InvalidInput(
            f"Unknown review state {state!r}; states are {', '.join(REVIEW_STATES)}."
        )
    with db.transaction() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id)
        current = _current_version(tx, submission.id)
        submission.review_state = state
        submission.updated_at = utcnow()
        audit.record(
            tx,
            actor_id,
            "submission.update",
            "submission",
            submission.id,
            {"instanceId": current.instance_id, "reviewState": state},
        )
        if state == "approved":
            _entities_on_approval(tx, project_id, submission, current, actor_id)
        return SubmissionSummary(submission, VersionSummary.of(current))


def _entities_on_approval(
    tx: Session,
    project_id: int,
    submission: Submission,
    current: SubmissionVersion,
    actor_id: int | None,
) -> None:
    """Lists with approvalRequired get their entities when the submission is approved."""
    form_version = tx.get(FormVersion, current.form_version_id)
    assert form_version is not None
    schema = cached_schema(form_version)
    if schema.entities:
        context = entity_submissions.Context(
            project_id,
            schema,
            submission,
            current,
            actor_id,
            submission.user_agent,
            approved=True,
        )
        entity_submissions.apply(tx, context, read_instance(current.xml))


def soft_delete(
    db: Database, project_id: int, xml_form_id: str, instance_id: str, *, actor_id: int | None
) -> None:
    """Hide a submission (restorable); its instanceID stays taken."""
    with db.transaction() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id)
        submission.deleted_at = utcnow()
        audit.record(
            tx,
            actor_id,
            "submission.delete",
            "submission",
            submission.id,
            {"instanceId": submission.instance_id},
        )


def restore(
    db: Database, project_id: int, xml_form_id: str, instance_id: str, *, actor_id: int | None
) -> None:
    with db.transaction() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id, deleted=True)
        submission.deleted_at = None
        audit.record(
            tx,
            actor_id,
            "submission.restore",
            "submission",
            submission.id,
            {"instanceId": submission.instance_id},
        )


def add_attachment(
    db: Database,
    blobs: BlobStore,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    upload: IncomingFile,
    *,
    actor_id: int | None,
) -> None:
    """Store an uploaded file as the current version's attachment `upload.name`.

    The submission is named by its first instanceID and the file always goes to its current
    version, whose XML must reference the name (else NotFound), as for a later part of an
    upload in `ingest`. The file reaches the blob store before the transaction that links it.
    """
    name = attachment_name(upload.name)
    with db.read() as tx:  # refuse early, before a large file travels to the store
        submission = _locate(tx, project_id, xml_form_id, instance_id)
        _attachment_row(tx, _current_version(tx, submission.id), name)
    stored = _put(blobs, name, upload)
    with db.transaction() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id)
        current = _current_version(tx, submission.id, for_update=True)
        row = _attachment_row(tx, current, name)
        content.record(tx, stored)
        old = row.blob_sha256
        row.blob_sha256, row.content_type = stored.sha256, stored.content_type
        row.size, row.updated_at = stored.size, utcnow()
        audit.record(
            tx,
            actor_id,
            "submission.attachment.update",
            "submission",
            submission.id,
            {
                "instanceId": current.instance_id,
                "name": name,
                "oldBlob": old,
                "newBlob": stored.sha256,
            },
        )
    if stored.check_after_commit:  # as in `ingest`: still there after our commit (gc.py)
        _put(blobs, name, upload)


def clear_attachment(
    db: Database,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    name: str,
    *,
    actor_id: int | None,
) -> None:
    """Unlink the current version's file `name` (it becomes expected again)."""
    name = attachment_name(name)
    with db.transaction() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id)
        current = _current_version(tx, submission.id, for_update=True)
        row = _attachment_row(tx, current, name)
        old = row.blob_sha256
        row.blob_sha256, row.content_type, row.size = None, None, None
        row.updated_at = utcnow()
        audit.record(
            tx,
            actor_id,
            "submission.attachment.update",
            "submission",
            submission.id,
            {"instanceId": current.instance_id, "name": name, "oldBlob": old, "newBlob": None},
        )


def add_comment(
    db: Database, project_id: int, xml_form_id: str, instance_id: str, body: str, *, actor_id: int
) -> Comment:
    body = body.strip()
    if not body or len(body) > MAX_COMMENT_CHARS:
        raise InvalidInput(f"A comment needs a body of 1 to {MAX_COMMENT_CHARS} characters.")
    with db.transaction() as tx:
        submission = _locate(tx, project_id, xml_form_id, instance_id)
        comment = Comment(submission_id=submission.id, actor_id=actor_id, body=body)
        tx.add(comment)
        tx.flush()
        audit.record(
            tx,
            actor_id,
            "comment.create",
            "submission",
            submission.id,
            {"instanceId": submission.instance_id, "commentId": comment.id},
        )
        return comment


# ---- lookups inside a transaction ------------------------------------------------------------


def _deleted_clause(deleted: bool) -> Any:
    return Submission.deleted_at.is_not(None) if deleted else Submission.deleted_at.is_(None)


def _locate(
    tx: Session,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    *,
    submitter_id: int | None = None,
    deleted: bool = False,
) -> Submission:
    """The submission first sent as `instance_id` (soft-deleted ones only if `deleted`)."""
    form = locate_form(tx, project_id, xml_form_id)
    query = select(Submission).where(
        Submission.form_id == form.id,
        Submission.instance_id == instance_id,
        _deleted_clause(deleted),
    )
    if submitter_id is not None:
        query = query.where(Submission.submitter_id == submitter_id)
    submission = tx.exec(query).first()
    if submission is None:
        raise NotFound("submission")
    return submission


def _summary_query(form: Form, submitter_id: int | None, deleted: bool) -> Any:
    query = (
        select(Submission, *_SUMMARY_COLUMNS)
        .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
        .where(
            Submission.form_id == form.id, SubmissionVersion.is_current, _deleted_clause(deleted)
        )
    )
    if submitter_id is not None:
        query = query.where(Submission.submitter_id == submitter_id)
    return query


def _current_version(
    tx: Session, submission_id: int, *, for_update: bool = False
) -> SubmissionVersion:
    """The current version; `for_update` locks it (PostgreSQL) against a concurrent edit."""
    query = select(SubmissionVersion).where(
        SubmissionVersion.submission_id == submission_id, SubmissionVersion.is_current
    )
    if for_update:
        query = query.with_for_update()
        # An edit that committed while we waited has made another row current: look again.
        version = tx.exec(query).first() or tx.exec(query).first()
        if version is None:
            raise NotFound("submission version")
        return version
    return tx.exec(query).one()


def _attachment_row(tx: Session, version: SubmissionVersion, name: str) -> SubmissionAttachment:
    row = tx.exec(
        select(SubmissionAttachment).where(
            SubmissionAttachment.submission_version_id == version.id,
            SubmissionAttachment.name == name,
        )
    ).first()
    if row is None:
        raise NotFound(f"attachment {name!r} in the submission's current version")
    return row


def list_version_values(db: Database, submission_id: int) -> list[tuple[str, dict[str, Any]]]:
    """Every version's (instanceID, values), oldest first: what a diff of edits needs."""
    with db.read() as tx:
        rows = tx.exec(
            select(SubmissionVersion.instance_id, SubmissionVersion.values)
            .where(SubmissionVersion.submission_id == submission_id)
            .order_by(SubmissionVersion.id)
        ).all()
    return [(instance_id, values) for instance_id, values in rows]
