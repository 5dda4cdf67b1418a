"""Attacks that need a real socket, against a real uvicorn (tests.live.LiveServer): bodies that
trickle or stop (cut off by JEBOL_BODY_TIMEOUT_SECONDS, 2 s here), bodies over the limit cut
mid-stream, clients that vanish mid-body, and requests that are not valid HTTP. Each ends in
a 4xx or a closed connection within a bounded time, stores nothing, holds nothing, and the
server answers a normal request afterwards."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from forms.instance import MAX_SUBMISSION_XML_BYTES
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.factories import jpeg, photo_body
from tests.live import LiveServer
from tests.security.conftest import (
    FORM_ID,
    MULTIPART_BOUNDARY,
    multipart_submission,
    nothing_stored,
    stored_state,
)

BODY_TIMEOUT = 2.0
LIMIT = 200_000  # max_submission_bytes for these servers: oversize bodies stay small


@pytest.fixture(scope="module")
def live(services):
    with LiveServer(
        services, body_timeout_seconds=BODY_TIMEOUT, max_submission_bytes=LIMIT
    ) as server:
        yield server


@pytest.fixture
def transport_only(services):
    """For the attacks on the HTTP layer itself (trickles, stalls, bytes that are not HTTP):
    what they test does not depend on the storage backend, so they run on SQLite only."""
    if services.db.dialect != "sqlite":
        pytest.skip("the HTTP layer is the same on every backend: runs on SQLite")


@pytest.fixture
def site(services, world, live):
    draft = httpx.post(f"{live.url}{world.form}/draft", headers=world.bearer)
    assert draft.status_code == 200
    return world, live


@dataclass(frozen=True)
class Upload:
    """A request whose head is sent at once and whose body can then be dribbled."""

    name: str
    head: Callable  # (world) -> (method, path, headers)
    body: Callable[[], bytes]


def _openrosa(world):
    return (
        "POST",
        f"{world.openrosa}/submission",
        {**HEADERS, "Content-Type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"},
    )


def _rest_xml(world):
    return "POST", f"{world.form}/submissions", {**world.bearer, "Content-Type": "application/xml"}


def _draft_media(world):
    return (
        "POST",
        f"{world.form}/draft/attachments/logo.png",
        {**world.bearer, "Content-Type": "image/png"},
    )


def _ui_login(world):
    return "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"}


UPLOADS = [
    Upload(
        "openrosa-submission",
        _openrosa,
        lambda: multipart_submission(
            instance_xml(FORM_ID, "1", new_instance_id(), photo_body()), jpeg(seed=80)
        ),
    ),
    Upload(
        "rest-submission",
        _rest_xml,
        lambda: instance_xml(FORM_ID, "1", new_instance_id(), photo_body(main=None)),
    ),
    Upload("draft-media", _draft_media, lambda: jpeg(size=200, seed=81)),
    Upload(
        "ui-login",
        _ui_login,
        lambda: b"email=a%40b.c&password=kata-sandi-panjang&next=%2F" + b"&x=" + b"y" * 2000,
    ),
]


def _head(
    live: LiveServer,
    method: str,
    path: str,
    headers: dict[str, str],
    length: int | None,
) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=15)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{live.port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _read_reply(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection (or the deadline)."""
    data = b""
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


def _dribble(sock: socket.socket, body: bytes, every: float, until: float) -> str:
    """Send one byte every `every` seconds until the server answers or closes, or `until`.
    Returns what ended it: the reply's status line, or 'closed'."""
    for byte in body:
        if time.monotonic() > until:
            return "still open"
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return "closed"
        sock.settimeout(every)
        try:
            reply = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return "closed"
        return reply.split(b"\r\n", 1)[0].decode() if reply else "closed"
    return "body sent"


def _tmp_files(services) -> int:
    return stored_state(services, blobs=False)["tmp files"]


def _eventually_no_tmp_files(services, before: int) -> None:
    deadline = time.monotonic() + 5
    while _tmp_files(services) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _tmp_files(services) <= before


