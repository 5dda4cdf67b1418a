"""/v1 forms in Central's shapes: create, list, read, state, drafts, media, versions.

Who may do what (DESIGN §7): anyone with a role in the project lists forms and downloads
their XForm; managers create, change, publish and delete them.
"""

from __future__ import annotations

import posixpath
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import anyio
from litestar import Request, Response, delete, get, patch, post
from litestar.response import Redirect, Stream
from markupsafe import escape

from forms.compile import MAX_XLSFORM_BYTES
from storage import entity_lists
from storage import forms as form_store
from storage.blobs import BlobStore
from storage.errors import NotFound

from ..auth import MANAGE, REVIEW, SUBMIT, UI_LINKED, may_review
from ..deps import DB, Blobs, Caller, Config, JSONBody, PathText, ProjectId, QueryParameter, Roles
from ..errors import MissingInput, forbidden
from ..files import file_response
from ..guards import requires
from ..uploads import receive_body
from .odata import service_document as odata_service_document
from .schemas import FormOut, Success, Wire

XML_TYPES = ("application/xml", "text/xml")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORM = "/projects/{project_id:int}/forms/{xml_form_id:str}"


class FormState(Wire):
    state: str


class AttachmentOut(Wire):
    name: str
    type: str
    exists: bool
    blob_exists: bool
    dataset_exists: bool = False
    hash: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, media: form_store.MediaFile, listed: bool = False) -> AttachmentOut:
        """`listed`: served from the project's entity list of the file's name, so it exists
        with no upload, and has no file hash (Central's dataset-linked attachment)."""
        blob = media.blob
        return cls(
            name=media.attachment.name,
            type=media.attachment.kind,
            exists=blob is not None or listed,
            blob_exists=blob is not None,
            dataset_exists=listed,
            hash=blob.md5 if blob and not listed else None,
            updated_at=media.attachment.updated_at,
        )


def _attachments(db: Any, version: form_store.FormVersion, project_id: int) -> list[AttachmentOut]:
    return [
        AttachmentOut.of(media, listed is not None)
        for media, listed in entity_lists.media_of(db, version, project_id)
    ]


# ---- create and list ---------------------------------------------------------------------------


@post(
    "/projects/{project_id:int}/forms",
    status_code=200,
    guards=[requires(MANAGE)],
    request_max_body_size=MAX_XLSFORM_BYTES,
    tags=["Forms"],
    summary="Create a form from an XLSForm (.xlsx/.xls) or an XForm (.xml) body",
)
async def create_form(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    db: DB,
    blobs: Blobs,
    caller: Caller,
    ignore_warnings: Annotated[bool, QueryParameter(name="ignoreWarnings")] = False,
    publish: Annotated[bool, QueryParameter(name="publish")] = False,
) -> FormOut:
    result = await _store_definition(
        request, db, blobs, caller, project_id, None, ignore_warnings, publish
    )
    return FormOut.of(result.form, result.version)


