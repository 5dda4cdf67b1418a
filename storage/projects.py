"""Projects: the unit that owns forms, app users and roles."""

from __future__ import annotations

from sqlmodel import select

from . import audit
from .db import Database
from .errors import InvalidInput, NotFound
from .models import Project, RoleAssignment, utcnow


def create_project(
    db: Database, name: str, description: str | None = None, actor_id: int | None = None
) -> Project:
    with db.transaction() as tx:
        project = Project(name=name.strip(), description=description)
        tx.add(project)
        tx.flush()
        audit.record(tx, actor_id, "project.create", "project", project.id, {"name": name})
        return project


def get_project(db: Database, project_id: int) -> Project:
    with db.read() as tx:
        project = tx.get(Project, project_id)
        if project is None:
            raise NotFound("project")
        return project


def find_project_by_name(db: Database, name: str) -> Project | None:
    with db.read() as tx:
        return tx.exec(select(Project).where(Project.name == name).order_by(Project.id)).first()


def list_projects(db: Database) -> list[Project]:
    with db.read() as tx:
        return list(tx.exec(select(Project).order_by(Project.id)))


def list_visible_projects(db: Database, actor_id: int, is_admin: bool) -> list[Project]:
    """Admins see every project; others the projects where they hold a role."""
    query = select(Project).order_by(Project.id)
    if not is_admin:
        query = query.where(
            Project.id.in_(
                select(RoleAssignment.project_id).where(RoleAssignment.actor_id == actor_id)
            )
        )
    with db.read() as tx:
        return list(tx.exec(query))


def update_project(
    db: Database,
    project_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
    archived: bool | None = None,
    actor_id: int | None = None,
) -> Project:
    with db.transaction() as tx:
        project = tx.get(Project, project_id)
        if project is None:
            raise NotFound("project")
        changes = {}
        if name is not None:
            if not name.strip():
                raise InvalidInput("A project needs a name.")
            project.name = changes["name"] = name.strip()
        if description is not None:
            project.description = changes["description"] = description
        if archived is not None:
            project.archived = changes["archived"] = archived
        project.updated_at = utcnow()
        audit.record(tx, actor_id, "project.update", "project", project.id, changes)
        return project


def project_exists(db: Database, project_id: int) -> bool:
    with db.read() as tx:
        return tx.get(Project, project_id) is not None
