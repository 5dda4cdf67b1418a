"""/v1/sessions: log in with email and password (throttled), log out (Central's shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, delete, post
from litestar.params import JSONBody

from storage import users

from ..auth import client_address
from ..deps import DB, Caller, Config, PathText
from ..errors import unauthorized
from ..guards import PUBLIC, requires
from .schemas import Success, Wire


class SessionIn(Wire):
    email: str
    password: str


class SessionOut(Wire):
    token: str
    created_at: datetime
    expires_at: datetime


@post(
    "/sessions",
    status_code=200,
    sync_to_thread=True,
    tags=["Sessions"],
    opt=PUBLIC,
    summary="Log in: a Bearer token for the email and password",
)
def create_session(
    request: Request[Any, Any, Any], data: JSONBody[SessionIn], db: DB, settings: Config
) -> SessionOut:
    login = users.log_in(
        db, data.email, data.password, client=client_address(request), hours=settings.session_hours
    )
    if login is None:
        raise unauthorized("Could not authenticate with the provided credentials.")
    return SessionOut(
        token=login.token, created_at=login.session.created_at, expires_at=login.session.expires_at
    )


@delete(
    "/sessions/{token:str}",
    status_code=200,
    sync_to_thread=True,
    tags=["Sessions"],
    guards=[requires()],
    summary="Log out: end a session (its own user, or an administrator)",
)
def delete_session(token: PathText, db: DB, caller: Caller) -> Success:
    users.end_session(db, token, actor_id=caller.actor_id, is_admin=caller.is_admin)
    return Success()


HANDLERS = [create_session, delete_session]
