"""The projects a caller sees, a project's front page (form statistics, OPD coverage), and its
forms for managers: upload an XLSForm as a draft, publish or discard it, open or close a form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.response import Redirect, Template

from forms.errors import FormsError
from forms.instruments import SIPERA
from storage import browse, projects
from storage import forms as form_store
from storage.errors import InvalidInput, NotFound, StorageError

from ..auth import MANAGE, SUBMIT
from ..deps import DB, Blobs, Caller, Config, PathText, ProjectId, Roles
from ..guards import requires
from . import i18n
from .common import FormBody, project_page, render


@get("/", sync_to_thread=True, guards=[requires()])
def home(request: Request[Any, Any, Any], db: DB, caller: Caller) -> Template | Redirect:
    visible = projects.list_visible_projects(db, caller.actor_id, caller.is_admin)
    if len(visible) == 1:
        return Redirect(f"/p/{visible[0].id}")
    return render("projects.html", request, caller=caller, projects=visible)


@get("/p/{project_id:int}", sync_to_thread=True, guards=[requires(SUBMIT)])
def project_home(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    db: DB,
    caller: Caller,
    roles: Roles,
    settings: Config,
) -> Template:
    today = settings.clock.today()
    project = projects.get_project(db, project_id)
    stats = browse.form_stats(db, project_id)
    coverage = browse.opd_coverage(
        db, project_id, i18n.label, today, visit=SIPERA.visit, other=SIPERA.opd_other
    )
    return render(
        "project.html",
        request,
        caller=caller,
        project=project,
        stats=stats,
        coverage=coverage,
        roles=roles,
        today=today.isoformat(),
        visit_form=SIPERA.visit.form_id,
    )


@get("/p/{project_id:int}/forms", sync_to_thread=True, guards=[requires(MANAGE)])
def forms_admin(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB, caller: Caller
) -> Template:
    listed = form_store.list_forms(db, project_id, include_drafts=True)
    drafts = {}
    for form, _ in listed:
        try:
            drafts[form.id] = form_store.get_draft(db, project_id, form.xml_form_id)[1]
        except NotFound:
            pass
    return project_page(
        "forms_admin.html", request, db, caller, project_id, forms=listed, drafts=drafts
    )


@post(
    "/p/{project_id:int}/forms/upload",
    guards=[requires(MANAGE)],
    request_max_body_size=20 * 1024 * 1024,
)
async def upload_form(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB, blobs: Blobs, caller: Caller
) -> Template | Redirect:
    import anyio

    form_data = await request.form()
    upload = form_data.get("file")
    if upload is None or not hasattr(upload, "read"):
        raise InvalidInput(i18n.gettext("Choose an XLSForm file to upload."))
    data = await upload.read()
    name = upload.filename or "form.xlsx"

    def store() -> Any:
        if name.lower().endswith(".xml"):
            return form_store.publish_xform(
                db, blobs, project_id, data, publish=False, actor_id=caller.actor_id
            )
        return form_store.publish_xlsform(
            db, blobs, project_id, data, name, publish=False, actor_id=caller.actor_id
        )

    try:
        result = await anyio.to_thread.run_sync(store)
    except (FormsError, StorageError) as error:
        listed = await anyio.to_thread.run_sync(
            lambda: form_store.list_forms(db, project_id, include_drafts=True)
        )
        project = await anyio.to_thread.run_sync(projects.get_project, db, project_id)
        return render(
            "forms_admin.html",
            request,
            status_code=400,
            caller=caller,
            project=project,
            forms=listed,
            drafts={},
            upload_error=str(error),
            upload_name=name,
        )
    return Redirect(
        f"/p/{project_id}/forms?draft={quote(result.form.xml_form_id, safe='')}", status_code=303
    )


@dataclass
class PublishForm:
    version: str = ""


@post(
    "/p/{project_id:int}/forms/{xml_form_id:str}/publish",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(MANAGE)],
)
def publish_form(
    project_id: ProjectId,
    xml_form_id: PathText,
    data: Annotated[PublishForm, FormBody],
    db: DB,
    caller: Caller,
) -> Redirect:
    form_store.publish_draft(
        db, project_id, xml_form_id, data.version.strip() or None, caller.actor_id
    )
    return Redirect(f"/p/{project_id}/forms", status_code=303)


@post(
    "/p/{project_id:int}/forms/{xml_form_id:str}/discard",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(MANAGE)],
)
def discard_draft(project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller) -> Redirect:
    form_store.delete_draft(db, project_id, xml_form_id, caller.actor_id)
    return Redirect(f"/p/{project_id}/forms", status_code=303)


@dataclass
class StateForm:
    state: str


@post(
    "/p/{project_id:int}/forms/{xml_form_id:str}/state",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(MANAGE)],
)
def form_state(
    project_id: ProjectId,
    xml_form_id: PathText,
    data: Annotated[StateForm, FormBody],
    db: DB,
    caller: Caller,
) -> Redirect:
    form_store.set_state(db, project_id, xml_form_id, data.state, caller.actor_id)
    return Redirect(f"/p/{project_id}/forms", status_code=303)


HANDLERS = [home, project_home, forms_admin, upload_form, publish_form, discard_draft, form_state]
