"""Receive a multipart body as a stream: each part goes to a temporary file, hashed on the way.

The request body is never held in memory: python-multipart parses each network chunk, the
part's bytes collect in a buffer of at most ~1 MiB, and a worker thread writes and hashes each
buffer (hashing dominates parsing; see the upload measurements in README). Part names are
hostile input: they are kept as data and never used as paths.

`BodyTimeout` bounds how long a request body may take: a client that stops sending, or
trickles a byte a second, is answered 408 and disconnected instead of holding a connection
and its temporary files forever (uvicorn has no such limit of its own). It also names a body
that ends in a disconnect (the client went away, or h11 refused the body's framing and closed
the connection) for what it is, ClientGone, instead of the "client disconnected prematurely"
500 (an ERROR with a traceback) that Litestar makes of it: anyone can cut a body short.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from .errors import BadRequest, BodyTooSlow, ClientGone
from .logs import note_client_gone

FLUSH_BYTES = 1024 * 1024
MAX_PARTS = 1000
MAX_NAME_BYTES = 1024
# After the first JEBOL_BODY_TIMEOUT_SECONDS a body must average at least this much: far below
# a phone on a 2G network (~10 KB/s), far above a client that trickles to hold a connection.
MIN_BODY_BYTES_PER_SECOND = 1024


class BodyTimeout:
    """ASGI middleware (on the whole app) for the routes that read a request body: each wait
    for the next piece of the body is bounded by `settings.body_timeout_seconds`, and once
    that long has passed the body must have averaged MIN_BODY_BYTES_PER_SECOND. Either failure is a 408 that closes
    the connection; the handler's own cleanup (temporary files) runs as for any error, and
    nothing is stored because nothing is ingested before the whole body is in. A disconnect
    before the body's end is ClientGone (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = scope["app"].state.settings.body_timeout_seconds
        started: float | None = None
        received = 0
        body_done = False

        async def timed_receive() -> Message:
            nonlocal started, received, body_done
            if body_done:  # waiting for a disconnect after the body is not a body read
                return await receive()
            started = started or time.monotonic()  # from the handler's first read
            with anyio.move_on_after(limit) as wait:
                message = await receive()
            if not wait.cancelled_caught and message["type"] == "http.disconnect":
                note_client_gone(
                    scope,
                    "request body cut off: the client went away, or the "
                    "HTTP layer refused its framing; nothing stored",
                )
                raise ClientGone()
            elapsed = time.monotonic() - started
            if wait.cancelled_caught or received < MIN_BODY_BYTES_PER_SECOND * (elapsed - limit):
                raise BodyTooSlow(
                    "The request body arrived too slowly (or stopped); "
                    "nothing was stored. Please send it again."
                )
            received += len(message.get("body", b""))
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        await self.app(scope, timed_receive, send)


@dataclass
class ReceivedPart:
    name: str
    filename: str | None
    content_type: str | None
    path: Path
    size: int = 0
    sha256: str = ""


@dataclass
class _Writer:
    part: ReceivedPart
    handle: Any
    digest: Any = field(default_factory=hashlib.sha256)
    buffer: bytearray = field(default_factory=bytearray)

    def flush(self) -> None:  # runs in a worker thread
        data = bytes(self.buffer)
        self.buffer.clear()
        self.handle.write(data)
        self.digest.update(data)
        self.part.size += len(data)

    def close(self) -> None:  # runs in a worker thread
        self.flush()
        self.handle.close()
        self.part.sha256 = self.digest.hexdigest()


class _Receiver:
    def __init__(self, tmp_dir: Path, part_limits: dict[str, int]) -> None:
        self.tmp_dir = tmp_dir
        self.part_limits = part_limits
        self.parts: list[ReceivedPart] = []
        self.current: _Writer | None = None
        self.finished: list[_Writer] = []
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, bytes] = {}
        self.ended = False

    # python-multipart callbacks: synchronous, cheap, no I/O
    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.decode("latin-1").lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise BadRequest(f"Too many parts: at most {MAX_PARTS} files per request.")
        _, options = parse_options_header(self.headers.get("content-disposition", b""))
        name = _text(options.get(b"name"))
        if name is None:
            raise BadRequest("A multipart part has no name.")
        fd, path = tempfile.mkstemp(prefix="part-", dir=self.tmp_dir)
        part = ReceivedPart(
            name=name,
            filename=_text(options.get(b"filename")),
            content_type=_text(self.headers.get("content-type")),
            path=Path(path),
        )
        self.parts.append(part)
        self.current = _Writer(part, os.fdopen(fd, "wb"))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        writer = self.current
        assert writer is not None
        writer.buffer += data[start:end]
        limit = self.part_limits.get(writer.part.name)
        if limit is not None and writer.part.size + len(writer.buffer) > limit:
            raise BadRequest(f"The part {writer.part.name!r} is larger than {limit} bytes.")

    def on_part_end(self) -> None:
        if self.current is not None:
            self.finished.append(self.current)
            self.current = None

    def on_end(self) -> None:
        self.ended = True

    async def drain(self) -> None:
        """Write out what the last chunk produced, in a worker thread."""
        for writer in self.finished:
            await anyio.to_thread.run_sync(writer.close)
        self.finished.clear()
        if self.current is not None and len(self.current.buffer) >= FLUSH_BYTES:
            await anyio.to_thread.run_sync(self.current.flush)


@asynccontextmanager
async def receive_multipart(
    request: Request[Any, Any, Any], tmp_dir: Path, part_limits: dict[str, int] | None = None
) -> AsyncIterator[list[ReceivedPart]]:
    """Yield the received parts; their temporary files are removed when the block ends."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise BadRequest("Expected a multipart/form-data body with a boundary.")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(tmp_dir, part_limits or {})
    callbacks = {
        name: getattr(receiver, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
            "on_end",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                await receiver.drain()
            parser.finalize()
        except MultipartParseError as error:
            raise BadRequest(f"The multipart body is malformed: {error}.") from None
        if not receiver.ended:
            raise BadRequest("The multipart body ended before its closing boundary.")
        await receiver.drain()
        yield receiver.parts
    finally:
        for writer in [receiver.current, *receiver.finished]:
            if writer is not None and not writer.handle.closed:
                writer.handle.close()
        for part in receiver.parts:
            part.path.unlink(missing_ok=True)


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_NAME_BYTES:
        raise BadRequest("A multipart part name is too long.")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


@dataclass
class ReceivedBody:
    path: Path
    size: int
    sha256: str


@asynccontextmanager
async def receive_body(
    request: Request[Any, Any, Any], tmp_dir: Path
) -> AsyncIterator[ReceivedBody]:
    """Stream a raw (possibly chunked) request body to a temporary file, hashing it."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="body-", dir=tmp_dir)
    path = Path(name)
    part = ReceivedPart(name="body", filename=None, content_type=None, path=path)
    writer = _Writer(part, os.fdopen(fd, "wb"))
    try:
        async for chunk in request.stream():
            writer.buffer += chunk
            if len(writer.buffer) >= FLUSH_BYTES:
                await anyio.to_thread.run_sync(writer.flush)
        await anyio.to_thread.run_sync(writer.close)
        yield ReceivedBody(path, part.size, part.sha256)
    finally:
        if not writer.handle.closed:
            writer.handle.close()
        path.unlink(missing_ok=True)
