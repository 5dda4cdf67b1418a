"""People: a project's app users for managers (create, revoke, assign forms, their collect and
web-form links), and the web users and their project roles for administrators."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from storage import app_users, projects
from storage import forms as form_store
from storage import roles as role_store
from storage import users as user_store
from storage.errors import AlreadyExists, InvalidInput

from ..auth import MANAGE
from ..deps import DB, Box, Caller, Config, PathParameter, ProjectId, Roles
from ..guards import requires
from ..urls import collect_url, web_form_url
from . import i18n
from .common import FormBody, project_page, render


@get("/p/{project_id:int}/app-users", sync_to_thread=True, guards=[requires(MANAGE)])
def app_users_page(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    db: DB,
    box: Box,
    settings: Config,
    caller: Caller,
    roles: Roles,
) -> Template:
    rows = app_users.list_app_users(db, box, project_id)
    links = {
        row.actor.id: (
            collect_url(settings.public_url, row.token, project_id),
            web_form_url(settings.public_url, row.token),
        )
        for row in rows
        if row.token and row.app_user.revoked_at is None
    }
    forms = form_store.list_forms(db, project_id)
    held = {
        form.xml_form_id: {
            actor.id for actor in role_store.list_form_assignees(db, project_id, form.xml_form_id)
        }
        for form, _ in forms
    }
    return project_page(
        "app_users.html",
        request,
        db,
        caller,
        project_id,
        roles=roles,  # the menu's manager links
        rows=rows,
        links=links,
        forms=forms,
        held=held,
    )


@dataclass
class NewAppUser:
    display_name: str
    # The ticked forms' ids: one ticked box arrives as text, several as a list.
    forms: str | list[str] = field(default_factory=list)


@post(
    "/p/{project_id:int}/app-users", sync_to_thread=True, status_code=303, guards=[requires(MANAGE)]
)
def create_app_user(
    project_id: ProjectId, data: Annotated[NewAppUser, FormBody], db: DB, box: Box, caller: Caller
) -> Redirect:
    """Create an app user and assign it the ticked forms (a phone lists only those)."""
    ticked = [data.forms] if isinstance(data.forms, str) else data.forms
    published = {form.xml_form_id for form, _ in form_store.list_forms(db, project_id)}
    if not set(ticked) <= published:
        raise InvalidInput(i18n.gettext("Only the project's published forms can be assigned."))
    created = app_users.create_app_user(
        db, box, project_id, data.display_name, actor_id=caller.actor_id
    )
    for xml_form_id in dict.fromkeys(ticked):
        role_store.assign_form(
            db, project_id, xml_form_id, created.actor.id, actor_id=caller.actor_id
        )
    return _back_to(project_id, created.actor.id)


@dataclass
class FormAccess:
    xml_form_id: str
    action: str = "assign"


@post(
    "/p/{project_id:int}/app-users/{actor_id:int}/forms",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(MANAGE)],
)
def change_form_access(
    project_id: ProjectId,
    actor_id: Annotated[int, PathParameter()],
    data: Annotated[FormAccess, FormBody],
    db: DB,
    box: Box,
    caller: Caller,
) -> Redirect:
    """Assign a form to an app user, or take it back; repeating either changes nothing."""
    if data.action not in ("assign", "unassign"):
        raise InvalidInput(i18n.gettext("Unknown action."))
    if app_users.get_app_user(db, box, project_id, actor_id).app_user.revoked_at is not None:
        raise InvalidInput(i18n.gettext("A revoked app user's forms cannot be changed."))
    holders = role_store.list_form_assignees(db, project_id, data.xml_form_id)  # 404 if no form
    if data.action == "unassign":
        if any(actor.id == actor_id for actor in holders):
            role_store.unassign_form(
                db, project_id, data.xml_form_id, actor_id, actor_id=caller.actor_id
            )
    else:
        try:
            role_store.assign_form(
                db, project_id, data.xml_form_id, actor_id, actor_id=caller.actor_id
            )
        except AlreadyExists:
            pass  # assigned already (another tab, a double tap)
    return _back_to(project_id, actor_id)


def _back_to(project_id: int, actor_id: int) -> Redirect:
    """The app users page, scrolled to the app user just changed."""
    return Redirect(f"/p/{project_id}/app-users#u{actor_id}", status_code=303)


@post(
    "/p/{project_id:int}/app-users/{actor_id:int}/revoke",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(MANAGE)],
)
def revoke_app_user(
    project_id: ProjectId, actor_id: Annotated[int, PathParameter()], db: DB, caller: Caller
) -> Redirect:
    app_users.revoke_app_user_by_actor(db, project_id, actor_id, actor_id=caller.actor_id)
    return _back_to(project_id, actor_id)


@get("/users", sync_to_thread=True, guards=[requires(admin=True)])
def users_page(request: Request[Any, Any, Any], db: DB, caller: Caller) -> Template:
    return render(
        "users.html",
        request,
        caller=caller,
        users=user_store.list_users(db),
        projects=projects.list_projects(db),
        assignments={
            p.id: role_store.list_assignments(db, p.id) for p in projects.list_projects(db)
        },
        roles=role_store.ROLES,
        role_names=role_names(),
    )


def role_names() -> dict[str, str]:
    """The project roles as people call them, in the interface language."""
    return {
        "manager": i18n.gettext("Manager"),
        "supervisor": i18n.gettext("Supervisor"),
        "formfill": i18n.gettext("Data collector"),
    }


@dataclass
class NewUser:
    email: str
    password: str
    display_name: str = ""


@post("/users", sync_to_thread=True, status_code=303, guards=[requires(admin=True)])
def create_user(data: Annotated[NewUser, FormBody], db: DB, caller: Caller) -> Redirect:
    user_store.create_user(
        db,
        data.email,
        data.password,
        display_name=data.display_name or None,
        actor_id=caller.actor_id,
    )
    return Redirect("/users", status_code=303)


@dataclass
class RoleForm:
    project_id: int
    role: str
    actor_id: int
    action: str = "grant"


@post("/users/roles", sync_to_thread=True, status_code=303, guards=[requires(admin=True)])
def change_role(data: Annotated[RoleForm, FormBody], db: DB, caller: Caller) -> Redirect:
    if data.action == "revoke":
        role_store.unassign_role(
            db, data.project_id, data.role, data.actor_id, actor_id=caller.actor_id
        )
    else:
        role_store.assign_role(
            db, data.project_id, data.role, data.actor_id, actor_id=caller.actor_id
        )
    return Redirect("/users", status_code=303)


HANDLERS = [
    app_users_page,
    create_app_user,
    change_form_access,
    revoke_app_user,
    users_page,
    create_user,
    change_role,
]
