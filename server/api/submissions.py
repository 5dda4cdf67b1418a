"""/v1 submissions in ODK Central's shapes: list, one, XML, create, edit, review, attachments,
comments, audit trail, versions, soft delete and restore.

Who may do what (DESIGN §7; role sets from server.auth, admins may do everything):
- read (list, one, its XML, versions, attachment list and files): SUBMIT. Officers see only
  the submissions they sent: another's answers 404, as an unknown one does.
- create over REST (POST of a raw XML): SUBMIT.
- edit (PUT of a new version), review state (PATCH), attachment upload and clear, comments and
  the audit trail: REVIEW (managers and supervisors).
- soft delete and restore: MANAGE.

A soft-deleted submission answers 404 everywhere but `?deleted=true` lists (which list only the
deleted ones, as Central's) and `restore`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
from litestar import Request, Response, delete, get, patch, post, put
from litestar.params import JSONBody, RawBody
from litestar.response import Redirect, Stream

from forms.instance import MAX_SUBMISSION_XML_BYTES
from storage import submissions
from storage.models import Audit, Comment
from storage.submissions import IncomingFile, Sender, SubmissionSummary, VersionSummary
from storage.users import Identity

from ..auth import MANAGE, REVIEW, SUBMIT, UI_LINKED, own_only
from ..deps import DB, Blobs, Caller, Config, PathText, ProjectId, QueryParameter, Roles, UserAgent
from ..files import file_response
from ..guards import requires
from ..uploads import receive_body
from .schemas import Success, Wire

SUBMISSIONS = "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions"
ONE = SUBMISSIONS + "/{instance_id:str}"
TAGS = ["Submissions"]
XML_TYPE = "text/xml"
XML_SUFFIX = ".xml"
FLUSH_BYTES = 1024 * 1024


# ---- wire shapes -----------------------------------------------------------------------------


class VersionOut(Wire):
    instance_id: str
    instance_name: str | None
    submitter_id: int | None
    device_id: str | None
    user_agent: str | None
    created_at: datetime
    current: bool

    @classmethod
    def of(cls, version: VersionSummary) -> VersionOut:
        return cls(
            instance_id=version.instance_id,
            instance_name=version.instance_name,
            submitter_id=version.submitter_id,
            device_id=version.device_id,
            user_agent=version.user_agent,
            created_at=version.created_at,
            current=version.current,
        )


class SubmissionOut(Wire):
    instance_id: str
    submitter_id: int | None
    device_id: str | None
    created_at: datetime
    updated_at: datetime | None
    deleted_at: datetime | None
    review_state: str | None
    user_agent: str | None
    current_version: VersionOut

    @classmethod
    def of(cls, summary: SubmissionSummary) -> SubmissionOut:
        sub = summary.submission
        return cls(
            instance_id=sub.instance_id,
            submitter_id=sub.submitter_id,
            device_id=sub.device_id,
            created_at=sub.created_at,
            updated_at=sub.updated_at,
            deleted_at=sub.deleted_at,
            review_state=sub.review_state,
            user_agent=sub.user_agent,
            current_version=VersionOut.of(summary.current),
        )


class ReviewPatch(Wire):
    review_state: str | None = None


class AttachmentOut(Wire):
    name: str
    exists: bool


class CommentIn(Wire):
    body: str


class CommentOut(Wire):
    body: str
    actor_id: int
    created_at: datetime

    @classmethod
    def of(cls, comment: Comment) -> CommentOut:
        return cls(body=comment.body, actor_id=comment.actor_id, created_at=comment.created_at)


class AuditOut(Wire):
    actor_id: int | None
    action: str
    actee_id: str | None
    details: dict[str, Any]
    logged_at: datetime

    @classmethod
    def of(cls, entry: Audit) -> AuditOut:
        return cls(
            actor_id=entry.actor_id,
            action=entry.action,
            actee_id=None,
            details=entry.details,
            logged_at=entry.logged_at,
        )


# ---- reads -----------------------------------------------------------------------------------


@get(
    SUBMISSIONS,
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Submissions of a form, newest first (data collectors: their own)",
)
def list_submissions(
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    caller: Caller,
    roles: Roles,
    limit: Annotated[int | None, QueryParameter(ge=0)] = None,
    offset: Annotated[int, QueryParameter(ge=0)] = 0,
    deleted: Annotated[bool, QueryParameter()] = False,
) -> Response[list[SubmissionOut]]:
    own = own_only(roles, caller)
    rows = submissions.list_summaries(
        db, project_id, xml_form_id, limit=limit, offset=offset, submitter_id=own, deleted=deleted
    )
    total = submissions.count_submissions(
        db, project_id, xml_form_id, submitter_id=own, deleted=deleted
    )
    return Response([SubmissionOut.of(row) for row in rows], headers={"X-Total-Count": str(total)})


@get(
    ONE,
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=TAGS,
    summary="One submission; with a .xml suffix its current XML, byte for byte",
)
def get_submission(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    db: DB,
    caller: Caller,
    roles: Roles,
) -> SubmissionOut | Response[bytes]:
    own = own_only(roles, caller)
    if instance_id.endswith(XML_SUFFIX):
        return _xml(
            submissions.get_current_xml(
                db, project_id, xml_form_id, instance_id[: -len(XML_SUFFIX)], submitter_id=own
            )
        )
    return SubmissionOut.of(
        submissions.get_summary(db, project_id, xml_form_id, instance_id, submitter_id=own)
    )


@get(
    ONE + "/versions",
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Every version of a submission, newest first",
)
def list_versions(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    db: DB,
    caller: Caller,
    roles: Roles,
) -> list[VersionOut]:
    own = own_only(roles, caller)
    return [
        VersionOut.of(v)
        for v in submissions.list_versions(
            db, project_id, xml_form_id, instance_id, submitter_id=own
        )
    ]


@get(
    ONE + "/versions/{version_id:str}",
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=TAGS,
    summary="One version of a submission; with a .xml suffix its XML",
)
def get_version(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    version_id: PathText,
    db: DB,
    caller: Caller,
    roles: Roles,
) -> VersionOut | Response[bytes]:
    own = own_only(roles, caller)
    as_xml = version_id.endswith(XML_SUFFIX)
    version = submissions.get_version(
        db,
        project_id,
        xml_form_id,
        instance_id,
        version_id[: -len(XML_SUFFIX)] if as_xml else version_id,
        submitter_id=own,
    )
    return _xml(version.xml) if as_xml else VersionOut.of(VersionSummary.of(version))


@get(
    ONE + "/attachments",
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Files the current version references, and whether each is stored",
)
def list_attachments(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    db: DB,
    caller: Caller,
    roles: Roles,
) -> list[AttachmentOut]:
    own = own_only(roles, caller)
    return [
        AttachmentOut(name=a.name, exists=a.blob_sha256 is not None)
        for a in submissions.list_attachments(
            db, project_id, xml_form_id, instance_id, submitter_id=own
        )
    ]


@get(
    ONE + "/attachments/{name:str}",
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=TAGS,
    opt=UI_LINKED,
    summary="Download an attachment (streamed, or a 307 to a presigned S3 URL)",
)
def download_attachment(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    name: PathText,
    db: DB,
    blobs: Blobs,
    caller: Caller,
    roles: Roles,
) -> Response[Any] | Stream | Redirect:
    own = own_only(roles, caller)
    blob = submissions.get_attachment(
        db, project_id, xml_form_id, instance_id, name, submitter_id=own
    ).blob
    return file_response(request, blobs, blob, name)


@get(
    ONE + "/comments",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Comments, newest first",
)
def list_comments(
    project_id: ProjectId, xml_form_id: PathText, instance_id: PathText, db: DB, caller: Caller
) -> list[CommentOut]:
    return [
        CommentOut.of(c)
        for c in submissions.list_comments(db, project_id, xml_form_id, instance_id)
    ]


@get(
    ONE + "/audits",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    summary="The audit entries of a submission, newest first",
)
def list_audits(
    project_id: ProjectId, xml_form_id: PathText, instance_id: PathText, db: DB, caller: Caller
) -> list[AuditOut]:
    return [
        AuditOut.of(a) for a in submissions.list_audits(db, project_id, xml_form_id, instance_id)
    ]


# ---- writes ----------------------------------------------------------------------------------


@post(
    SUBMISSIONS,
    status_code=200,
    sync_to_thread=True,
    tags=TAGS,
    guards=[requires(SUBMIT)],
    request_max_body_size=MAX_SUBMISSION_XML_BYTES,
    summary="Create a submission from a raw XML body (no deprecatedID: edits use PUT)",
)
def create_submission(
    project_id: ProjectId,
    xml_form_id: PathText,
    body: RawBody,
    db: DB,
    blobs: Blobs,
    caller: Caller,
    user_agent: UserAgent = None,
    device_id: Annotated[str | None, QueryParameter(name="deviceID")] = None,
) -> SubmissionOut:
    result = submissions.ingest(
        db,
        blobs,
        project_id,
        body,
        sender=_sender(caller, device_id, user_agent),
        xml_form_id=xml_form_id,
        allow_edit=False,
    )
    return SubmissionOut.of(result.summary)


@put(
    ONE,
    sync_to_thread=True,
    tags=TAGS,
    request_max_body_size=MAX_SUBMISSION_XML_BYTES,
    guards=[requires(REVIEW)],
    summary="Edit: a new version whose deprecatedID is the current version's instanceID",
)
def edit_submission(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    body: RawBody,
    db: DB,
    blobs: Blobs,
    caller: Caller,
    user_agent: UserAgent = None,
    device_id: Annotated[str | None, QueryParameter(name="deviceID")] = None,
) -> SubmissionOut:
    result = submissions.ingest(
        db,
        blobs,
        project_id,
        body,
        sender=_sender(caller, device_id, user_agent),
        xml_form_id=xml_form_id,
        edit_of=instance_id,
    )
    return SubmissionOut.of(result.summary)


@patch(
    ONE,
    sync_to_thread=True,
    tags=TAGS,
    guards=[requires(REVIEW)],
    summary="Set the review state: hasIssues, edited, approved or rejected",
)
def review_submission(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    data: JSONBody[ReviewPatch],
    db: DB,
    caller: Caller,
) -> SubmissionOut:
    return SubmissionOut.of(
        submissions.set_review_state(
            db, project_id, xml_form_id, instance_id, data.review_state, actor_id=caller.actor_id
        )
    )


@delete(
    ONE,
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=TAGS,
    summary="Soft-delete a submission (it can be restored)",
)
def delete_submission(
    project_id: ProjectId, xml_form_id: PathText, instance_id: PathText, db: DB, caller: Caller
) -> Success:
    submissions.soft_delete(db, project_id, xml_form_id, instance_id, actor_id=caller.actor_id)
    return Success()


@post(
    ONE + "/restore",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=TAGS,
    summary="Restore a soft-deleted submission",
)
def restore_submission(
    project_id: ProjectId, xml_form_id: PathText, instance_id: PathText, db: DB, caller: Caller
) -> Success:
    submissions.restore(db, project_id, xml_form_id, instance_id, actor_id=caller.actor_id)
    return Success()


@post(
    ONE + "/attachments/{name:str}",
    status_code=200,
    tags=TAGS,
    guards=[requires(REVIEW)],
    summary="Upload a file the current version references (raw body, streamed to disk)",
)
async def upload_attachment(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    name: PathText,
    db: DB,
    blobs: Blobs,
    settings: Config,
    caller: Caller,
) -> Success:
    async with receive_body(request, Path(settings.tmp_dir)) as body:
        upload = IncomingFile(
            name, body.path, body.size, body.sha256, request.headers.get("content-type")
        )
        await anyio.to_thread.run_sync(
            lambda: submissions.add_attachment(
                db, blobs, project_id, xml_form_id, instance_id, upload, actor_id=caller.actor_id
            )
        )
    return Success()


@delete(
    ONE + "/attachments/{name:str}",
    guards=[requires(REVIEW)],
    status_code=200,
    sync_to_thread=True,
    tags=TAGS,
    summary="Unlink an attachment from the current version (it becomes missing)",
)
def clear_attachment(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    name: PathText,
    db: DB,
    caller: Caller,
) -> Success:
    submissions.clear_attachment(
        db, project_id, xml_form_id, instance_id, name, actor_id=caller.actor_id
    )
    return Success()


@post(
    ONE + "/comments",
    status_code=200,
    sync_to_thread=True,
    tags=TAGS,
    guards=[requires(REVIEW)],
    summary="Comment on a submission",
)
def add_comment(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    data: JSONBody[CommentIn],
    db: DB,
    caller: Caller,
) -> CommentOut:
    return CommentOut.of(
        submissions.add_comment(
            db, project_id, xml_form_id, instance_id, data.body, actor_id=caller.actor_id
        )
    )


# ---- helpers ---------------------------------------------------------------------------------


def _sender(caller: Identity, device_id: str | None, user_agent: str | None) -> Sender:
    return Sender(
        actor_id=caller.actor_id,
        device_id=device_id or None,
        user_agent=(user_agent or "")[:512] or None,
    )


def _xml(body: bytes) -> Response[bytes]:
    return Response(body, media_type=XML_TYPE)


HANDLERS = [
    list_submissions,
    create_submission,
    get_submission,
    edit_submission,
    review_submission,
    delete_submission,
    restore_submission,
    list_versions,
    get_version,
    list_attachments,
    download_attachment,
    upload_attachment,
    clear_attachment,
    list_comments,
    add_comment,
    list_audits,
]
