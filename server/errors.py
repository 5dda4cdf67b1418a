"""One table from error class to HTTP status and Central-style code, rendered in one place.

forms/ and storage/ raise plain error classes (a message, maybe fields; no HTTP); the HTTP
layer's own problems (auth, headers, limits) are the HttpError classes below. TABLE gives
each class its status and code: handlers raise a named class, never a status or a code.
REST routes answer JSON `{"code", "message"}`; OpenRosa routes answer the OpenRosaResponse XML
envelope with the OpenRosa headers; the supervisor UI an error page (or the login page). No
stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from litestar import Request, Response
from litestar.exceptions import HTTPException
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from forms.errors import (
    ExpandUnsupported,
    FilterInvalid,
    FormsError,
    InvalidSkipToken,
    ODataInvalid,
    ODataUnsupported,
    SelectUnsupported,
    SelectWithExpand,
    SubmissionInvalid,
    UnknownProperty,
    XFormInvalid,
    XLSFormInvalid,
    XLSFormWarnings,
)
from storage.blobs import BlobStoreError
from storage.errors import (
    AlreadyExists,
    BlobUnavailable,
    Conflict,
    EntityInvalid,
    EntityVersionConflict,
    Forbidden,
    FormClosed,
    InvalidInput,
    ListNameClash,
    MissingParameter,
    NoConflict,
    NotFound,
    PendingSubmissions,
    StorageError,
    SubmissionDeleted,
    Throttled,
    UnexpectedAttributes,
    UuidOfDeleted,
    VersionTaken,
    WrongType,
    XmlConflict,
)

from . import formats
from .logs import CLIENT_GONE

log = logging.getLogger("jebol.errors")

RETRY_AFTER_SECONDS = 30


# ---- the HTTP layer's own errors (auth, headers, limits): each has its row in TABLE ---------


class HttpError(Exception):
    """An error of the HTTP layer itself; its class's row in TABLE gives status and code.
    `headers` go out with the response."""

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message, self.headers = message, headers or {}


class Unauthorized(HttpError):
    """No credentials, or credentials that do not authenticate anyone."""


class ActionForbidden(HttpError):
    """The caller is authenticated but may not do this here (role, admin, a key on REST)."""


class BadRequest(HttpError):
    """A request this server cannot read: a missing header, broken multipart framing."""


class MissingInput(HttpError):
    """The request lacks what the route needs: an empty body, no submission part."""


class UnexpectedValue(HttpError):
    """A query parameter this route cannot use (an export's `$filter`)."""


class UnsupportedMedia(HttpError):
    """A file that is not of the kind the route works on (a thumbnail of a non-image)."""


class BodyTooSlow(HttpError):
    """The request body arrived too slowly or stopped; the connection is closed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, {"Connection": "close"})


class ClientGone(HttpError):
    """The connection closed before the request body was complete. No response can reach the
    client; the status (nginx's 499, "client closed request") is for the access line, and as
    a 4xx it is not logged as an error. Nothing was stored: nothing is ingested before the
    whole body is in, and the handlers' cleanup removes the temporary files."""

    def __init__(self) -> None:
        super().__init__(
            "The connection closed before the request body was complete; nothing was stored."
        )


def unauthorized(
    message: str = "Could not authenticate with the provided credentials.", challenge: bool = False
) -> Unauthorized:
    headers = (
        {"WWW-Authenticate": 'Basic realm="JEBOL SIPERA", charset="UTF-8"'} if challenge else {}
    )
    return Unauthorized(message, headers)


def forbidden(
    message: str = "The authenticated actor does not have rights to perform that action.",
) -> ActionForbidden:
    return ActionForbidden(message)


# ---- the table -------------------------------------------------------------------------------


class Row(NamedTuple):
    status: int
    code: float
    message: str | None = None  # shown instead of str(error) (which may hold internals)


_INTERNAL = "An internal error occurred; it has been logged."
_UNAVAILABLE = (
    "The server cannot store data right now (database or file store "
    "unavailable). Nothing was stored; please retry."
)
# A value the database cannot hold or compare: an id past its integer range (SQLite:
# OverflowError), text with NUL or out of range (PostgreSQL: DataError). Input, not a bug;
# the database's own text would name tables and statements.
_DB_VALUE = "A value in the request is out of range or holds a character that cannot be stored (such as NUL)."

# Error class -> (status, Central code[, fixed message]). An error takes the row of the
# nearest class in its MRO that has one; every class of forms/errors.py, storage/errors.py and
# the HTTP layer's own has its row (tests/server/test_errors.py walks them).
TABLE: dict[type[BaseException], Row] = {
    # server: the HTTP layer
    Unauthorized: Row(401, 401.2),
    ActionForbidden: Row(403, 403.1),
    BadRequest: Row(400, 400.1),
    MissingInput: Row(400, 400.2),
    UnexpectedValue: Row(400, 400.8),
    UnsupportedMedia: Row(415, 415.1),
    BodyTooSlow: Row(408, 408.1),
    ClientGone: Row(CLIENT_GONE, 499.1),
    HttpError: Row(400, 400.1),
    # storage/errors.py
    StorageError: Row(500, 500.1, _INTERNAL),
    NotFound: Row(404, 404.1),
    Forbidden: Row(403, 403.1),
    Conflict: Row(409, 409.4),
    AlreadyExists: Row(409, 409.3),
    UuidOfDeleted: Row(409, 409.19),
    VersionTaken: Row(409, 409.6),
    ListNameClash: Row(409, 409.16),
    XmlConflict: Row(409, 409.1),
    SubmissionDeleted: Row(409, 409.18),
    FormClosed: Row(409, 409.2),
    InvalidInput: Row(400, 400.8),
    EntityInvalid: Row(400, 400.28),
    NoConflict: Row(400, 400.32),
    PendingSubmissions: Row(400, 400.29),
    MissingParameter: Row(400, 400.2),
    WrongType: Row(400, 400.11),
    UnexpectedAttributes: Row(400, 400.31),
    EntityVersionConflict: Row(409, 409.15),
    BlobUnavailable: Row(503, 503.1, _UNAVAILABLE),
    Throttled: Row(429, 429.1),  # with Retry-After: its retry_after
    # forms/errors.py
    FormsError: Row(400, 400.1),
    XLSFormInvalid: Row(400, 400.1),
    XLSFormWarnings: Row(400, 400.1),
    XFormInvalid: Row(400, 400.1),
    SubmissionInvalid: Row(400, 400.1),
    ODataInvalid: Row(400, 400.8),
    UnknownProperty: Row(400, 400.23),
    SelectUnsupported: Row(400, 400.24),
    InvalidSkipToken: Row(400, 400.35),
    FilterInvalid: Row(400, 400.18),
    ODataUnsupported: Row(501, 501.1),
    ExpandUnsupported: Row(501, 501.6),
    SelectWithExpand: Row(501, 501.11),
    # the database, the object store, the interpreter
    DataError: Row(400, 400.2, _DB_VALUE),
    OverflowError: Row(400, 400.2, _DB_VALUE),
    # Only a client's data nests without bound here: a JSON body of `[[[[…` (Litestar
    # decodes bodies untyped before converting them, recursing per level). Input, not a bug.
    RecursionError: Row(400, 400.1, "The request holds data nested too deeply to be read."),
    BlobStoreError: Row(503, 503.1, _UNAVAILABLE),
    OperationalError: Row(503, 503.2, _UNAVAILABLE),
    PoolTimeout: Row(503, 503.2, _UNAVAILABLE),
}


def row_of(error: BaseException) -> Row | None:
    return next((TABLE[cls] for cls in type(error).__mro__ if cls in TABLE), None)


def classify(error: BaseException) -> tuple[int, float, str, dict[str, str]]:
    """(status, code, message, headers) for any error: the one place a client's view of an
    error is decided."""
    if isinstance(error, HTTPException):  # Litestar's own (routing, limits, validation)
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
    row = row_of(error)
    if row is not None:
        message = row.message or str(error) or "Error."
        headers = dict(error.headers) if isinstance(error, HttpError) else {}
        if isinstance(error, Throttled):
            headers["Retry-After"] = str(error.retry_after)
        elif row.status == 503:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return row.status, row.code, message, headers
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return (
            503,
            503.2,
            "The database connection was lost; please retry.",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return 500, 500.1, _INTERNAL, {}


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
    body: dict[str, Any] = {"code": code, "message": message}
    if isinstance(error, AlreadyExists):
        body["details"] = error.details
    return Response(body, status_code=status, headers=headers)


def _ui_error(
    request: Request[Any, Any, Any], status: int, message: str, headers: dict[str, str]
) -> Response[Any]:
    """The supervisor UI: to the login page when logged out, else a readable error page."""
    from urllib.parse import quote

    from litestar.response import Redirect, Template

    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"/login?next={quote(target)}", status_code=303)
    from .ui.i18n import error_text

    title, message = error_text(status, message)
    if request.headers.get("hx-request") == "true":
        return Response(message, status_code=status, media_type="text/plain", headers=headers)
    return Template(
        template_name="error.html",
        status_code=status,
        headers=headers,
        context={"request": request, "status": status, "title": title, "message": message},
    )
