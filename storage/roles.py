"""Roles (Central's catalogue and ours), project roles, and app users' form assignments.

`admin` is server-wide (User.is_admin); the project roles are held per project as
role_assignment rows, and so are form assignments (role "form:{form id}": an app user holds
Central's `app-user` role on that form). Form assignments are enforced: an app user lists,
downloads and submits to only the forms assigned to it (`require_form_assigned`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session as Tx
from sqlmodel import col, select

from . import audit
from .app_users import app_user_row
from .db import Database
from .errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from .forms import locate_form
from .models import Actor, Form, Project, RoleAssignment
from .users import Identity, user_view

# The project roles this server enforces and a manager assigns: Central's manager and data
# collector (formfill), and our supervisor.
ROLES = ("manager", "supervisor", "formfill")
APP_USER = "app-user"  # Central's role of an app user on each form assigned to it


@dataclass(frozen=True)
class Role:
    """A role of Central's catalogue (its id, name, system name and verbs), or one of ours."""

    id: int
    name: str
    system: str
    verbs: tuple[str, ...]


_ADMIN_VERBS = (
    "config.read", "field_key.create", "field_key.delete", "field_key.list", "form.create",
    "form.delete", "form.list", "form.read", "form.update", "project.create", "project.delete",
    "project.read", "project.update", "session.end", "submission.create", "submission.read",
    "submission.list", "user.create", "user.list", "user.password.invalidate", "user.read",
    "user.update", "role.create", "role.update", "role.delete", "assignment.list",
    "assignment.create", "assignment.delete", "user.delete", "audit.read",
    "public_link.create", "public_link.list", "public_link.read", "public_link.update",
    "public_link.delete", "backup.run", "config.set", "analytics.read", "form.restore",
    "dataset.list", "entity.list", "dataset.read", "entity.read", "entity.create",
    "entity.update", "dataset.update", "entity.delete", "submission.update", "dataset.create",
    "submission.delete", "submission.restore", "entity.restore", "dataset.delete",
    "actor_property.list", "actor_property.update", "field_key.update",
)  # fmt: skip
_MANAGER_VERBS = (
    "project.read", "project.update", "project.delete", "form.create", "form.delete",
    "form.list", "form.read", "form.update", "submission.create", "submission.read",
    "submission.list", "field_key.create", "field_key.delete", "field_key.list",
    "assignment.list", "assignment.create", "assignment.delete", "public_link.create",
    "public_link.list", "public_link.read", "public_link.update", "public_link.delete",
    "session.end", "form.restore", "dataset.list", "entity.list", "dataset.read",
    "entity.read", "entity.create", "entity.update", "dataset.update", "entity.delete",
    "submission.update", "dataset.create", "submission.delete", "submission.restore",
    "entity.restore", "dataset.delete", "actor_property.list", "actor_property.update",
    "field_key.update",
)  # fmt: skip
_VIEWER_VERBS = (
    "project.read", "form.list", "form.read", "submission.read", "submission.list",
    "dataset.list", "entity.list", "dataset.read", "entity.read", "actor_property.list",
)  # fmt: skip
_SUPERVISOR_VERBS = (
    "project.read", "form.list", "form.read", "open_form.list", "open_form.read",
    "submission.create", "submission.read", "submission.list", "submission.update",
    "dataset.list", "entity.list", "dataset.read", "entity.read",
)  # fmt: skip

# ODK Central's roles (v2026.2: ids, names, system names and verbs as its database holds them;
# Central removed its id 4), then ours. Enforced here: admin (server-wide); manager, formfill
# and supervisor (per project); app-user (per form, for app users). The others are listed for
# clients that look them up, and assigning one is refused.
CATALOGUE = (
    Role(1, "Administrator", "admin", _ADMIN_VERBS),
    Role(2, "App User", APP_USER, ("open_form.read", "submission.create")),
    Role(3, "Password Reset Token", "pwreset", ("user.password.reset",)),
    Role(5, "Project Manager", "manager", _MANAGER_VERBS),
    Role(6, "Project Viewer", "viewer", _VIEWER_VERBS),
    Role(7, "Form Viewer (system internal)", "formview", ("open_form.read",)),
    Role(
        8,
        "Data Collector",
        "formfill",
        ("project.read", "open_form.list", "open_form.read", "submission.create"),
    ),
    Role(9, "Public Link", "pub-link", ("open_form.read", "submission.create")),
    Role(10, "Supervisor", "supervisor", _SUPERVISOR_VERBS),
)
_BY_SYSTEM = {role.system: role for role in CATALOGUE}
_BY_ID = {role.id: role for role in CATALOGUE}


