"""/v1/projects/{id}/app-users: phones' identities, their QR codes, and form assignments.

An app user's key is shown again in the list (sealed with the server's secret), with the
Collect URL and the web-form URL built from it; all three are null once the key is revoked.
Managers of the project (or admins) only; another project's app users answer 404.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from datetime import datetime
from typing import Any, Literal

import segno
from litestar import Request, Response, delete, get, post
from litestar.params import JSONBody

from storage import app_users, projects, roles
from storage.app_users import AppUserOut as AppUserRow
from storage.db import Database
from storage.errors import Conflict, InvalidInput
from storage.models import Actor
from storage.tokens import TokenBox

from ..auth import MANAGE, UI_LINKED
from ..deps import DB, Box, Caller, Config, PathText, ProjectId, is_true
from ..guards import requires
from ..settings import Settings
from ..urls import collect_url, web_form_url
from .schemas import Success, Wire
from .users import ActorId, AssignmentOut

PROJECT_ICON = "📋"
PROJECT_COLOR = "#1e6b52"
QR_SCALE = 8  # pixels per module
QR_BORDER = 4  # quiet zone, in modules (the QR standard's minimum)


class AppUserOut(Wire):
    """Central's app user (`id` is the actor id), plus the URLs a phone is given.
    `updatedAt` is when the key was revoked (the only change an app user undergoes)."""

    id: int
    display_name: str
    token: str | None
    project_id: int
    created_at: datetime
    collect_url: str | None
    web_form_url: str | None
    type: Literal["field_key"] = "field_key"
    updated_at: datetime | None = None
    deleted_at: datetime | None = None

    @classmethod
    def of(cls, row: AppUserRow, public_url: str) -> AppUserOut:
        token, project_id = row.token, row.app_user.project_id
        return cls(
            id=row.actor.id,
            display_name=row.actor.display_name,
            token=token,
            project_id=project_id,
            created_at=row.app_user.created_at,
            collect_url=collect_url(public_url, token, project_id) if token else None,
            web_form_url=web_form_url(public_url, token) if token else None,
            updated_at=row.app_user.revoked_at,
            deleted_at=row.actor.deleted_at,
        )


class AppUserIn(Wire):
    display_name: str


class CollectSettings(Wire):
    settings: dict[str, Any]
    payload: str


def collect_settings(server_url: str, project_name: str) -> dict[str, Any]:
    """What ODK Collect reads from a QR code: the server, managed-mode settings, the project."""
    return {
        "general": {
            "server_url": server_url,
            "form_update_mode": "match_exactly",
            "autosend": "wifi_and_cellular",
        },
        "project": {"name": project_name, "icon": PROJECT_ICON, "color": PROJECT_COLOR},
        "admin": {},
    }


def encode_settings(settings: dict[str, Any]) -> str:
    """Collect's QR payload: base64(zlib(compact UTF-8 JSON))."""
    text = json.dumps(settings, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(zlib.compress(text)).decode("ascii")


def qr_code(payload: str) -> segno.QRCode:
    return segno.make(payload, micro=False)


def _payload(
    db: Database, box: TokenBox, settings: Settings, project_id: int, actor_id: int
) -> CollectSettings:
    row = app_users.get_app_user(db, box, project_id, actor_id)
    if row.token is None:
        raise Conflict(
            "This app user's key was revoked (or sealed under another secret key); "
            "create a new app user."
        )
    values = collect_settings(
        collect_url(settings.public_url, row.token, project_id),
        projects.get_project(db, project_id).name,
    )
    return CollectSettings(settings=values, payload=encode_settings(values))


# ---- app users --------------------------------------------------------------------------------


@get(
    "/projects/{project_id:int}/app-users",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["App users"],
    summary="The project's app users, with their Collect URLs (managers)",
)
def list_app_users(
    project_id: ProjectId, db: DB, box: Box, settings: Config, caller: Caller
) -> list[AppUserOut]:
    return [
        AppUserOut.of(row, settings.public_url)
        for row in app_users.list_app_users(db, box, project_id)
    ]


@post(
    "/projects/{project_id:int}/app-users",
    status_code=200,
    sync_to_thread=True,
    guards=[requires(MANAGE)],
    tags=["App users"],
    summary="Create an app user: a key for one phone (managers)",
)
def create_app_user(
    project_id: ProjectId,
    data: JSONBody[AppUserIn],
    db: DB,
    box: Box,
    settings: Config,
    caller: Caller,
) -> AppUserOut:
    row = app_users.create_app_user(
        db, box, project_id, data.display_name, actor_id=caller.actor_id
    )
    return AppUserOut.of(row, settings.public_url)


@delete(
    "/projects/{project_id:int}/app-users/{actor_id:int}",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["App users"],
    summary="Revoke an app user's key: it answers 403 from now on (managers)",
)
def revoke_app_user(project_id: ProjectId, actor_id: ActorId, db: DB, caller: Caller) -> Success:
    app_users.revoke_app_user_by_actor(db, project_id, actor_id, actor_id=caller.actor_id)
    return Success()


@get(
    "/projects/{project_id:int}/app-users/{actor_id:int}/collect-settings",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["App users"],
    summary="The ODK Collect settings of an app user and their QR payload (managers)",
)
def get_collect_settings(
    project_id: ProjectId, actor_id: ActorId, db: DB, box: Box, settings: Config, caller: Caller
) -> CollectSettings:
    return _payload(db, box, settings, project_id, actor_id)


@get(
    "/projects/{project_id:int}/app-users/{actor_id:int}/qr.png",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    opt=UI_LINKED,
    tags=["App users"],
    summary="QR code for ODK Collect, PNG (managers)",
)
def qr_png(
    project_id: ProjectId, actor_id: ActorId, db: DB, box: Box, settings: Config, caller: Caller
) -> Response[bytes]:
    out = io.BytesIO()
    qr_code(_payload(db, box, settings, project_id, actor_id).payload).save(
        out, kind="png", scale=QR_SCALE, border=QR_BORDER
    )
    return Response(out.getvalue(), media_type="image/png", headers=_NO_STORE)


@get(
    "/projects/{project_id:int}/app-users/{actor_id:int}/qr.svg",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    opt=UI_LINKED,
    tags=["App users"],
    summary="QR code for ODK Collect, SVG (managers)",
)
def qr_svg(
    project_id: ProjectId, actor_id: ActorId, db: DB, box: Box, settings: Config, caller: Caller
) -> Response[bytes]:
    out = io.BytesIO()
    qr_code(_payload(db, box, settings, project_id, actor_id).payload).save(
        out, kind="svg", scale=QR_SCALE, border=QR_BORDER, xmldecl=False
    )
    return Response(out.getvalue(), media_type="image/svg+xml", headers=_NO_STORE)


# A QR code carries a key: keep it out of shared caches.
_NO_STORE = {"Cache-Control": "no-store"}


# ---- form assignments ---------------------------------------------------------------------------
# Central's routes: GET /projects/{id}/forms/{xmlFormId}/assignments[/{role}], POST|DELETE
# …/assignments/{role}/{actorId}, with role `app-user` or 2 (Central's id, which pyodk sends as
# a constant in `projects.create_app_users`). Enforced: an app user lists, downloads and submits
# to only the forms assigned to it (storage.roles.require_form_assigned).

_FORM_ASSIGNMENT = "/projects/{project_id:int}/forms/{xml_form_id:str}/assignments"


class ActorOut(Wire):
    """Central's Actor frame."""

    id: int
    type: str
    display_name: str
    created_at: datetime
    updated_at: datetime | None = None
    deleted_at: datetime | None = None

    @classmethod
    def of(cls, actor: Actor) -> ActorOut:
        return cls(
            id=actor.id or 0,
            type="field_key" if actor.kind == "app_user" else "user",
            display_name=actor.display_name,
            created_at=actor.created_at,
            deleted_at=actor.deleted_at,
        )


class AssignmentWithActor(Wire):
    actor_id: int
    role_id: int
    actor: ActorOut


def _app_user_role(ref: str) -> int:
    """Central's app-user role (by id 2 or name), else 400; an unknown role is 404."""
    role = roles.get_role(ref)
    if role.system != roles.APP_USER:
        raise InvalidInput(
            f"Forms are assigned to app users with the role app-user "
            f"({roles.role_id(roles.APP_USER)}); this server does not assign {role.system} "
            "on a form (web users' project roles cover every form)."
        )
    return role.id


@get(
    _FORM_ASSIGNMENT,
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["App users"],
    summary="Form assignments: [{actorId, roleId}], with `actor` under X-Extended-Metadata: true",
)
def list_form_assignments(
    request: Request[Any, Any, Any], project_id: ProjectId, xml_form_id: PathText, db: DB
) -> list[AssignmentOut] | list[AssignmentWithActor]:
    role_id = roles.role_id(roles.APP_USER)
    actors = roles.list_form_assignees(db, project_id, xml_form_id)
    if is_true(request.headers.get("x-extended-metadata")):
        return [
            AssignmentWithActor(actor_id=a.id or 0, role_id=role_id, actor=ActorOut.of(a))
            for a in actors
        ]
    return [AssignmentOut(actor_id=a.id or 0, role_id=role_id) for a in actors]


@get(
    _FORM_ASSIGNMENT + "/{role:str}",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["App users"],
    summary="The actors holding a role on a form (app-user or 2) (managers)",
)
def list_form_assignees(
    project_id: ProjectId, xml_form_id: PathText, role: PathText, db: DB
) -> list[ActorOut]:
    _app_user_role(role)
    return [ActorOut.of(a) for a in roles.list_form_assignees(db, project_id, xml_form_id)]


@post(
    _FORM_ASSIGNMENT + "/{role:str}/{actor_id:int}",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["App users"],
    summary="Assign a form to an app user (role app-user or 2); twice is 409.3 (managers)",
)
def assign_form(
    project_id: ProjectId,
    xml_form_id: PathText,
    role: PathText,
    actor_id: ActorId,
    db: DB,
    caller: Caller,
) -> Success:
    _app_user_role(role)
    roles.assign_form(db, project_id, xml_form_id, actor_id, actor_id=caller.actor_id)
    return Success()


@delete(
    _FORM_ASSIGNMENT + "/{role:str}/{actor_id:int}",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["App users"],
    summary="Take a form from an app user: it can no longer submit to it (managers)",
)
def unassign_form(
    project_id: ProjectId,
    xml_form_id: PathText,
    role: PathText,
    actor_id: ActorId,
    db: DB,
    caller: Caller,
) -> Success:
    _app_user_role(role)
    roles.unassign_form(db, project_id, xml_form_id, actor_id, actor_id=caller.actor_id)
    return Success()


HANDLERS = [
    list_app_users,
    create_app_user,
    revoke_app_user,
    get_collect_settings,
    qr_png,
    qr_svg,
    list_form_assignments,
    list_form_assignees,
    assign_form,
    unassign_form,
]
