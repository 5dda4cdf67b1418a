"""OpenRosa for ODK Collect: formList, form XML, manifest, media, submission (HEAD and POST).

Every handler here is registered twice: under `/v1` (web users, Basic or Bearer) and under
`/v1/key/{key}` (app users); URLs in the replies keep the prefix the phone used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from litestar import Request, Response, get, head, post
from litestar.response import Redirect, Stream

from storage import entity_lists, roles, submissions
from storage import forms as form_store
from storage.db import Database
from storage.errors import Forbidden, NotFound
from storage.models import Form
from storage.submissions import IncomingFile, Sender

from . import formats
from .auth import REVIEW, SUBMIT, refuse_key
from .deps import DB, Blobs, Config, PathText, ProjectId, QueryParameter
from .errors import BadRequest, MissingInput
from .files import content_disposition, file_response
from .guards import identity_of, requires, roles_of
from .settings import Settings
from .uploads import receive_multipart

XML_PART = "xml_submission_file"
MAX_XML_PART_BYTES = 10 * 1024 * 1024
OPENROSA = {"openrosa": True}
# Who may call every route here: an app user's key, or a web user, with a role on the project
# that lets them fill its forms; a 401 asks for Basic credentials.
PHONES = requires(SUBMIT, keys=True)


def check_openrosa_version(request: Request[Any, Any, Any]) -> None:
    if request.headers.get("x-openrosa-version", "").strip() != formats.OPENROSA_VERSION:
        raise BadRequest("This OpenRosa endpoint needs the header X-OpenRosa-Version: 1.0.")


def _base(request: Request[Any, Any, Any], settings: Settings, project_id: int) -> str:
    key = request.path_params.get("key")
    prefix = f"/v1/key/{key}" if key else "/v1"
    return f"{settings.public_url}{prefix}/projects/{project_id}"


def _assigned_form(
    request: Request[Any, Any, Any], db: Database, project_id: int, xml_form_id: str
) -> Form:
    """The form, if the caller may download it: an app user only a form assigned to it
    (else 403); a web user, by its project role (checked by the guard)."""
    form = form_store.get_form(db, project_id, xml_form_id)
    roles.require_form_assigned(db, identity_of(request, keys=True), form)
    return form


def _reply(
    body: str | bytes, settings: Settings, status: int = 200, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        body,
        status_code=status,
        media_type=formats.XML_TYPE,
        headers={**formats.openrosa_headers(settings.max_submission_bytes), **(headers or {})},
    )


@get(
    "/projects/{project_id:int}/formList",
    opt=OPENROSA,
    guards=[PHONES],
    before_request=check_openrosa_version,
    sync_to_thread=True,
    summary="OpenRosa form list",
    tags=["OpenRosa"],
)
def form_list(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    db: DB,
    settings: Config,
    form_id: Annotated[str | None, QueryParameter(name="formID")] = None,
) -> Response[Any]:
    if form_id is not None and "\x00" in form_id:  # PostgreSQL refuses text with NUL in it
        raise BadRequest("formID cannot contain a NUL character.")
    base = _base(request, settings, project_id)
    assigned = roles.assigned_form_ids(db, identity_of(request, keys=True))
    items = []
    for form, version in form_store.list_forms(
        db, project_id, for_phones=True, xml_form_id=form_id
    ):
        if assigned is not None and form.id not in assigned:
            continue  # an app user lists the forms assigned to it
        form_url = f"{base}/forms/{quote(form.xml_form_id, safe='')}"
        has_media = bool(form_store.schema_of(version).media)
        items.append(
            formats.FormListItem(
                form_id=form.xml_form_id,
                name=version.title,
                version=version.version,
                md5=version.md5,
                download_url=f"{form_url}.xml",
                manifest_url=f"{form_url}/manifest" if has_media else None,
            )
        )
    return _reply(formats.form_list(items), settings)


@get(
    "/projects/{project_id:int}/forms/{form_file:str}",
    opt=OPENROSA,
    guards=[PHONES],
    sync_to_thread=True,
    summary="Form XML (the XForm) for phones",
    tags=["OpenRosa"],
)
def form_xml(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    form_file: PathText,
    db: DB,
    settings: Config,
) -> Response[Any]:
    if not form_file.endswith(".xml"):
        raise refuse_key()  # the REST form resource is not for app users
    form = _assigned_form(request, db, project_id, form_file[: -len(".xml")])
    version = form_store.current_version(db, form)
    return _reply(version.xml, settings, headers={"ETag": f'"{version.md5}"'})


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/manifest",
    opt=OPENROSA,
    guards=[PHONES],
    before_request=check_openrosa_version,
    sync_to_thread=True,
    summary="OpenRosa manifest of a form's media",
    tags=["OpenRosa"],
)
def manifest(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    settings: Config,
) -> Response[Any]:
    form = _assigned_form(request, db, project_id, xml_form_id)
    version = form_store.current_version(db, form)
    project_url = _base(request, settings, project_id)
    base = f"{project_url}/forms/{quote(xml_form_id, safe='')}"
    items = [
        item
        for media, listed in entity_lists.media_of(db, version, project_id)
        if (item := _manifest_item(media, listed, base, project_url)) is not None
    ]
    return _reply(formats.manifest(items), settings)


def _manifest_item(
    media: form_store.MediaFile,
    listed: entity_lists.ListFile | None,
    base: str,
    project_url: str,
) -> formats.ManifestItem | None:
    """A manifest entry: an uploaded file, or an entity list (Central's hash, type and
    integrity URL); an attachment that is neither is not offered."""
    url = f"{base}/attachments/{quote(media.attachment.name, safe='')}"
    if listed is not None:
        list_url = f"{project_url}/datasets/{quote(listed.dataset.name, safe='')}"
        return formats.ManifestItem(
            media.attachment.name, listed.hash, url, listed.media_type, f"{list_url}/integrity"
        )
    if media.blob is None:
        return None
    return formats.ManifestItem(media.attachment.name, media.blob.md5 or "", url)


def entity_list_response(
    request: Request[Any, Any, Any],
    db: Database,
    listed: entity_lists.ListFile,
    headers: dict[str, str] | None = None,
) -> Response[Any] | Stream:
    """An entity list as its CSV, streamed; its hash is the ETag, so a phone holding the
    current copy gets a 304 (nginx may weaken the ETag on the way: W/ counts too)."""
    etag = f'"{listed.hash}"'
    sent = {**(headers or {}), "ETag": etag}
    if request.headers.get("if-none-match", "") in (etag, f"W/{etag}"):
        return Response(b"", status_code=304, headers=sent)
    return Stream(
        entity_lists.csv_chunks(db.detached(), listed.dataset),
        media_type=entity_lists.CSV_TYPE,
        headers={**sent, "Content-Disposition": content_disposition(listed.name)},
    )


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/attachments/{name:str}",
    guards=[PHONES],
    sync_to_thread=True,
    summary="Download a form media file",
    tags=["OpenRosa"],
)
def form_media(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    name: PathText,
    db: DB,
    blobs: Blobs,
) -> Response[Any] | Stream | Redirect:
    form = _assigned_form(request, db, project_id, xml_form_id)
    version = form_store.current_version(db, form)
    listed = entity_lists.list_file(db, version, project_id, name)
    if listed is not None:
        return entity_list_response(request, db, listed)
    media = form_store.get_media(db, version, name)
    assert media.blob is not None
    return file_response(request, blobs, media.blob, name)


@get(
    "/projects/{project_id:int}/datasets/{name:str}/integrity",
    opt=OPENROSA,
    guards=[PHONES],
    before_request=check_openrosa_version,
    sync_to_thread=True,
    summary="Which of an entity list's entities still exist (for Collect's offline copy)",
    tags=["OpenRosa"],
)
def entity_list_integrity(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    name: PathText,
    db: DB,
    settings: Config,
    ids: Annotated[str | None, QueryParameter(name="id")] = None,
) -> Stream:
    listed = entity_lists.find_list_file(db, project_id, name)
    if listed is None:
        raise NotFound("entity list")
    _may_check_list(request, db, project_id, name)
    wanted = entity_lists.parse_ids(ids)
    batches = entity_lists.integrity_batches(db.detached(), listed.dataset, wanted)
    return Stream(
        _integrity_chunks(batches),
        media_type=formats.XML_TYPE,
        headers=formats.openrosa_headers(settings.max_submission_bytes),
    )


def _integrity_chunks(batches: Iterator[list[tuple[str, bool]]]) -> Iterator[bytes]:
    yield formats.INTEGRITY_HEAD.encode()
    for rows in batches:
        yield formats.integrity_entities(rows).encode()
    yield formats.INTEGRITY_TAIL.encode()


def _may_check_list(
    request: Request[Any, Any, Any], db: Database, project_id: int, list_name: str
) -> None:
    """Managers and supervisors read every list; a data collector or an app user only one
    a form it may fill uses (Central's canReadForOpenRosa)."""
    if roles_of(request) & (REVIEW | {"admin"}):
        return
    linked = entity_lists.linked_form_ids(db, project_id, list_name)
    assigned = roles.assigned_form_ids(db, identity_of(request, keys=True))
    usable = linked if assigned is None else linked & assigned
    if not usable:
        raise Forbidden("No form you may fill uses this entity list.")


@head(
    "/projects/{project_id:int}/submission",
    opt=OPENROSA,
    guards=[PHONES],
    before_request=check_openrosa_version,
    sync_to_thread=True,
    status_code=204,
    summary="OpenRosa submission pre-flight",
    tags=["OpenRosa"],
)
def submission_head(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB, settings: Config
) -> Response[None]:
    return Response(
        None, status_code=204, headers=formats.openrosa_headers(settings.max_submission_bytes)
    )


@post(
    "/projects/{project_id:int}/submission",
    opt=OPENROSA,
    guards=[PHONES],
    before_request=check_openrosa_version,
    status_code=201,
    summary="OpenRosa submission (multipart: xml_submission_file + attachments)",
    tags=["OpenRosa"],
)
async def submission_post(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB, blobs: Blobs, settings: Config
) -> Response[Any]:
    identity = identity_of(request, keys=True)  # found by the guard
    async with receive_multipart(
        request, Path(settings.tmp_dir), {XML_PART: MAX_XML_PART_BYTES}
    ) as parts:
        xml_part = next((p for p in parts if p.name == XML_PART), None)
        if xml_part is None:
            raise MissingInput(f"The request has no {XML_PART} part.")
        xml = await anyio.Path(xml_part.path).read_bytes()
        files = [
            IncomingFile(p.name, p.path, p.size, p.sha256, p.content_type)
            for p in parts
            if p is not xml_part
        ]
        sender = Sender(
            actor_id=identity.actor_id,
            device_id=request.query_params.get("deviceID"),
            user_agent=request.headers.get("user-agent", "")[:512] or None,
        )
        app_user = identity if identity.kind == "app_user" else None
        # The database itself, not the request's unit: ingest commits in its worker thread
        # (then checks its blobs against `jebol gc`), so the write lock is held for the
        # transaction alone, not until the response is on its way (one commit, as before).
        await anyio.to_thread.run_sync(
            lambda: submissions.ingest(
                db.detached(), blobs, project_id, xml, files, sender=sender, app_user=app_user
            )
        )
    return _reply(
        formats.openrosa_message("full submission upload was successful!", items=0),
        settings,
        status=201,
    )


# Shared by /v1 (web users) and /v1/key/{key} (app users); on /v1 the form XML is served by
# the REST form resource (server/api/forms.py), which also answers JSON for the same path.
HANDLERS = [
    form_list,
    manifest,
    form_media,
    entity_list_integrity,
    submission_head,
    submission_post,
]
KEY_ONLY = [form_xml]
