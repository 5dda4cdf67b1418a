"""Request logs: an id per request (header, access line, error lines) and no secrets.

`test_json_logs_of_a_real_server` runs `jebol serve` as a process with JEBOL_LOG_FORMAT=json
and reads what it writes; the others run in process on every backend.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from server.app import Services
from server.settings import Settings
from storage import forms as form_store
from storage import roles, users
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import make_app_user, make_project, publish
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def test_request_id_is_echoed_or_made(client):
    kept = client.get("/health/live", headers={"X-Request-ID": "lb-7f3a:01.x"})
    assert kept.headers["x-request-id"] == "lb-7f3a:01.x"
    for bad in ("has spaces", "x" * 200, "<script>", ""):
        made = client.get("/health/live", headers={"X-Request-ID": bad})
        assert GENERATED_ID.fullmatch(made.headers["x-request-id"]), bad
    first, second = (client.get("/v1/nowhere").headers["x-request-id"] for _ in range(2))
    assert first != second and GENERATED_ID.fullmatch(first)  # unmatched routes get one too


def test_text_logs_tag_access_and_error_lines_with_the_id(services, capsys, monkeypatch):
    project = make_project(services)
    app_user = make_app_user(services, project)

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(form_store, "list_forms", explode)
    with make_client(services, log_format="text") as client:  # logging is set up here
        response = client.get(
            f"/v1/key/{app_user.token}/projects/{project.id}/formList",
            headers={**HEADERS, "X-Request-ID": "req-text-1"},
        )
    assert response.status_code == 500 and response.headers["x-request-id"] == "req-text-1"
    lines = [line for line in capsys.readouterr().err.splitlines() if "[req-text-1]" in line]
    assert any(
        " ERROR jebol.errors [req-text-1] GET /v1/key/<key>/projects/" in line for line in lines
    ), lines
    assert any(
        " INFO jebol.access [req-text-1] " in line
        and f'"GET /v1/key/<key>/projects/{project.id}/formList" 500 ' in line
        for line in lines
    ), lines
    assert app_user.token not in capsys.readouterr().err + "\n".join(lines)


@pytest.fixture
def world(tmp_path):
    """A data folder with a project, a form, an app user and an admin with two sessions."""
    env = {
        "JEBOL_DATA_DIR": str(tmp_path / "data"),
        "JEBOL_SECRET_KEY": "logs-test",
        "JEBOL_HOST": "127.0.0.1",
        "JEBOL_PORT": str(free_port()),
        "JEBOL_LOG_FORMAT": "json",
    }
    services = Services(Settings.from_env(env))
    services.prepare()
    project = make_project(services)
    publish(services, project, "tanpa_media")
    app_user = make_app_user(services, project)
    roles.assign_form(services.db, project.id, "tanpa_media", app_user.actor.id)
    email, password = f"admin-{uuid.uuid4().hex[:6]}@example.org", f"Sandi-{uuid.uuid4().hex}"
    admin = users.create_user(services.db, email, password, is_admin=True)
    token, _ = users.create_session(services.db, admin.actor_id, 1)
    other_token, _ = users.create_session(services.db, admin.actor_id, 1)
    services.db.dispose()
    return {
        "env": env,
        "project": project.id,
        "key": app_user.token,
        "email": email,
        "password": password,
        "token": token,
        "other_token": other_token,
    }


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--no-setup"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def test_json_logs_of_a_real_server(world, tmp_path):
    """Bearer, Basic, an app-user key in the path, a session token in the path, a cookie and
    a query string: none of their secrets is written; every line is JSON; ids match."""
    base = f"http://127.0.0.1:{world['env']['JEBOL_PORT']}"
    key, project = world["key"], world["project"]
    basic = base64.b64encode(f"{world['email']}:{world['password']}".encode()).decode()
    bearer = {"Authorization": f"Bearer {world['token']}"}
    log = tmp_path / "server.log"
    process = _serve(world["env"], log)
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get("/health/live").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            calls = [
                (
                    "GET",
                    "/v1/users/current",
                    {
                        **bearer,
                        "X-Request-ID": "req-bearer-1",
                        "Cookie": "jebol_session=COOKIE-SECRET-1",
                    },
                ),
                (
                    "GET",
                    "/v1/projects?access_token=QUERY-SECRET-1",
                    {"Authorization": f"Basic {basic}"},
                ),
                ("GET", f"/v1/key/{key}/projects/{project}/formList", HEADERS),
                ("GET", f"/f/{key}/", {}),
                ("DELETE", f"/v1/sessions/{world['other_token']}", bearer),
            ]
            ids = {}
            for method, path, headers in calls:
                response = http.request(method, path, headers=headers)
                assert response.status_code == 200, (path, response.text)
                ids[path.split("?")[0]] = response.headers["x-request-id"]
    finally:
        _stop(process)
    output = log.read_text()
    for secret in (
        world["token"],
        world["other_token"],
        world["password"],
        basic,
        key,
        "COOKIE-SECRET-1",
        "QUERY-SECRET-1",
    ):
        assert secret not in output
    entries = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message", "request_id"} <= set(e) for e in entries)
    access = {e["request_id"]: e for e in entries if e["logger"] == "jebol.access"}
    assert ids["/v1/users/current"] == "req-bearer-1"
    assert access["req-bearer-1"]["path"] == "/v1/users/current"
    assert access["req-bearer-1"]["status"] == 200
    assert access["req-bearer-1"]["client"] == "127.0.0.1"
    assert access["req-bearer-1"]["duration_ms"] >= 0
    assert access[ids["/v1/projects"]]["path"] == "/v1/projects"
    assert (
        access[ids[f"/v1/key/{key}/projects/{project}/formList"]]["path"]
        == f"/v1/key/<key>/projects/{project}/formList"
    )
    assert access[ids[f"/f/{key}/"]]["path"] == "/f/<key>/"
    assert access[ids[f"/v1/sessions/{world['other_token']}"]]["path"] == "/v1/sessions/<token>"
    assert any(e["logger"].startswith("uvicorn") for e in entries)  # uvicorn's lines too


def _raw(port: int, head: str, body: bytes, close_early: bool) -> bytes:
    """Send a request head and (part of) a body on a socket; what came back, if anything."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(head.encode() + body)
        if close_early:
            time.sleep(0.3)
            return b""
        sock.settimeout(5)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        return reply
    finally:
        sock.close()


