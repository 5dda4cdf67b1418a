"""People: a project's app users for managers (create, revoke, their collect and web-form links),
and the web users and their project roles for administrators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from storage import app_users, projects
from storage import roles as role_store
from storage import users as user_store

from ..auth import MANAGE
from ..deps import DB, Box, Caller, Config, PathParameter, ProjectId
from ..guards import requires
from ..urls import collect_url, web_form_url
from .common import FormBody, project_page, render


@get("/p/{project_id:int}/app-users", sync_to_thread=True, guards=[requires(MANAGE)])
def app_users_page(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    db: DB,
    box: Box,
    settings: Config,
    caller: Caller,
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
    return project_page("app_users.html", request, db, caller, project_id, rows=rows, links=links)


@dataclass
class NameForm:
    display_name: str


@post(
    "/p/{project_id:int}/app-users", sync_to_thread=True, status_code=303, guards=[requires(MANAGE)]
)
def create_app_user(
    project_id: ProjectId, data: Annotated[NameForm, FormBody], db: DB, box: Box, caller: Caller
) -> Redirect:
    app_users.create_app_user(db, box, project_id, data.display_name, actor_id=caller.actor_id)
    return Redirect(f"/p/{project_id}/app-users", status_code=303)


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
    return Redirect(f"/p/{project_id}/app-users", status_code=303)


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
    )


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
    revoke_app_user,
    users_page,
    create_user,
    change_role,
]
