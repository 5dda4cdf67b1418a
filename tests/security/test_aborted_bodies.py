"""Request bodies cut short, against a real uvicorn (h11) logging as `jebol serve` does: a
client that goes away mid-body, and a chunked body whose framing is malformed (a bad chunk
size, mid-body or first). Anyone can send these at will, so none may write an ERROR, a
traceback or a 500 into the logs (which would fill them and trip alerts): each is one INFO
access line with status 499 and a note saying what happened, and h11's own refusal of a
malformed body (its 400) is one INFO line of uvicorn's. Nothing is stored, no temporary file
stays, and a normal submission afterwards is stored (201).

Every route that takes a body is tried: the OpenRosa submission (multipart, streamed), the
REST submission (raw XML), the form upload (XLSForm bytes), the draft and submission
attachment uploads (streamed), a JSON body (a comment) and the UI's login form.
"""

from __future__ import annotations

import logging.config
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from server import logs
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.factories import jpeg, photo_body
from tests.live import LiveServer
from tests.security.conftest import (
    FORM_ID,
    MULTIPART_BOUNDARY,
    make_world,
    multipart_submission,
    nothing_stored,
    stored_state,
)

LIMIT = 2_000_000
KINDS = ("vanish", "vanish-chunked", "bad-chunk-mid", "bad-chunk-first")


@pytest.fixture(scope="module")
def live(services):
    with LiveServer(services, body_timeout_seconds=10, max_submission_bytes=LIMIT) as server:
        # LiveServer's uvicorn.Config set up uvicorn's own handlers; log as `jebol serve` does
        # (server.cli: logs.dict_config for uvicorn and the app alike).
        logging.config.dictConfig(logs.dict_config("text"))
        yield server


@pytest.fixture(scope="module")
def world(services, live):
    return make_world(services)


@dataclass(frozen=True)
class Route:
    name: str
    head: Callable  # (world) -> (method, path, headers)
    body: Callable[[], bytes]


def _bearer(world, content_type: str) -> dict[str, str]:
    return {**world.bearer, "Content-Type": content_type}


ROUTES = [
    Route(
        "openrosa-submission",
        lambda w: (
            "POST",
            f"{w.openrosa}/submission",
            {**HEADERS, "Content-Type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"},
        ),
        lambda: multipart_submission(
            instance_xml(FORM_ID, "1", new_instance_id(), photo_body()), jpeg(seed=90)
        ),
    ),
    Route(
        "rest-submission",
        lambda w: ("POST", f"{w.form}/submissions", _bearer(w, "application/xml")),
        lambda: instance_xml(FORM_ID, "1", new_instance_id(), photo_body(main=None)),
    ),
    Route(
        "form-upload",
        lambda w: (
            "POST",
            f"/v1/projects/{w.project_id}/forms",
            _bearer(w, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ),
        lambda: b"PK\x03\x04" + bytes(range(256)) * 40,
    ),
    Route(
        "draft-attachment",
        lambda w: ("POST", f"{w.form}/draft/attachments/logo.png", _bearer(w, "image/png")),
        lambda: jpeg(size=200, seed=91),
    ),
    Route(
        "submission-attachment",
        lambda w: (
            "POST",
            f"{w.form}/submissions/uuid:{uuid.uuid4()}/attachments/utama.jpg",
            _bearer(w, "image/jpeg"),
        ),
        lambda: jpeg(size=200, seed=92),
    ),
    Route(
        "json-comment",
        lambda w: (
            "POST",
            f"{w.form}/submissions/uuid:{uuid.uuid4()}/comments",
            _bearer(w, "application/json"),
        ),
        lambda: b'{"body": "' + b"k" * 8000 + b'"}',
    ),
    Route(
        "ui-login",
        lambda w: ("POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"}),
        lambda: b"email=a%40b.c&password=kata-sandi-panjang&next=%2F&x=" + b"y" * 8000,
    ),
]


