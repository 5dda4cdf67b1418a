"""Path segments as sent: a form id may hold any character ODK Central accepts, "/" included.

ASGI servers decode the path before the app sees it, so `forms/a%2Fb/draft` would arrive as
`forms/a/b/draft` and match no route (Central routes on the raw path). Two parts, one rule:

- `RawPathRouting` (around the whole app) routes on `raw_path`: each segment is decoded, then
  the two characters that would change the routing, "/" and "%", are escaped again, so a
  segment stays one segment;
- `DecodedPathParams` (a middleware, after routing) decodes those escapes in the path
  parameters, so handlers receive the form id the client meant: `''=+/*-451%/%`.
"""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

from litestar.types import ASGIApp, Receive, Scope, Send


def routed_path(raw_path: bytes) -> str:
    """The path to route on: every segment decoded, its "%" and "/" escaped again. (A query
    string some clients leave in `raw_path` is not part of it.)"""
    raw_path = raw_path.partition(b"?")[0]
    return "/".join(
        unquote_to_bytes(segment).decode("utf-8", "replace").replace("%", "%25").replace("/", "%2F")
        for segment in raw_path.split(b"/")
    )


class RawPathRouting:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] in ("http", "websocket") else None
        if raw and b"%" in raw:
            # In place: the app's before_send hooks hold this scope, and read the route from it.
            scope["path"] = routed_path(raw)
        await self.app(scope, receive, send)


class DecodedPathParams:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope.get("path_params")
        if params and "%" in scope["path"]:
            scope["path_params"] = {
                name: unquote(value) if isinstance(value, str) and "%" in value else value
                for name, value in params.items()
            }
        await self.app(scope, receive, send)
