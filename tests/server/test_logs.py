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
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from server.app import Services
from server.settings import Settings
from storage import accounts
from storage import forms as form_store
from tests.collect import HEADERS
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
        response = client.get(f"/v1/key/{app_user.token}/projects/{project.id}/formList",
                              headers={**HEADERS, "X-Request-ID": "req-text-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "req-text-1"
    lines = [line for line in capsys.readouterr().err.splitlines() if "[req-text-1]" in line]
    assert any(" ERROR jebol.errors [req-text-1] GET /v1/key/<key>/projects/" in line
               for line in lines), lines
    assert any(" INFO jebol.access [req-text-1] " in line and
               f'"GET /v1/key/<key>/projects/{project.id}/formList" 500 ' in line
               for line in lines), lines
    assert app_user.token not in capsys.readouterr().err + "\n".join(lines)


@pytest.fixture
def world(tmp_path):
    """A data folder with a project, a form, an app user and an admin with two sessions."""
    env = {"JEBOL_DATA_DIR": str(tmp_path / "data"), "JEBOL_SECRET_KEY": "logs-test",
           "JEBOL_HOST": "127.0.0.1", "JEBOL_PORT": str(free_port()), "JEBOL_LOG_FORMAT": "json"}
    services = Services(Settings.from_env(env))
    services.prepare()
    project = make_project(services)
    publish(services, project, "tanpa_media")
    app_user = make_app_user(services, project)
    accounts.grant_form_access(services.db, project.id, "tanpa_media", app_user.actor.id)
    email, password = f"admin-{uuid.uuid4().hex[:6]}@example.org", f"Sandi-{uuid.uuid4().hex}"
    admin = accounts.create_user(services.db, email, password, is_admin=True)
    token, _ = accounts.create_session(services.db, admin.actor_id, 1)
    other_token, _ = accounts.create_session(services.db, admin.actor_id, 1)
    services.db.dispose()
    return {"env": env, "project": project.id, "key": app_user.token, "email": email,
            "password": password, "token": token, "other_token": other_token}


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--no-setup"],
                                cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)


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
                ("GET", "/v1/users/current", {**bearer, "X-Request-ID": "req-bearer-1",
                                              "Cookie": "jebol_session=COOKIE-SECRET-1"}),
                ("GET", "/v1/projects?access_token=QUERY-SECRET-1",
                 {"Authorization": f"Basic {basic}"}),
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
    for secret in (world["token"], world["other_token"], world["password"], basic, key,
                   "COOKIE-SECRET-1", "QUERY-SECRET-1"):
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
    assert access[ids[f"/v1/key/{key}/projects/{project}/formList"]]["path"] == \
        f"/v1/key/<key>/projects/{project}/formList"
    assert access[ids[f"/f/{key}/"]]["path"] == "/f/<key>/"
    assert access[ids[f"/v1/sessions/{world['other_token']}"]]["path"] == \
        "/v1/sessions/<token>"
    assert any(e["logger"].startswith("uvicorn") for e in entries)  # uvicorn's lines too