def test_cut_bodies_are_info_lines_of_a_real_server(world, tmp_path):
    """`jebol serve` as deployed (JSON logs): a submission whose client goes away mid-body,
    one whose chunked framing is bad mid-body, and one whose first chunk size is bad. Each is
    one INFO access line, status 499 with a note (no ERROR, no traceback, no 500); h11's own
    400 for the bad framing is one INFO line of uvicorn's; the next submission is stored."""
    port = int(world["env"]["JEBOL_PORT"])
    path = f"/v1/key/{world['key']}/projects/{world['project']}/submission"
    xml = instance_xml(
        "tanpa_media",
        "2024010101",
        new_instance_id(),
        "<catatan>" + "x" * 20_000 + "</catatan><foto/>",
    )
    part = (
        b'--b\r\nContent-Disposition: form-data; name="xml_submission_file"; '
        b'filename="s.xml"\r\nContent-Type: text/xml\r\n\r\n' + xml + b"\r\n--b--\r\n"
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nX-OpenRosa-Version: 1.0\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nX-Request-ID: {id}\r\n{length}\r\n"
    )
    half = part[: len(part) // 2]
    log = tmp_path / "server.log"
    process = _serve(world["env"], log)
    try:
        _wait_until_up(process, port, log)
        assert (
            _raw(
                port,
                head.format(id="cut-gone", length=f"Content-Length: {len(part)}\r\n"),
                half,
                close_early=True,
            )
            == b""
        )
        chunked = head.format(id="{id}", length="Transfer-Encoding: chunked\r\n")
        bad_mid = _raw(
            port,
            chunked.format(id="cut-bad-mid"),
            f"{len(half):x}\r\n".encode() + half + b"\r\nzz\r\n",
            close_early=False,
        )
        bad_first = _raw(
            port, chunked.format(id="cut-bad-first"), b"-5\r\n" + part, close_early=False
        )
        assert bad_mid.startswith(b"HTTP/1.1 400 ") and bad_first.startswith(b"HTTP/1.1 400 ")
        sent = httpx.post(
            f"http://127.0.0.1:{port}{path}",
            timeout=10,
            headers={**HEADERS, "X-Request-ID": "cut-after"},
            files=[("xml_submission_file", ("s.xml", xml, "text/xml"))],
        )
        assert sent.status_code == 201, sent.text
        time.sleep(0.5)
    finally:
        _stop(process)
    output = log.read_text()
    entries = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert not [e for e in entries if e["level"] not in ("INFO", "DEBUG")], output
    assert "Traceback" not in output and "error" not in {k for e in entries for k in e}
    access = {e["request_id"]: e for e in entries if e["logger"] == "jebol.access"}
    for request_id in ("cut-gone", "cut-bad-mid", "cut-bad-first"):
        line = access[request_id]
        assert line["level"] == "INFO" and line["status"] == 499, line
        assert "request body cut off" in line["note"] and line["note"] in line["message"], line
        assert sum(1 for e in entries if e["request_id"] == request_id) == 1, output
    assert access["cut-after"]["status"] == 201
    refused = [e for e in entries if e["message"] == "Invalid HTTP request received."]
    assert len(refused) == 2 and all(e["level"] == "INFO" for e in refused), refused


def _wait_until_up(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
