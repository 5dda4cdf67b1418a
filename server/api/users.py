"""/v1/users, /v1/roles and role assignments (Central's shapes; ids are actor ids).

Admins manage users; a user may read and update itself and change its own password.
Project roles are granted by the project's managers (or admins); `admin` is server-wide and
only admins grant it, under /v1/assignments/admin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import delete, get, patch, post, put
from litestar.params import JSONBody, PathParameter

from storage import roles, users
from storage.errors import InvalidInput

from ..auth import MANAGE, require_admin
from ..deps import DB, Caller, PathText, ProjectId
from ..errors import forbidden, unauthorized
from ..guards import PUBLIC, requires
from .schemas import Success, Wire

ActorId = Annotated[int, PathParameter()]


class UserOut(Wire):
    id: int
    display_name: str
    email: str
    created_at: datetime
    type: Literal["user"] = "user"
    updated_at: datetime | None = None
    deleted_at: datetime | None = None

    @classmethod
    def of(cls, view: users.UserView) -> UserOut:
        return cls(
            id=view.actor.id,
            display_name=view.actor.display_name,
            email=view.user.email,
            created_at=view.actor.created_at,
            deleted_at=view.actor.deleted_at,
        )


class UserIn(Wire):
    email: str
    password: str | None = None
    display_name: str | None = None


class UserPatch(Wire):
    display_name: str | None = None
    email: str | None = None


class PasswordChange(Wire):
    old: str
    new: str


class RoleOut(Wire):
    """Central's Role frame: six keys, `verbs` always a list. Central's install leaves
    createdAt null on several roles and updatedAt on all; roles here are fixed, so both are
    null."""

    id: int
    name: str
    system: str
    verbs: list[str]
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, role: roles.Role) -> RoleOut:
        return cls(id=role.id, name=role.name, system=role.system, verbs=list(role.verbs))


class AssignmentOut(Wire):
    actor_id: int
    role_id: int


# ---- users ------------------------------------------------------------------------------------


@get(
    "/users/current",
    guards=[requires()],
    sync_to_thread=True,
    tags=["Users"],
    summary="The logged-in user",
)
def current_user(db: DB, caller: Caller) -> UserOut:
    if caller.kind != "user":
        raise forbidden()
    return UserOut.of(users.get_user(db, caller.actor_id))


@get(
    "/users",
    guards=[requires(admin=True)],
    sync_to_thread=True,
    tags=["Users"],
    summary="Every user (admins)",
)
def list_users(db: DB) -> list[UserOut]:
    return [UserOut.of(view) for view in users.list_users(db)]


@post(
    "/users",
    status_code=200,
    sync_to_thread=True,
    tags=["Users"],
    guards=[requires(admin=True)],
    summary="Create a user (admins); without a password it cannot log in yet",
)
def create_user(data: JSONBody[UserIn], db: DB, caller: Caller) -> UserOut:
    require_admin(caller)
    user = users.create_user(
        db, data.email, data.password, display_name=data.display_name, actor_id=caller.actor_id
    )
    return UserOut.of(users.get_user(db, user.actor_id))


@get(
    "/users/{actor_id:int}",
    sync_to_thread=True,
    tags=["Users"],
    guards=[requires(self_or_admin="actor_id")],
    summary="One user (admins, or the user itself)",
)
def get_user(actor_id: ActorId, db: DB) -> UserOut:
    return UserOut.of(users.get_user(db, actor_id))


@patch(
    "/users/{actor_id:int}",
    sync_to_thread=True,
    tags=["Users"],
    guards=[requires(self_or_admin="actor_id")],
    summary="Change a user's display name or email (admins, or the user itself)",
)
def update_user(actor_id: ActorId, data: JSONBody[UserPatch], db: DB, caller: Caller) -> UserOut:
    return UserOut.of(
        users.update_user(
            db, actor_id, display_name=data.display_name, email=data.email, actor_id=caller.actor_id
        )
    )


@put(
    "/users/{actor_id:int}/password",
    sync_to_thread=True,
    tags=["Users"],
    guards=[requires(self_only="actor_id")],
    summary="Change one's own password (the old one must match); the user's other sessions end",
)
def change_password(
    actor_id: ActorId, data: JSONBody[PasswordChange], db: DB, caller: Caller
) -> Success:
    """As in Central, every other session of the user ends; the one this request came with
    (its Bearer token) stays. Over HTTP Basic there is no such session: all of them end."""
    if caller.actor_id != actor_id:
        raise forbidden("Only the user itself may change its password.")
    if not users.change_password(
        db, actor_id, data.old, data.new, keep_session_id=caller.session_id
    ):
        raise unauthorized("The old password is not correct.")
    return Success()


@delete(
    "/users/{actor_id:int}",
    status_code=200,
    sync_to_thread=True,
    tags=["Users"],
    guards=[requires(admin=True)],
    summary="Delete a user (admins): it can no longer log in; its sessions end",
)
def delete_user(actor_id: ActorId, db: DB, caller: Caller) -> Success:
    users.delete_user(db, actor_id, actor_id=caller.actor_id)
    return Success()


# ---- roles and assignments ----------------------------------------------------------------------


# The role catalogue: any logged-in caller reads it (Central asks for no login at all).
# Public, as in Central: the catalogue is the same for everyone (and pyodk reads it).
_CATALOGUE: dict[str, Any] = {"opt": PUBLIC, "sync_to_thread": False, "tags": ["Roles"]}


@get("/roles", summary="The roles: Central's catalogue with Central's ids, then ours", **_CATALOGUE)
def list_roles() -> list[RoleOut]:
    return [RoleOut.of(role) for role in roles.list_roles()]


@get("/roles/{role:str}", summary="One role, by its id or its system name", **_CATALOGUE)
def get_role(role: PathText) -> RoleOut:
    return RoleOut.of(roles.get_role(role))


@get(
    "/projects/{project_id:int}/assignments",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["Roles"],
    summary="Who holds which role in the project (managers)",
)
def list_assignments(project_id: ProjectId, db: DB, caller: Caller) -> list[AssignmentOut]:
    return [
        AssignmentOut(actor_id=actor, role_id=roles.role_id(role))
        for actor, role in roles.list_assignments(db, project_id)
    ]


@post(
    "/projects/{project_id:int}/assignments/{role:str}/{actor_id:int}",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["Roles"],
    summary="Give a user a project role: manager (5), formfill (8), supervisor (10) (managers)",
)
def assign_role(
    project_id: ProjectId, role: PathText, actor_id: ActorId, db: DB, caller: Caller
) -> Success:
    roles.assign_role(db, project_id, roles.role_named(role), actor_id, actor_id=caller.actor_id)
    return Success()


@delete(
    "/projects/{project_id:int}/assignments/{role:str}/{actor_id:int}",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["Roles"],
    summary="Take a project role away (managers)",
)
def unassign_role(
    project_id: ProjectId, role: PathText, actor_id: ActorId, db: DB, caller: Caller
) -> Success:
    roles.unassign_role(db, project_id, roles.role_named(role), actor_id, actor_id=caller.actor_id)
    return Success()


@post(
    "/assignments/{role:str}/{actor_id:int}",
    status_code=200,
    sync_to_thread=True,
    tags=["Roles"],
    guards=[requires(admin=True)],
    summary="Make a user a server administrator (admins; role admin or 1)",
)
def assign_admin(role: PathText, actor_id: ActorId, db: DB, caller: Caller) -> Success:
    _only_admin_role(role)
    users.set_admin(db, actor_id, True, actor_id=caller.actor_id)
    return Success()


@delete(
    "/assignments/{role:str}/{actor_id:int}",
    status_code=200,
    sync_to_thread=True,
    tags=["Roles"],
    guards=[requires(admin=True)],
    summary="Withdraw the administrator role (admins)",
)
def unassign_admin(role: PathText, actor_id: ActorId, db: DB, caller: Caller) -> Success:
    _only_admin_role(role)
    users.set_admin(db, actor_id, False, actor_id=caller.actor_id)
    return Success()


def _only_admin_role(ref: str) -> None:
    """Only `admin` is server-wide; any other role here is a client error."""
    if roles.role_named(ref) != "admin":
        raise InvalidInput(
            "Only the admin role is server-wide; grant project roles under "
            "/v1/projects/{id}/assignments."
        )


HANDLERS = [
    current_user,
    list_users,
    create_user,
    get_user,
    update_user,
    change_password,
    delete_user,
    list_roles,
    get_role,
    list_assignments,
    assign_role,
    unassign_role,
    assign_admin,
    unassign_admin,
]
PUBLIC_HANDLERS = [list_roles, get_role]
