"""Projects: the unit that owns forms, app users and roles."""

from __future__ import annotations

from sqlmodel import select

from . import audit
from .db import Database
from .errors import NotFound
from .models import Project


def create_project(db: Database, name: str, description: str | None = None,
                   actor_id: int | None = None) -> Project:
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