async def _store_definition(
    request: Request[Any, Any, Any],
    db: Any,
    blobs: BlobStore,
    caller: Any,
    project_id: int,
    xml_form_id: str | None,
    ignore_warnings: bool,
    publish: bool,
) -> form_store.Published:
    body = await request.body()
    if not body:
        raise MissingInput("The request body is empty: send the XLSForm or XForm file.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    header = request.headers.get("x-xlsform-formid-fallback")
    fallback = form_id_fallback(header) if header else xml_form_id

    def store() -> form_store.Published:
        if content_type in XML_TYPES:
            return form_store.publish_xform(
                db,
                blobs,
                project_id,
                body,
                publish=publish,
                expect_form_id=xml_form_id,
                new_form=xml_form_id is None,
                actor_id=caller.actor_id,
            )
        return form_store.publish_xlsform(
            db,
            blobs,
            project_id,
            body,
            form_id_fallback=fallback,
            ignore_warnings=ignore_warnings,
            publish=publish,
            expect_form_id=xml_form_id,
            new_form=xml_form_id is None,
            actor_id=caller.actor_id,
        )

    return await anyio.to_thread.run_sync(store)


def form_id_fallback(header: str) -> str:
    """`X-XlsForm-FormId-Fallback` as Central reads it (pyxform-http's `sanitize`): decoded,
    HTML-escaped, cut after its last "/". It names the form when the XLSForm does not."""
    return posixpath.basename(str(escape(unquote(header))))


@get(
    "/projects/{project_id:int}/forms",
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=["Forms"],
    summary="Forms of a project",
)
def list_forms(project_id: ProjectId, db: DB, caller: Caller) -> list[FormOut]:
    return [
        FormOut.of(form, version)
        for form, version in form_store.list_forms(db, project_id, include_drafts=True)
    ]


@get(
    "/projects/{project_id:int}/forms/{form_file:str}",
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=["Forms"],
    opt=UI_LINKED,
    summary="A form as JSON, or its XForm (`{xmlFormId}.xml`), XLSForm (`.xlsx`) or OData "
    "service document (`.svc`)",
)
def get_form(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    form_file: PathText,
    db: DB,
    blobs: Blobs,
    roles: Roles,
) -> FormOut | Response[Any] | Stream | Redirect:
    stem, _, suffix = form_file.rpartition(".")
    if stem and suffix == "xml":
        form = form_store.get_form(db, project_id, stem)
        version = form_store.current_version(db, form)
        return Response(version.xml, media_type="text/xml", headers={"ETag": f'"{version.md5}"'})
    if stem and suffix in ("xlsx", "xls"):
        if not may_review(roles):  # the XLSForm: reviewers and managers
            raise forbidden()
        form = form_store.get_form(db, project_id, stem)
        return _xlsform_file(request, db, blobs, form_store.current_version(db, form), stem)
    if stem and suffix == "svc":  # the OData service document (server.api.odata)
        return odata_service_document(request, db, roles, project_id, stem)
    form = form_store.get_form(db, project_id, form_file)
    versions = form_store.list_forms(db, project_id, include_drafts=True, xml_form_id=form_file)
    return FormOut.of(form, versions[0][1] if versions else None)


def _xlsform_file(
    request: Request[Any, Any, Any],
    db: Any,
    blobs: BlobStore,
    version: form_store.FormVersion,
    stem: str,
) -> Response[Any] | Stream | Redirect:
    if version.xlsform_sha256 is None:
        raise NotFound(message="This form version was not uploaded as an XLSForm.")
    blob = form_store.get_blob(db, version.xlsform_sha256)
    extension = "xls" if blob.content_type == "application/vnd.ms-excel" else "xlsx"
    return file_response(request, blobs, blob, f"{stem}.{extension}")


@patch(
    FORM,
    sync_to_thread=True,
    tags=["Forms"],
    guards=[requires(MANAGE)],
    summary="Open, close or set closing",
)
def update_form(
    project_id: ProjectId, xml_form_id: PathText, data: JSONBody[FormState], db: DB, caller: Caller
) -> FormOut:
    form = form_store.set_state(db, project_id, xml_form_id, data.state, caller.actor_id)
    versions = form_store.list_forms(db, project_id, include_drafts=True, xml_form_id=xml_form_id)
    return FormOut.of(form, versions[0][1] if versions else None)


@delete(
    FORM,
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["Forms"],
    summary="Delete a form",
)
def delete_form(project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller) -> Success:
    form_store.delete_form(db, project_id, xml_form_id, caller.actor_id)
    return Success()


# ---- drafts ------------------------------------------------------------------------------------


@post(
    f"{FORM}/draft",
    status_code=200,
    guards=[requires(MANAGE)],
    request_max_body_size=MAX_XLSFORM_BYTES,
    tags=["Forms"],
    summary="Start a draft: a new definition in the body, or a copy of the published one",
)
async def create_draft(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    blobs: Blobs,
    caller: Caller,
    ignore_warnings: Annotated[bool, QueryParameter(name="ignoreWarnings")] = False,
) -> Success:
    if request.headers.get("content-length", "0") == "0" and "chunked" not in request.headers.get(
        "transfer-encoding", ""
    ):
        await anyio.to_thread.run_sync(
            lambda: form_store.draft_from_published(db, project_id, xml_form_id, caller.actor_id)
        )
        return Success()
    await anyio.to_thread.run_sync(form_store.get_form, db, project_id, xml_form_id)
    await _store_definition(
        request, db, blobs, caller, project_id, xml_form_id, ignore_warnings, publish=False
    )
    return Success()


@get(
    f"{FORM}/draft",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["Forms"],
    summary="The draft, as JSON",
)
def get_draft(project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller) -> FormOut:
    form, draft = form_store.get_draft(db, project_id, xml_form_id)
    return FormOut.of(form, draft)


@get(
    f"{FORM}/draft.xml",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["Forms"],
    summary="The draft's XForm",
)
def get_draft_xml(
    project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller
) -> Response[bytes]:
    _, draft = form_store.get_draft(db, project_id, xml_form_id)
    return Response(draft.xml, media_type="text/xml")


@delete(
    f"{FORM}/draft",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["Forms"],
    summary="Abandon the draft",
)
def delete_draft(project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller) -> Success:
    form_store.delete_draft(db, project_id, xml_form_id, caller.actor_id)
    return Success()


@post(
    f"{FORM}/draft/publish",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["Forms"],
    summary="Publish the draft (optionally as ?version=)",
)
def publish_draft(
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    caller: Caller,
    version: Annotated[str | None, QueryParameter(name="version")] = None,
) -> Success:
    form_store.publish_draft(db, project_id, xml_form_id, version, caller.actor_id)
    return Success()


@get(
    f"{FORM}/draft/attachments",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["Forms"],
    summary="Media files the draft expects",
)
def list_draft_attachments(
    project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller
) -> list[AttachmentOut]:
    _, draft = form_store.get_draft(db, project_id, xml_form_id)
    return _attachments(db, draft, project_id)


@post(
    f"{FORM}/draft/attachments/{{name:str}}",
    status_code=200,
    tags=["Forms"],
    guards=[requires(MANAGE)],
    request_max_body_size=None,
    summary="Upload a media file of the draft (raw body; chunked is fine)",
)
async def upload_draft_attachment(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    name: PathText,
    db: DB,
    blobs: Blobs,
    caller: Caller,
    settings: Config,
) -> AttachmentOut:
    async with receive_body(request, Path(settings.tmp_dir)) as body:
        media = await anyio.to_thread.run_sync(
            lambda: form_store.set_draft_attachment(
                db,
                blobs,
                project_id,
                xml_form_id,
                name,
                body.path,
                sha256=body.sha256,
                size=body.size,
                actor_id=caller.actor_id,
            )
        )
    return AttachmentOut.of(media)


@delete(
    f"{FORM}/draft/attachments/{{name:str}}",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["Forms"],
    summary="Clear a media file of the draft",
)
def clear_draft_attachment(
    project_id: ProjectId, xml_form_id: PathText, name: PathText, db: DB, caller: Caller
) -> Success:
    form_store.clear_draft_attachment(db, project_id, xml_form_id, name, caller.actor_id)
    return Success()


# ---- published media and versions ----------------------------------------------------------


@get(
    f"{FORM}/attachments",
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=["Forms"],
    summary="Media files of the published version",
)
def list_attachments(
    project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller
) -> list[AttachmentOut]:
    form = form_store.get_form(db, project_id, xml_form_id)
    return _attachments(db, form_store.current_version(db, form), project_id)


@get(
    f"{FORM}/versions",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=["Forms"],
    summary="Published versions, newest first",
)
def list_versions(
    project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller
) -> list[FormOut]:
    form = form_store.get_form(db, project_id, xml_form_id)
    return [FormOut.of(form, v) for v in form_store.list_versions(db, project_id, xml_form_id)]


@get(
    f"{FORM}/versions/{{version_file:str}}",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=["Forms"],
    summary="One published version as JSON, or its XForm (`{version}.xml`) or XLSForm",
)
def get_version(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    version_file: PathText,
    db: DB,
    blobs: Blobs,
    roles: Roles,
) -> FormOut | Response[Any] | Stream | Redirect:
    form = form_store.get_form(db, project_id, xml_form_id)
    versions = {v.version: v for v in form_store.list_versions(db, project_id, xml_form_id)}
    if version_file in versions:
        return FormOut.of(form, versions[version_file])
    stem, _, suffix = version_file.rpartition(".")
    if stem in versions and suffix == "xml":
        return Response(versions[stem].xml, media_type="text/xml")
    if stem in versions and suffix in ("xlsx", "xls"):
        return _xlsform_file(request, db, blobs, versions[stem], xml_form_id)
    raise NotFound()


HANDLERS = [
    create_form,
    list_forms,
    get_form,
    update_form,
    delete_form,
    create_draft,
    get_draft,
    get_draft_xml,
    delete_draft,
    publish_draft,
    list_draft_attachments,
    upload_draft_attachment,
    clear_draft_attachment,
    list_attachments,
    list_versions,
    get_version,
]