def _alive(live: LiveServer, world) -> None:
    assert httpx.get(f"{live.url}/health/live", timeout=5).status_code == 200
    xml = instance_xml(FORM_ID, "1", new_instance_id(), photo_body(main=None))
    sent = httpx.post(
        f"{live.url}{world.openrosa}/submission",
        headers=HEADERS,
        timeout=10,
        files=[("xml_submission_file", ("s.xml", xml, "text/xml"))],
    )
    assert sent.status_code == 201, sent.text


def _in_parallel(attack: Callable, world, live) -> dict[str, object]:
    """Run `attack(upload, world, live)` for every upload at once (each waits out the body
    timeout, so in a row they would take four times as long); results by upload name."""
    results: dict[str, object] = {}

    def run(upload: Upload) -> None:
        results[upload.name] = attack(upload, world, live)

    threads = [threading.Thread(target=run, args=(upload,)) for upload in UPLOADS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _trickle(upload: Upload, world, live) -> tuple[str, float]:
    body = upload.body()
    started = time.monotonic()
    sock = _head(live, *upload.head(world), len(body))
    try:
        ended = _dribble(sock, body, every=1.0, until=started + 4 * BODY_TIMEOUT + 2)
    finally:
        sock.close()
    return ended, time.monotonic() - started


def test_a_body_trickling_a_byte_a_second_is_cut_off(services, transport_only, site):
    """At every kind of body-reading route (multipart submission, raw XML, streamed media, a
    UI form): a 408 or a closed connection within the timeout plus a second or two."""
    world, live = site
    with nothing_stored(services):
        results = _in_parallel(_trickle, world, live)
        _eventually_no_tmp_files(services, 0)
    assert set(results) == {upload.name for upload in UPLOADS}
    for name, (ended, elapsed) in results.items():
        assert ended in ("HTTP/1.1 408 Request Timeout", "closed"), (name, ended)
        assert elapsed < 2 * BODY_TIMEOUT + 3, (name, elapsed)
    _alive(live, world)


def _stop_halfway(upload: Upload, world, live) -> tuple[bytes, float]:
    body = upload.body()
    sock = _head(live, *upload.head(world), len(body))
    try:
        sock.sendall(body[: len(body) // 2])
        started = time.monotonic()
        reply = _read_reply(sock, started + BODY_TIMEOUT + 5)
        return reply, time.monotonic() - started
    finally:
        sock.close()


def test_a_body_that_stops_halfway_is_a_408(services, site):
    world, live = site
    with nothing_stored(services):
        results = _in_parallel(_stop_halfway, world, live)
        _eventually_no_tmp_files(services, 0)
    assert set(results) == {upload.name for upload in UPLOADS}
    for name, (reply, waited) in results.items():
        assert reply.startswith(b"HTTP/1.1 408"), (name, reply[:200])
        assert b"too slowly" in reply and b"connection: close" in reply.lower(), name
        assert BODY_TIMEOUT - 0.5 < waited < BODY_TIMEOUT + 3, (name, waited)
    _alive(live, world)


@pytest.mark.parametrize("upload", UPLOADS[:3], ids=[u.name for u in UPLOADS[:3]])
def test_a_client_that_vanishes_mid_body_leaves_nothing(services, site, upload):
    world, live = site
    body = upload.body()
    with nothing_stored(services):
        sock = _head(live, *upload.head(world), len(body))
        sock.sendall(body[: len(body) * 2 // 3])
        time.sleep(0.3)
        sock.close()
        _eventually_no_tmp_files(services, 0)
    _alive(live, world)


def test_a_body_that_arrives_steadily_is_not_cut(services, transport_only, site):
    """The rule is about trickles: a body paced in 16 KiB pieces over 3 s (longer than the
    timeout, faster than the minimum rate) is stored."""
    world, live = site
    iid = new_instance_id()
    body = multipart_submission(
        instance_xml(FORM_ID, "1", iid, photo_body()), jpeg(seed=82) + bytes(150_000)
    )
    sock = _head(live, *_openrosa(world), len(body))
    try:
        for start in range(0, len(body), 16384):
            sock.sendall(body[start : start + 16384])
            time.sleep(3 / (len(body) / 16384))
        reply = _read_reply(sock, time.monotonic() + 10)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 201"), reply[:300]


def test_stalled_clients_hold_no_worker(services, transport_only, site):
    """Twenty connections stalled mid-body: the server still answers at once (the waits are
    on the event loop, not in worker threads), and all twenty are cut off by the timeout."""
    world, live = site
    body = UPLOADS[0].body()
    socks = []
    for _ in range(20):
        sock = _head(live, *_openrosa(world), len(body))
        sock.sendall(body[:100])
        socks.append(sock)
    try:
        started = time.monotonic()
        _alive(live, world)
        assert time.monotonic() - started < 3
        replies = [_read_reply(sock, time.monotonic() + BODY_TIMEOUT + 5) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert all(reply.startswith(b"HTTP/1.1 408") for reply in replies)
    _eventually_no_tmp_files(services, 0)


# ---- bodies over the limit -----------------------------------------------------------------


def test_a_declared_oversize_body_is_413_before_it_is_sent(services, site):
    world, live = site
    with nothing_stored(services):
        sock = _head(live, *_openrosa(world), LIMIT * 50)
        try:
            reply = _read_reply(sock, time.monotonic() + 5)  # nothing of the body was sent
        finally:
            sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    _alive(live, world)


@pytest.mark.parametrize(
    "upload, limit",
    [(UPLOADS[0], LIMIT), (UPLOADS[1], MAX_SUBMISSION_XML_BYTES)],
    ids=[UPLOADS[0].name, UPLOADS[1].name],
)
def test_a_chunked_body_over_the_limit_is_cut_mid_stream(services, site, upload, limit):
    """No Content-Length to refuse up front: the server counts as it reads and answers 413
    once past the route's limit, without reading the rest."""
    world, live = site
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    start = upload.body()[:-100]  # a valid beginning: the parser keeps reading
    with nothing_stored(services):
        sock = _head(live, *upload.head(world), None)
        sock.sendall(f"{len(start):x}\r\n".encode() + start + b"\r\n")
        sent, ended = 0, "sent everything"
        try:
            while sent < limit * 3:
                try:
                    sock.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    ended = "closed"
                    break
                sent += len(piece)
            reply = _read_reply(sock, time.monotonic() + 5)
        finally:
            sock.close()
        _eventually_no_tmp_files(services, 0)
    assert reply.startswith(b"HTTP/1.1 413") or ended == "closed", (ended, reply[:200])
    _alive(live, world)


# ---- requests that are not HTTP ------------------------------------------------------------

RAW = {
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200),  # a TLS hello
    "bad-request-line": b"GET  /health/live  HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    "header-without-colon": b"GET /health/live HTTP/1.1\r\nHost x\r\n\r\n",
    "nul-in-header": b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "huge-header": b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: "
    + b"a" * 200_000
    + b"\r\n\r\n",
    "negative-length": b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "two-lengths": b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Content-Length: 7\r\n\r\nabcde",
    "length-and-chunked": b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
    "bad-chunk-size": b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\nabc\r\n0\r\n\r\n",
    "unknown-transfer-encoding": b"POST /login HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: gzip, identity\r\n\r\n",
    "non-ascii-method": b"G\xc3\x89T /health/live HTTP/1.1\r\nHost: x\r\n\r\n",
    "http-2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}


@pytest.mark.parametrize("name", RAW)
def test_requests_that_are_not_http_are_refused(transport_only, site, name):
    world, live = site
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    try:
        try:
            sock.sendall(RAW[name])
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = _read_reply(sock, time.monotonic() + 2)
    finally:
        sock.close()
    status = reply.split(b"\r\n", 1)[0]
    assert reply == b"" or status.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), reply[:200]
    _alive(live, world)
