"""Logs: one access line per request, tagged with a request id, as text or JSON lines.

Every request gets an id: a sane incoming `X-Request-ID` (set by a proxy in front), else a new
one. It is echoed in the `X-Request-ID` response header and attached to every record logged
while the request runs (a context variable, which follows the request into worker threads),
so an error log line can be matched with the access line and with what the client saw.

Nothing secret is written: the access line has method, path, status, duration and client and
never headers, cookies or the query string; app-user keys and session tokens in paths
(`/v1/key/{key}/…`, `/f/{key}/…`, `/v1/sessions/{token}`) become placeholders in every line,
access or not, and in tracebacks.

`JEBOL_LOG_FORMAT=json` writes one JSON object per line (time, level, logger, message,
request_id, and for access lines method, path, status, duration_ms, client, and `note` when
the request ended without a response the client saw).

A request whose connection ends early is the client's doing, not a fault of ours, and anyone
can cause it at will: it is one INFO access line with status 499 (nginx's "client closed
request") and a note saying what happened, never an ERROR, a traceback or a 500. That covers a
client that goes away mid-body (server.uploads.BodyTimeout turns the disconnect into
ClientGone) and a body the HTTP layer refused as malformed (h11 answers its own 400, closes
the connection, and the handler sees the same disconnect; uvicorn's one line about it is INFO
here too, see QuietClientErrors).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import anyio
import h11
import msgspec
from litestar.logging.config import LoggingConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: ContextVar[str | None] = ContextVar("jebol_request_id", default=None)
REQUEST_ID_HEADER = "x-request-id"
# What a proxy's request id looks like (UUIDs, hex, Heroku/AWS styles); anything else is
# replaced, so a client cannot write arbitrary text (or fake log lines) into the logs.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Every segment after /v1/key/ and /v1/sessions/ is a secret by construction; under /f/ only
# key-shaped ones (the service worker and its scripts live there too).
_SECRET_IN_PATH = re.compile(r"(/v1/key/|/v1/sessions/)[^/\s\"?#]+|(/f/)[A-Za-z0-9!$]{32,}")
ACCESS = logging.getLogger("jebol.access")
_QUIET_PATHS = ("/health/",)  # probes every few seconds: logged at DEBUG
CLIENT_GONE = 499  # the status in access lines of requests whose client saw no response of ours
_NOTE = "jebol.note"  # scope key: why the request ended without a response the client saw
# How long to wait for the server to notice a connection it has closed itself (see RequestLog).
_CLOSE_WAIT_SECONDS = 2.0


def note_client_gone(scope: Scope, why: str) -> None:
    """Mark the running request as ended by its client (the access line says `why`)."""
    scope[_NOTE] = why


def redact(text: str) -> str:
    """`text` with app-user keys and session tokens in URL paths replaced by placeholders."""
    return _SECRET_IN_PATH.sub(_placeholder, text)


def _placeholder(match: re.Match[str]) -> str:
    if match.group(1) == "/v1/sessions/":
        return "/v1/sessions/<token>"
    return f"{match.group(1) or match.group(2)}<key>"


class RedactKeys(logging.Filter):
    """For loggers whose lines we do not format ourselves (uvicorn's access log, when it is on):
    app-user keys travel in URL paths and would hand a phone's credentials to log readers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


class RequestIdFilter(logging.Filter):
    """Attach the running request's id to every record a handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record, not as it was at configuration (a test
    runner swaps it per test; a handler bound to a closed stream would fail)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201 - a text stream
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "client", "note")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
        }
        for name in self.ACCESS_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        elif record.stack_info:
            entry["error"] = redact(self.formatStack(record.stack_info))
        return msgspec.json.encode(entry).decode()


class QuietClientErrors(logging.Filter):
    """For uvicorn's error logger: "Invalid HTTP request received." (h11 refused a request's
    head or body framing, such as a bad chunk size, and answered 400 itself) is the client's
    error and can be sent by anyone at will, so it is INFO, not a WARNING that alerts."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith(
            "Invalid HTTP request received"
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def dict_config(log_format: str) -> dict[str, Any]:
    """The logging configuration (logging.config.dictConfig's schema) for both the app and
    uvicorn: our formatter on stderr for every logger. uvicorn's access log is silenced:
    :class:`RequestLog` writes the access lines (with ids, without query strings)."""
    formatter = "JsonFormatter" if log_format == "json" else "TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "server.logs.RequestIdFilter"},
            "client_errors": {"()": "server.logs.QuietClientErrors"},
        },
        "formatters": {"jebol": {"()": f"server.logs.{formatter}"}},
        # Litestar adds a queue-listener handler (a thread per app) unless one is named.
        "handlers": {"console": _console(), "queue_listener": _console()},
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {
            "litestar": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO", "filters": ["client_errors"]},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def _console() -> dict[str, Any]:  # dictConfig consumes its entries: one dict per handler
    return {"()": "server.logs.StderrHandler", "formatter": "jebol", "filters": ["request_id"]}


def logging_config(log_format: str) -> LoggingConfig:
    """The same configuration in Litestar's form, applied when the app is created (so a worker
    that imports server.asgi:app logs the same way as `jebol serve`)."""
    config = dict_config(log_format)
    del config["version"]
    return LoggingConfig(**config)


class RequestLog:
    """ASGI wrapper around the whole app: the request id and the access line.

    It wraps the app's own handler rather than being a Litestar middleware, because route
    middleware never sees requests that match no route (a 404 or 405 still deserves an id and
    a line). Litestar's LoggingMiddleware logs request and response as separate lines without
    a duration, so it is not used.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        path = scope["path"]  # as it came: the router trims a trailing slash in the scope
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        status: int | None = None
        unsent = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, unsent
            if unsent:
                return  # the rest of a response that could not start
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
                try:
                    await send(message)
                except (h11.LocalProtocolError, OSError) as error:
                    if isinstance(error, h11.LocalProtocolError) and not str(error).startswith(
                        "can't handle event type"
                    ):
                        raise  # a response h11 cannot write (a bad header): our bug
                    # The connection already had its answer: h11 refused the body as malformed
                    # (its own 400) and closed, before the handler, which read no body, replied.
                    unsent = True
                    note_client_gone(
                        scope,
                        "response not sent: the connection was already "
                        "closed (a malformed request the HTTP layer refused)",
                    )
                return
            await send(message)

        token = REQUEST_ID.set(request_id)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
            if unsent:
                await _until_closed(receive)
        except Exception:
            status = status or 500
            raise
        finally:
            if _NOTE in scope:
                status = CLIENT_GONE
            _log_access(scope, path, status, time.perf_counter() - start)
            REQUEST_ID.reset(token)


async def _until_closed(receive: Receive) -> None:
    """Wait (briefly) until the server has seen the connection it closed go: uvicorn reports a
    handler that returns with its response unfinished as an ERROR unless it knows the
    connection is gone, which it learns one turn of the event loop after closing it."""
    with anyio.move_on_after(_CLOSE_WAIT_SECONDS):
        while (await receive())["type"] != "http.disconnect":
            pass


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_ID.fullmatch(text) else None
    return None


def _log_access(scope: Scope, path: str, status: int | None, seconds: float) -> None:
    path = redact(path)
    level = logging.DEBUG if path.startswith(_QUIET_PATHS) else logging.INFO
    if not ACCESS.isEnabledFor(level):
        return
    client = (scope.get("client") or ("-",))[0]
    duration_ms = round(seconds * 1000, 1)
    note = scope.get(_NOTE)
    extra = {
        "method": scope["method"],
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
        "client": client,
    }
    if note:
        extra["note"] = note
    ACCESS.log(
        level,
        '%s "%s %s" %s %.1f ms%s',
        client,
        scope["method"],
        path,
        status if status is not None else "-",
        duration_ms,
        f" ({note})" if note else "",
        extra=extra,
    )