def list_roles() -> list[Role]:
    return list(CATALOGUE)


def role_id(system: str) -> int:
    return _BY_SYSTEM[system].id


def get_role(ref: str) -> Role:
    """A role by its id ("2") or its system name ("app-user"), as Central's routes take it;
    else NotFound."""
    ref = ref.strip().lower()
    number = int(ref) if ref.isascii() and ref.isdigit() and len(ref) < 6 else None
    role = _BY_ID.get(number) if number is not None else _BY_SYSTEM.get(ref)
    if role is None:
        raise NotFound("role")
    return role


def role_named(ref: str) -> str:
    """A role's system name from its id ("5") or its system name ("manager"); else NotFound."""
    return get_role(ref).system


def roles_in_project(db: Database, identity: Identity, project_id: int) -> frozenset[str]:
    if identity.is_admin:
        return frozenset({"admin", *ROLES})
    if identity.kind == "app_user":
        # An app user fills forms of its one project: which ones, its form assignments say.
        return frozenset({"formfill"}) if identity.project_id == project_id else frozenset()
    with db.read() as tx:
        return frozenset(
            tx.exec(
                select(RoleAssignment.role).where(
                    RoleAssignment.actor_id == identity.actor_id,
                    RoleAssignment.project_id == project_id,
                )
            ).all()
        )


def list_assignments(db: Database, project_id: int) -> list[tuple[int, str]]:
    """(actor id, role) of every web user holding a role in the project (app users hold
    none: their roles are on forms)."""
    with db.read() as tx:
        rows = tx.exec(
            select(RoleAssignment.actor_id, RoleAssignment.role)
            .join(Actor, Actor.id == RoleAssignment.actor_id)
            .where(
                RoleAssignment.project_id == project_id,
                col(RoleAssignment.role).in_(ROLES),
                Actor.kind == "user",
                col(Actor.deleted_at).is_(None),
            )
            .order_by(RoleAssignment.actor_id, RoleAssignment.role)
        ).all()
    return [(actor, role) for actor, role in rows]


def assign_role(
    db: Database, project_id: int, role: str, user_actor_id: int, *, actor_id: int | None = None
) -> None:
    """Give a web user a role in the project (idempotent). App users' roles are on forms."""
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
    if role == APP_USER:
        raise InvalidInput(
            "app-user is the role of an app user on a form: assign forms under "
            "/v1/projects/{id}/forms/{xmlFormId}/assignments/app-user/{actorId}."
        )
    if role in _BY_SYSTEM and role not in ROLES:
        raise InvalidInput(
            f"The role {role} ({_BY_SYSTEM[role].name}) is listed for Central's clients but "
            f"not enforced by this server; project roles are {_assignable()}."
        )
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}; project roles are {_assignable()}.")


def _assignable() -> str:
    return ", ".join(f"{system} ({role_id(system)})" for system in ROLES)


def _assignment(tx: Tx, project_id: int, role: str, actor_id: int) -> RoleAssignment | None:
    return tx.exec(
        select(RoleAssignment).where(
            RoleAssignment.project_id == project_id,
            RoleAssignment.role == role,
            RoleAssignment.actor_id == actor_id,
        )
    ).first()


def _add_assignment(
    tx: Tx,
    project_id: int,
    role: str,
    holder_id: int,
    actor_id: int | None,
    entry: tuple[str, str, int | None, dict[str, object]],
) -> bool:
    """Add the assignment unless it exists (False then), with its audit entry (action, kind,
    subject, details); a concurrent add of the same one raises IntegrityError for the caller."""
    if _assignment(tx, project_id, role, holder_id) is not None:
        return False
    tx.add(RoleAssignment(actor_id=holder_id, project_id=project_id, role=role))
    tx.flush()
    audit.record(tx, actor_id, *entry)
    return True


