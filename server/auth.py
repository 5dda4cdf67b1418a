"""Who is calling: app-user keys in the path, Bearer session tokens, HTTP Basic.

`identify` resolves the caller (or None for anonymous); `require_project` checks the caller's
role on the project a route touches. A project the caller cannot see answers 404.
"""

from __future__ import annotations

import base64
from typing import Any

from litestar import Request

from storage import app_users, projects, users
from storage import roles as role_store
from storage.db import Database
from storage.errors import Forbidden, NotFound
from storage.tokens import is_well_formed
from storage.users import Identity

from .deps import DB
from .errors import ActionForbidden, forbidden, unauthorized

SESSION_COOKIE = "jebol_session"

# What each role may do on a project's routes (DESIGN §7). Admins may do everything.
SUBMIT = frozenset({"manager", "supervisor", "formfill"})  # list/download forms, submit, own data
REVIEW = frozenset({"manager", "supervisor"})  # read all submissions, review, comment, export
MANAGE = frozenset({"manager"})  # forms, app users, roles in the project

# A route the UI links to for download: the session cookie counts there for reads.
UI_LINKED = {"ui_linked": True}


def identify(request: Request[Any, Any, Any], db: Database) -> Identity | None:
    key = request.path_params.get("key")
    if key is not None:
        if not is_well_formed(key):
            raise unauthorized("The app user key in the URL is malformed.")
        try:
            return app_users.identity_for_key(db, key)
        except Forbidden as error:
            raise forbidden(str(error)) from None
    header = request.headers.get("authorization", "")
    if not header and SESSION_COOKIE in request.cookies and _cookie_allowed(request):
        identity = users.identity_for_session(db, request.cookies[SESSION_COOKIE])
        if identity is None:
            raise unauthorized("Your session has ended; log in again.")
        return identity
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        identity = users.identity_for_session(db, credentials.strip())
        if identity is None:
            raise unauthorized("The session token is invalid or expired.")
        return identity
    if scheme == "basic":
        email, password = _basic(credentials)
        identity = users.authenticate(db, email, password, client=client_address(request))
        if identity is None:
            raise unauthorized("Wrong email or password.", challenge=True)
        return identity
    return None


def _cookie_allowed(request: Request[Any, Any, Any]) -> bool:
    """Where the browser's session cookie counts: on the supervisor UI's routes (whose forms
    carry a CSRF token), and for reading the downloads the UI links to (routes with
    `opt=UI_LINKED`: attachments, the form's XML and XLSForm, exports, the IID report, QR
    codes). Everywhere else a Bearer token or Basic credentials are needed, so a link to the
    JSON API or to a submission's XML opened in a logged-in browser acts as nobody."""
    handler = request.scope.get("route_handler")
    opt = handler.opt if handler is not None else {}
    if opt.get("ui"):
        return True
    return request.method in ("GET", "HEAD") and bool(opt.get("ui_linked"))


def require_identity(
    request: Request[Any, Any, Any], db: Database, challenge: bool = False
) -> Identity:
    identity = identify(request, db)
    if identity is None:
        raise unauthorized("This resource needs authentication.", challenge=challenge)
    return identity


def require_project(
    db: Database, identity: Identity, project_id: int, allowed: frozenset[str]
) -> frozenset[str]:
    roles = role_store.roles_in_project(db, identity, project_id)
    if not roles or ("admin" in roles and not projects.project_exists(db, project_id)):
        raise NotFound("project")
    if not (roles & allowed) and "admin" not in roles:
        raise forbidden()
    return roles


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII text
        raise unauthorized("Malformed Basic credentials.", challenge=True) from None
    email, sep, password = decoded.partition(":")
    if not sep:
        raise unauthorized("Malformed Basic credentials.", challenge=True)
    return email, password


def resolve_caller(request: Request[Any, Any, Any], db: DB) -> Identity:
    """Dependency `caller`: the authenticated identity, or 401. App-user keys never reach REST.
    A guard may already have found it (server.guards)."""
    from .guards import identity_of

    return identity_of(request)


def refuse_key() -> ActionForbidden:
    return forbidden(
        "An app user key may be used only for OpenRosa (ODK Collect) and the web form."
    )


def require_admin(identity: Identity) -> None:
    if not identity.is_admin:
        raise forbidden("Only a server administrator may do this.")


def may_review(roles: frozenset[str]) -> bool:
    """Managers, supervisors and admins read every submission, review and export; data
    collectors (formfill) and app users see their own submissions only."""
    return bool(roles & (REVIEW | {"admin"}))


def own_only(roles: frozenset[str], caller: Identity) -> int | None:
    """Whose submissions the caller reads: everyone's (None), or only its own (its actor id)."""
    return None if may_review(roles) else caller.actor_id