def _send_head(
    live: LiveServer,
    method: str,
    path: str,
    headers: dict[str, str],
    length: int | None,
    request_id: str,
) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=15)
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{live.port}",
        f"X-Request-ID: {request_id}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _reply(sock: socket.socket, seconds: float) -> bytes:
    data, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _abort(live: LiveServer, world, route: Route, kind: str, request_id: str) -> bytes:
    """Send `route`'s request cut short as `kind`; what the server answered (maybe nothing)."""
    method, path, headers = route.head(world)
    body = route.body()
    part = body[: len(body) * 2 // 3]
    if kind == "vanish":
        sock = _send_head(live, method, path, headers, len(body), request_id)
        sock.sendall(part)
        time.sleep(0.3)  # the handler is reading the body
        sock.close()
        return b""
    sock = _send_head(live, method, path, headers, None, request_id)
    try:
        if kind == "vanish-chunked":
            sock.sendall(_chunk(part))
            time.sleep(0.3)
            return b""
        if kind == "bad-chunk-mid":
            sock.sendall(_chunk(part))
            time.sleep(0.3)
            sock.sendall(b"zz\r\n" + body[len(part) :] + b"\r\n0\r\n\r\n")
        else:  # bad-chunk-first
            sock.sendall(b"-1\r\n" + body + b"\r\n0\r\n\r\n")
        return _reply(sock, 5)
    finally:
        sock.close()


class Log:
    """What the server writes to stderr during a test (its records are written from the
    server's thread, a little after the client sees the connection end)."""

    def __init__(self, capsys) -> None:
        self.capsys, self.text = capsys, ""

    def read(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text

    def wait_for(self, pattern: str, seconds: float = 5) -> re.Match[str]:
        deadline = time.monotonic() + seconds
        while True:
            found = re.search(pattern, self.read())
            if found or time.monotonic() > deadline:
                assert found, (pattern, self.text[-3000:])
                return found
            time.sleep(0.05)


def _assert_quiet(text: str) -> None:
    assert "ERROR" not in text and "Traceback" not in text, text[-4000:]
    assert not re.search(r'" 500 ', text), text[-4000:]
    assert "WARNING" not in text, text[-4000:]


def _alive(live: LiveServer, world) -> None:
    import httpx

    xml = instance_xml(FORM_ID, "1", new_instance_id(), photo_body(main=None))
    sent = httpx.post(
        f"{live.url}{world.openrosa}/submission",
        headers=HEADERS,
        timeout=10,
        files=[("xml_submission_file", ("s.xml", xml, "text/xml"))],
    )
    assert sent.status_code == 201, sent.text


def _tmp_files(services) -> int:
    return stored_state(services, blobs=False)["tmp files"]


def _until_no_tmp_files(services) -> None:
    deadline = time.monotonic() + 5
    while _tmp_files(services) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _tmp_files(services) == 0


@pytest.fixture
def transport_only(services):
    """The whole matrix tests the HTTP layer, the same on every backend: SQLite only (the
    backend-dependent part, nothing stored, has its own test on every backend)."""
    if services.db.dialect != "sqlite":
        pytest.skip("the HTTP layer is the same on every backend: runs on SQLite")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_a_cut_body_is_one_info_line_not_an_error(
    services, transport_only, live, world, capsys, route, kind
):
    log = Log(capsys)
    request_id = f"abort-{route.name}-{kind}"
    reply = _abort(live, world, route, kind, request_id)
    if kind.startswith("bad-chunk"):
        # h11 refuses the framing and answers 400 itself, whatever the handler is doing.
        assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
        log.wait_for(r"INFO uvicorn\.error \[-\] Invalid HTTP request received\.")
    access = log.wait_for(rf"INFO jebol\.access \[{request_id}\] .*\n").group(0)
    assert '" 499 ' in access and "(" in access, access  # the status and the note
    _until_no_tmp_files(services)
    _alive(live, world)
    time.sleep(0.2)  # the 201's access line, and anything logged late
    _assert_quiet(log.read())
    assert len([line for line in log.text.splitlines() if f"[{request_id}]" in line]) == 1


@pytest.mark.parametrize("kind", ["vanish", "bad-chunk-mid"])
def test_nothing_is_stored_of_a_cut_submission(services, live, world, capsys, kind):
    """On every backend: the cut OpenRosa submission (photo and all) leaves no row, no blob
    and no temporary file, and the next submission is stored."""
    log = Log(capsys)
    request_id = f"abort-stored-{kind}-{uuid.uuid4().hex[:6]}"
    with nothing_stored(services):
        _abort(live, world, ROUTES[0], kind, request_id)
        log.wait_for(rf"\[{request_id}\] .*\" 499 ")
        _until_no_tmp_files(services)
    _alive(live, world)
    _assert_quiet(log.read())


@pytest.mark.parametrize("target", ["no-route", "no-credentials"])
def test_a_refusal_after_h11_answered_is_not_an_error(
    services, transport_only, live, world, capsys, target
):
    """Head and a bad first chunk in one packet, to a route that answers without reading the
    body (no such route: 404; no credentials: 401): h11 has answered 400 and closed before the
    handler's answer is written, which uvicorn then refuses (h11's LocalProtocolError, logged
    as "Exception in ASGI application" with a traceback). RequestLog takes that refusal as the
    connection's end: one INFO line, 499, "response not sent". (When the handler awaits
    something first, uvicorn has seen the close and drops the answer without a word.)"""
    log = Log(capsys)
    request_id = f"abort-refused-{target}"
    path = "/v1/nowhere" if target == "no-route" else f"{world.form}/submissions"
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=15)
    try:
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Request-ID: {request_id}\r\n"
                "Content-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
                "zz\r\n<data/>\r\n0\r\n\r\n"
            ).encode()
        )
        reply = _reply(sock, 5)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 400 ") and reply.count(b"HTTP/1.1") == 1, reply[:300]
    access = log.wait_for(rf"INFO jebol\.access \[{request_id}\] .*\n").group(0)
    if target == "no-route":  # answered at once: always before uvicorn sees the close
        assert '" 499 ' in access and "response not sent" in access, access
    else:  # the guard's database read lets uvicorn see the close first: its send is a no-op
        assert '" 499 ' in access or '" 401 ' in access, access
    _alive(live, world)
    time.sleep(0.2)
    _assert_quiet(log.read())
