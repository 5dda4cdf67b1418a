"""/v1 forms: create from an XLSForm or XForm upload (Central's shapes)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from litestar import Request, post

from forms.compile import MAX_XLSFORM_BYTES
from storage import forms as form_store

from ..auth import require_identity, require_project
from ..deps import DB, Blobs, ProjectId, QueryParameter
from ..errors import ApiError
from .schemas import FormOut

MANAGE = frozenset({"manager"})
XML_TYPES = ("application/xml", "text/xml")


@post("/projects/{project_id:int}/forms", status_code=200,
      request_max_body_size=MAX_XLSFORM_BYTES, tags=["Forms"],
      summary="Create a form from an XLSForm (.xlsx/.xls) or an XForm (.xml) body")
async def create_form(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB, blobs: Blobs,
    ignore_warnings: Annotated[bool, QueryParameter(name="ignoreWarnings")] = False,
    publish: Annotated[bool, QueryParameter(name="publish")] = False,
) -> FormOut:
    identity = await anyio.to_thread.run_sync(require_identity, request, db)
    await anyio.to_thread.run_sync(require_project, db, identity, project_id, MANAGE)
    body = await request.body()
    if not body:
        raise ApiError(400, 400.2, "The request body is empty: send the XLSForm or XForm file.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fallback = request.headers.get("x-xlsform-formid-fallback")

    def store() -> form_store.Published:
        if content_type in XML_TYPES:
            return form_store.publish_xform(db, blobs, project_id, body, publish=publish,
                                            actor_id=identity.actor_id)
        return form_store.publish_xlsform(db, blobs, project_id, body, _filename(fallback),
                                          form_id_fallback=fallback,
                                          ignore_warnings=ignore_warnings, publish=publish,
                                          actor_id=identity.actor_id)

    result = await anyio.to_thread.run_sync(store)
    return FormOut.of(result.form, result.version)


def _filename(fallback: str | None) -> str:
    return f"{fallback or 'form'}.xlsx"


HANDLERS = [create_form]
