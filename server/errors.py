"""One table from error class to HTTP status and Central-style code, rendered in one place.

REST routes answer JSON `{"code", "message"}`; OpenRosa routes answer the OpenRosaResponse XML
envelope with the OpenRosa headers. No stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from forms.errors import FormsError
from storage.blobs import BlobStoreError
from storage.errors import (
    BlobUnavailable,
    Conflict,
    Forbidden,
    FormClosed,
    InvalidInput,
    NotFound,
    SubmissionDeleted,
    Throttled,
    XmlConflict,
)

from . import formats

log = logging.getLogger("jebol.errors")

RETRY_AFTER_SECONDS = 30


class ApiError(Exception):
    """An error raised by the HTTP layer itself (auth, headers, limits)."""

    def __init__(
        self, status: int, code: float, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def unauthorized(
    message: str = "Could not authenticate with the provided credentials.", challenge: bool = False
) -> ApiError:
    headers = (
        {"WWW-Authenticate": 'Basic realm="JEBOL SIPERA", charset="UTF-8"'} if challenge else {}
    )
    return ApiError(401, 401.2, message, headers)


def forbidden(
    message: str = "The authenticated actor does not have rights to perform that action.",
) -> ApiError:
    return ApiError(403, 403.1, message)


# class -> (status, code); the first matching entry wins, so subclasses come first.
_TABLE: list[tuple[type[BaseException], int, float]] = [
    (XmlConflict, 409, 409.1),
    (SubmissionDeleted, 409, 409.2),
    (FormClosed, 409, 409.3),
    (Conflict, 409, 409.4),
    (NotFound, 404, 404.1),
    (Forbidden, 403, 403.1),
    (InvalidInput, 400, 400.8),
    (FormsError, 400, 400.1),
    # A value the database cannot hold or compare: an id past its integer range (SQLite:
    # OverflowError), text with NUL or out of range (PostgreSQL: DataError). Input, not a bug.
    (DataError, 400, 400.2),
    (OverflowError, 400, 400.2),
    (BlobUnavailable, 503, 503.1),
    (BlobStoreError, 503, 503.1),
    (OperationalError, 503, 503.2),
    (PoolTimeout, 503, 503.2),
]


def classify(error: BaseException) -> tuple[int, float, str, dict[str, str]]:
    if isinstance(error, ApiError):
        return error.status, error.code, error.message, error.headers
    if isinstance(error, HTTPException):
        status = error.status_code
        detail = error.detail if isinstance(error.detail, str) else str(error.detail)
        if status == 413:
            return (
                413,
                413.1,
                "The request is larger than this server accepts.",
                {"Connection": "close"},
            )
        if status == 405:
            return 405, 405.1, "This method is not allowed on this resource.", {}
        if status == 404:
            return 404, 404.1, "Could not find the resource you were looking for.", {}
        return status, float(f"{status}.1"), detail, dict(error.headers or {})
    if isinstance(error, RecursionError):
        # Only a client's data nests without bound here: a JSON body of `[[[[…` (Litestar
        # decodes bodies untyped before converting them, recursing per level). Input, not a bug.
        return 400, 400.1, "The request holds data nested too deeply to be read.", {}
    if isinstance(error, Throttled):
        return 429, 429.1, str(error), {"Retry-After": str(error.retry_after)}
    for cls, status, code in _TABLE:
        if isinstance(error, cls):
            message = str(error) or "Error."
            if code == 400.2:  # the database's text would name tables and statements
                message = (
                    "A value in the request is out of range or holds a character that "
                    "cannot be stored (such as NUL)."
                )
            headers: dict[str, str] = {}
            if status == 503:
                message = (
                    "The server cannot store data right now (database or file store "
                    "unavailable). Nothing was stored; please retry."
                )
                headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return status, code, message, headers
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return (
            503,
            503.2,
            "The database connection was lost; please retry.",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return 500, 500.1, "An internal error occurred; it has been logged.", {}


def handle(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    status, code, message, headers = classify(error)
    if status == 503:  # an outage: one line per request, not a traceback each
        cause = str(error).splitlines()[0] if str(error) else ""
        log.warning(
            "%s %s -> 503 (%s: %s)", request.method, request.url.path, type(error).__name__, cause
        )
    elif status >= 500:
        log.error("%s %s -> %s", request.method, request.url.path, status, exc_info=error)
    handler = request.scope.get("route_handler")
    if handler is not None and handler.opt.get("ui"):
        return _ui_error(request, status, message, headers)
    if handler is not None and handler.opt.get("openrosa"):
        settings = request.app.state.settings
        return Response(
            formats.openrosa_message(message, nature="error"),
            status_code=status,
            media_type=formats.XML_TYPE,
            headers={**formats.openrosa_headers(settings.max_submission_bytes), **headers},
        )
    return Response({"code": code, "message": message}, status_code=status, headers=headers)


def _ui_error(
    request: Request[Any, Any, Any], status: int, message: str, headers: dict[str, str]
) -> Response[Any]:
    """The supervisor UI: to the login page when logged out, else a readable error page."""
    from urllib.parse import quote

    from litestar.response import Redirect, Template

    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"/login?next={quote(target)}", status_code=303)
    if request.headers.get("hx-request") == "true":
        return Response(message, status_code=status, media_type="text/plain", headers=headers)
    return Template(
        template_name="error.html",
        status_code=status,
        headers=headers,
        context={"request": request, "status": status, "message": message},
    )