# ---- form assignments: app users ---------------------------------------------------------------
# Central's `app-user` role on one form, recorded as a role_assignment row whose role is
# "form:{form id}" (the form's row, so a form deleted and created again is not assigned).

FORM_ACCESS = "form:"


def _form_role(form: Form) -> str:
    return f"{FORM_ACCESS}{form.id}"


def assign_form(
    db: Database,
    project_id: int,
    xml_form_id: str,
    app_actor_id: int,
    *,
    actor_id: int | None = None,
) -> None:
    """Assign a form to an app user of the same project; AlreadyExists if it is (409.3)."""
    app_user = role_id(APP_USER)
    taken = AlreadyExists(
        "assignments", {"actorId": app_actor_id, "roleId": app_user, "acteeId": xml_form_id}
    )
    try:
        with db.transaction() as tx:
            form = locate_form(tx, project_id, xml_form_id)
            _app_user_of(tx, project_id, app_actor_id)
            entry = ("field_key.assignment.create", "form", form.id)
            details: dict[str, object] = {"actorId": app_actor_id, "roleId": app_user}
            if not _add_assignment(
                tx, project_id, _form_role(form), app_actor_id, actor_id, (*entry, details)
            ):
                raise taken
    except IntegrityError:
        raise taken from None  # assigned by a concurrent request


def unassign_form(
    db: Database,
    project_id: int,
    xml_form_id: str,
    app_actor_id: int,
    *,
    actor_id: int | None = None,
) -> None:
    """Take a form from an app user (NotFound if it was not assigned); what it submitted stays."""
    with db.transaction() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        row = _assignment(tx, project_id, _form_role(form), app_actor_id)
        if row is None:
            raise NotFound("assignment")
        tx.delete(row)
        audit.record(
            tx,
            actor_id,
            "field_key.assignment.delete",
            "form",
            form.id,
            {"actorId": app_actor_id, "roleId": role_id(APP_USER)},
        )


def list_form_assignees(db: Database, project_id: int, xml_form_id: str) -> list[Actor]:
    """The app users (actors) assigned to the form, by actor id."""
    with db.read() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        return list(
            tx.exec(
                select(Actor)
                .join(RoleAssignment, Actor.id == RoleAssignment.actor_id)
                .where(
                    RoleAssignment.project_id == project_id,
                    RoleAssignment.role == _form_role(form),
                    col(Actor.deleted_at).is_(None),
                )
                .order_by(RoleAssignment.actor_id)
            ).all()
        )


def assigned_form_ids(db: Database, identity: Identity) -> frozenset[int] | None:
    """The forms (row ids) an app user is assigned; None for a web user (its project role
    decides, not assignments)."""
    if identity.kind != "app_user":
        return None
    with db.read() as tx:
        return _assigned_in(tx, identity)


def _assigned_in(tx: Tx, identity: Identity) -> frozenset[int]:
    held = tx.exec(
        select(RoleAssignment.role).where(
            RoleAssignment.actor_id == identity.actor_id,
            col(RoleAssignment.role).startswith(FORM_ACCESS),
        )
    ).all()
    return frozenset(int(role[len(FORM_ACCESS) :]) for role in held)


def require_form_assigned(db: Database, identity: Identity, form: Form) -> None:
    """Forbidden unless the caller is a web user or an app user the form is assigned to."""
    if identity.kind != "app_user":
        return
    with db.read() as tx:
        require_assigned_in(tx, identity, form)


def require_assigned_in(tx: Tx, identity: Identity, form: Form) -> None:
    """`require_form_assigned` inside a read or transaction the caller holds."""
    if identity.kind == "app_user" and form.id not in _assigned_in(tx, identity):
        raise Forbidden(
            f"The form {form.xml_form_id!r} is not assigned to this app user; "
            "a project manager can assign it."
        )


def _app_user_of(tx: Tx, project_id: int, actor_id: int) -> None:
    """The actor is an app user of the project: NotFound for none, InvalidInput for a web user
    (forms are assigned to app users only)."""
    try:
        app_user_row(tx, project_id, actor_id)
    except NotFound:
        actor = tx.get(Actor, actor_id)
        if actor is not None and actor.kind == "user" and actor.deleted_at is None:
            raise InvalidInput(
                "Forms are assigned to app users; a web user's project role decides "
                "which forms it fills."
            ) from None
        raise
