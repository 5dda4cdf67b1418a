"""Guards: who may call a route, checked before its body is read or validated.

Litestar runs guards before it parses a handler's parameters, so a caller without the right
gets 401/403/404 and never learns anything from validating the body. The identity found here
is kept on the connection and reused by the `caller` dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from storage.users import Identity

from .auth import refuse_key, require_admin, require_identity, require_project
from .errors import forbidden

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Coroutine[Any, Any, None]]
_STATE_KEY = "jebol_identity"
_ROLES_KEY = "jebol_roles"
# A route anyone may call (login, health, static files, the OpenAPI docs): its rule, declared
# as `opt=PUBLIC` where other routes declare `guards=[...]`.
PUBLIC = {"public": True}


def roles_of(request: Request[Any, Any, Any]) -> frozenset[str]:
    """Dependency `roles`: the caller's roles on the route's project, found by its guard."""
    return request.scope.get("state", {}).get(_ROLES_KEY, frozenset())


def keep_identity(connection: ASGIConnection[Any, Any, Any, Any], identity: Identity) -> None:
    """For a guard that found the caller its own way (the web form's key in the path): kept
    where `identity_of`, and so the dependencies, read it."""
    connection.scope.setdefault("state", {})[_STATE_KEY] = identity


def identity_of(
    connection: ASGIConnection[Any, Any, Any, Any], *, keys: bool = False, challenge: bool = False
) -> Identity:
    """The caller, resolved once per request (blocking: call from a worker thread). App-user
    keys count only where `keys` (OpenRosa); `challenge` asks a client for Basic credentials
    on a 401, as ODK Collect expects."""
    state = connection.scope.setdefault("state", {})
    identity = state.get(_STATE_KEY)
    if identity is None:
        identity = require_identity(
            connection,  # type: ignore[arg-type]
            connection.app.state.services.db,
            challenge=challenge,
        )
        state[_STATE_KEY] = identity
    if identity.kind == "app_user" and not keys:
        raise refuse_key()
    return identity


def requires(
    allowed: frozenset[str] | None = None,
    *,
    admin: bool = False,
    self_or_admin: str | None = None,
    self_only: str | None = None,
    keys: bool = False,
) -> Guard:
    """A guard: `allowed` roles on the route's project, or admin, or the user named in a path
    parameter (`self_or_admin` / `self_only`). `keys`: an OpenRosa route, where an app user's
    key counts (as a role on its one project) and a 401 challenges for Basic credentials."""

    def check(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        identity = identity_of(connection, keys=keys, challenge=keys)
        params = connection.path_params
        if admin:
            require_admin(identity)
        if self_or_admin and params.get(self_or_admin) != identity.actor_id:
            require_admin(identity)
        if self_only and params.get(self_only) != identity.actor_id:
            raise forbidden("Only the user themself may do this.")
        if allowed is not None:
            state = connection.scope.setdefault("state", {})
            state[_ROLES_KEY] = require_project(
                connection.app.state.services.db, identity, int(params["project_id"]), allowed
            )

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        await anyio.to_thread.run_sync(check, connection)

    return guard
