"""Project roles (who may do what in a project) and app users' form access.

`admin` is server-wide (User.is_admin); the project roles are held per project as
role_assignment rows, and so are form assignments (role "form:{form id}").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session as Tx
from sqlmodel import col, select

from . import audit
from .app_users import app_user_row
from .db import Database
from .errors import InvalidInput, NotFound
from .forms import locate_form
from .models import Actor, Project, RoleAssignment
from .users import Identity, user_view

ROLES = ("manager", "supervisor", "officer")


def grant_role(
    db: Database, actor_id: int, project_id: int, role: str, by_actor_id: int | None = None
) -> None:
    """`assign_role` with the arguments in the order older callers (tests) give them: the same
    checks and the same one path."""
    assign_role(db, project_id, role, actor_id, actor_id=by_actor_id)


def roles_in_project(db: Database, identity: Identity, project_id: int) -> frozenset[str]:
    if identity.is_admin:
        return frozenset({"admin", *ROLES})
    if identity.kind == "app_user":
        return frozenset({"officer"}) if identity.project_id == project_id else frozenset()
    with db.read() as tx:
        return frozenset(
            tx.exec(
                select(RoleAssignment.role).where(
                    RoleAssignment.actor_id == identity.actor_id,
                    RoleAssignment.project_id == project_id,
                )
            ).all()
        )


# The roles the API names, with ids that never change (DESIGN §7). `admin` is server-wide
# (User.is_admin); the others are held per project (role_assignment rows).
SYSTEM_ROLES = ("admin", *ROLES)  # ids 1..4 in this order
ROLE_TITLES = {
    "admin": "Administrator",
    "manager": "Project Manager",
    "supervisor": "Supervisor",
    "officer": "Officer",
}


@dataclass(frozen=True)
class Role:
    id: int
    name: str
    system: str


def list_roles() -> list[Role]:
    return [Role(role_id(system), ROLE_TITLES[system], system) for system in SYSTEM_ROLES]


def role_id(system: str) -> int:
    return SYSTEM_ROLES.index(system) + 1


def role_named(ref: str) -> str:
    """A role's system name from its id ("2") or its system name ("manager"); else NotFound."""
    ref = ref.strip().lower()
    if ref.isascii() and ref.isdigit() and 1 <= int(ref) <= len(SYSTEM_ROLES):
        return SYSTEM_ROLES[int(ref) - 1]
    if ref in SYSTEM_ROLES:
        return ref
    raise NotFound("role")


def list_assignments(db: Database, project_id: int) -> list[tuple[int, str]]:
    """(actor id, role) of everyone holding a role in the project, app users included."""
    with db.read() as tx:
        rows = tx.exec(
            select(RoleAssignment.actor_id, RoleAssignment.role)
            .join(Actor, Actor.id == RoleAssignment.actor_id)
            .where(
                RoleAssignment.project_id == project_id,
                col(RoleAssignment.role).in_(ROLES),
                col(Actor.deleted_at).is_(None),
            )
            .order_by(RoleAssignment.actor_id, RoleAssignment.role)
        ).all()
    return [(actor, role) for actor, role in rows]


def assign_role(
    db: Database, project_id: int, role: str, user_actor_id: int, *, actor_id: int | None = None
) -> None:
    """Give a web user a role in the project (idempotent). App users' roles are fixed."""
    _check_project_role(role)
    try:
        with db.transaction() as tx:
            if tx.get(Project, project_id) is None:
                raise NotFound("project")
            user_view(tx, user_actor_id)
            _add_assignment(
                tx,
                project_id,
                role,
                user_actor_id,
                actor_id,
                (
                    "user.assignment.create",
                    "actor",
                    user_actor_id,
                    {"projectId": project_id, "role": role},
                ),
            )
    except IntegrityError:
        pass  # granted by a concurrent request


def unassign_role(
    db: Database, project_id: int, role: str, user_actor_id: int, *, actor_id: int | None = None
) -> None:
    _check_project_role(role)
    with db.transaction() as tx:
        user_view(tx, user_actor_id)
        row = _assignment(tx, project_id, role, user_actor_id)
        if row is None:
            raise NotFound("assignment")
        tx.delete(row)
        audit.record(
            tx,
            actor_id,
            "user.assignment.delete",
            "actor",
            user_actor_id,
            {"projectId": project_id, "role": role},
        )


def _check_project_role(role: str) -> None:
    if role == "admin":
        raise InvalidInput("admin is a server-wide role: use /v1/assignments/admin/{actorId}.")
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")


def _assignment(tx: Tx, project_id: int, role: str, actor_id: int) -> RoleAssignment | None:
    return tx.exec(
        select(RoleAssignment).where(
            RoleAssignment.project_id == project_id,
            RoleAssignment.role == role,
            RoleAssignment.actor_id == actor_id,
        )
    ).first()


# ---- form access for app users ---------------------------------------------------------------
# Central's form assignments (`app-user` role on one form). Recorded as a role_assignment row
# whose role is "form:{form id}" (no table of their own yet). NOT enforced yet: every app user
# of a project lists and fills all of its open forms; these rows say who *should* see which
# form, for formList filtering to come.

FORM_ACCESS = "form:"


def grant_form_access(
    db: Database,
    project_id: int,
    xml_form_id: str,
    app_actor_id: int,
    *,
    actor_id: int | None = None,
) -> None:
    """Assign a form to an app user of the same project (idempotent)."""
    try:
        with db.transaction() as tx:
            form = locate_form(tx, project_id, xml_form_id)
            app_user_row(tx, project_id, app_actor_id)
            _add_assignment(
                tx,
                project_id,
                f"{FORM_ACCESS}{form.id}",
                app_actor_id,
                actor_id,
                (
                    "form.assignment.create",
                    "form",
                    form.id,
                    {"actorId": app_actor_id, "role": "officer"},
                ),
            )
    except IntegrityError:
        pass  # assigned by a concurrent request


def _add_assignment(
    tx: Tx,
    project_id: int,
    role: str,
    holder_id: int,
    actor_id: int | None,
    entry: tuple[str, str, int | None, dict[str, object]],
) -> None:
    """Add the assignment unless it exists, with its audit entry (action, kind, subject,
    details); a concurrent add of the same one raises IntegrityError for the caller."""
    if _assignment(tx, project_id, role, holder_id) is not None:
        return
    tx.add(RoleAssignment(actor_id=holder_id, project_id=project_id, role=role))
    tx.flush()
    audit.record(tx, actor_id, *entry)


def revoke_form_access(
    db: Database,
    project_id: int,
    xml_form_id: str,
    app_actor_id: int,
    *,
    actor_id: int | None = None,
) -> None:
    with db.transaction() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        row = _assignment(tx, project_id, f"{FORM_ACCESS}{form.id}", app_actor_id)
        if row is None:
            raise NotFound("assignment")
        tx.delete(row)
        audit.record(
            tx,
            actor_id,
            "form.assignment.delete",
            "form",
            form.id,
            {"actorId": app_actor_id, "role": "officer"},
        )


def list_form_access(db: Database, project_id: int, xml_form_id: str) -> list[Actor]:
    """The app users (actors) assigned to the form."""
    with db.read() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        return list(
            tx.exec(
                select(Actor)
                .join(RoleAssignment, Actor.id == RoleAssignment.actor_id)
                .where(
                    RoleAssignment.project_id == project_id,
                    RoleAssignment.role == f"{FORM_ACCESS}{form.id}",
                    col(Actor.deleted_at).is_(None),
                )
                .order_by(RoleAssignment.actor_id)
            ).all()
        )
