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
from litestar import Response, delete, get, post
from litestar.params import JSONBody

from storage import app_users, projects, roles
from storage.app_users import AppUserOut as AppUserRow
from storage.db import Database
from storage.errors import Conflict, InvalidInput
from storage.tokens import TokenBox

from ..auth import MANAGE, UI_LINKED
from ..deps import DB, Box, Caller, Config, PathText, ProjectId
from ..guards import requires
from ..settings import Settings
from ..urls import collect_url, web_form_url
from .schemas import Wire
from .sessions import Success
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
# Central: POST|DELETE /projects/{id}/forms/{xmlFormId}/assignments/{role}/{actorId}, with role
# `app-user` or 2 (Central's names), or our officer role by id (4) or name. Recorded and listed,
# not yet enforced: every app user of a project still sees all its open forms (see
# storage.roles.grant_form_access).

_FORM_ASSIGNMENT = "/projects/{project_id:int}/forms/{xml_form_id:str}/assignments"


class ActorOut(Wire):
    id: int
    display_name: str
    created_at: datetime
    type: str
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


# Central's id of its `app-user` role. pyodk sends it as a constant
# (`FormAssignmentService.assign(role_id=2, ...)` in `projects.create_app_users`), so on these
# routes it means app-user, although our own role 2 is manager (a project-wide role that is
# never assigned per form).
CENTRAL_APP_USER_ROLE = "2"


def _app_user_role(ref: str) -> None:
    ref = ref.strip().lower()
    if ref in ("app-user", CENTRAL_APP_USER_ROLE):
        return
    if roles.role_named(ref) != "officer":
        raise InvalidInput(
            "Forms are assigned to app users only (role app-user, 2 as in Central, or officer)."
        )


@get(
    _FORM_ASSIGNMENT,
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["App users"],
    summary="Form assignments: [{actorId, roleId}] (managers)",
)
def list_form_assignments(
    project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller
) -> list[AssignmentOut]:
    officer = roles.role_id("officer")
    return [
        AssignmentOut(actor_id=actor.id, role_id=officer)
        for actor in roles.list_form_access(db, project_id, xml_form_id)
    ]


@get(
    _FORM_ASSIGNMENT + "/{role:str}",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=["App users"],
    summary="The app users assigned to a form, as actors (managers)",
)
def list_form_assignees(
    project_id: ProjectId, xml_form_id: PathText, role: PathText, db: DB, caller: Caller
) -> list[ActorOut]:
    _app_user_role(role)
    return [
        ActorOut(
            id=a.id,
            display_name=a.display_name,
            created_at=a.created_at,
            type="field_key",
            deleted_at=a.deleted_at,
        )
        for a in roles.list_form_access(db, project_id, xml_form_id)
    ]


@post(
    _FORM_ASSIGNMENT + "/{role:str}/{actor_id:int}",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["App users"],
    summary="Assign a form to an app user (managers)",
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
    roles.grant_form_access(db, project_id, xml_form_id, actor_id, actor_id=caller.actor_id)
    return Success()


@delete(
    _FORM_ASSIGNMENT + "/{role:str}/{actor_id:int}",
    guards=[requires(MANAGE)],
    status_code=200,
    sync_to_thread=True,
    tags=["App users"],
    summary="Take a form away from an app user (managers)",
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
    roles.revoke_form_access(db, project_id, xml_form_id, actor_id, actor_id=caller.actor_id)
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
