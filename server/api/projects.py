"""/v1/projects: list, create (admins), get, update (managers)."""

from __future__ import annotations

from datetime import datetime

from litestar import get, patch, post

from storage import projects

from ..auth import MANAGE, SUBMIT, require_admin
from ..deps import DB, Caller, JSONBody, ProjectId
from ..guards import requires
from .schemas import Wire


class ProjectOut(Wire):
    id: int
    name: str
    description: str | None
    archived: bool
    created_at: datetime
    updated_at: datetime | None
    key_id: int | None = None

    @classmethod
    def of(cls, project: projects.Project) -> ProjectOut:
        return cls(
            id=project.id,
            name=project.name,
            description=project.description,
            archived=project.archived,
            created_at=project.created_at,
            updated_at=project.updated_at,
        )


class ProjectIn(Wire):
    name: str
    description: str | None = None


class ProjectPatch(Wire):
    name: str | None = None
    description: str | None = None
    archived: bool | None = None


@get(
    "/projects",
    guards=[requires()],
    sync_to_thread=True,
    tags=["Projects"],
    summary="Projects the caller can see",
)
def list_projects(db: DB, caller: Caller) -> list[ProjectOut]:
    return [
        ProjectOut.of(p)
        for p in projects.list_visible_projects(db, caller.actor_id, caller.is_admin)
    ]


@post(
    "/projects",
    status_code=200,
    sync_to_thread=True,
    tags=["Projects"],
    guards=[requires(admin=True)],
    summary="Create a project (admins)",
)
def create_project(data: JSONBody[ProjectIn], db: DB, caller: Caller) -> ProjectOut:
    require_admin(caller)
    return ProjectOut.of(
        projects.create_project(db, data.name, data.description, actor_id=caller.actor_id)
    )


@get(
    "/projects/{project_id:int}",
    guards=[requires(SUBMIT)],
    sync_to_thread=True,
    tags=["Projects"],
    summary="One project",
)
def get_project(project_id: ProjectId, db: DB, caller: Caller) -> ProjectOut:
    return ProjectOut.of(projects.get_project(db, project_id))


@patch(
    "/projects/{project_id:int}",
    sync_to_thread=True,
    tags=["Projects"],
    guards=[requires(MANAGE)],
    summary="Rename, describe or archive a project (managers)",
)
def update_project(
    project_id: ProjectId, data: JSONBody[ProjectPatch], db: DB, caller: Caller
) -> ProjectOut:
    return ProjectOut.of(
        projects.update_project(
            db,
            project_id,
            name=data.name,
            description=data.description,
            archived=data.archived,
            actor_id=caller.actor_id,
        )
    )


HANDLERS = [list_projects, create_project, get_project, update_project]
