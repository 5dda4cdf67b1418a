"""Errors are JSON {code, message} with the right status, and never carry a stack trace."""

from __future__ import annotations

from tests.collect import HEADERS
from tests.factories import make_app_user, make_project


def test_internal_error_is_a_plain_500_without_trace(services, client, monkeypatch):
    project = make_project(services)
    app_user = make_app_user(services, project)

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals: /etc/passwd line 42")

    from storage import forms as form_store

    monkeypatch.setattr(form_store, "list_forms", explode)
    response = client.get(
        f"/v1/key/{app_user.token}/projects/{project.id}/formList", headers=HEADERS
    )
    assert response.status_code == 500
    assert b"secret internals" not in response.content and b"Traceback" not in response.content
    assert b"<OpenRosaResponse" in response.content  # OpenRosa routes keep their envelope


def test_rest_errors_are_json_code_and_message(services, client):
    response = client.get("/v1/projects")
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message"} and response.json()["code"] == 401.2
    missing = client.get("/v1/nowhere")
    assert missing.status_code == 404 and missing.json()["code"] == 404.1
    bad = client.post(
        "/v1/sessions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400 and set(bad.json()) == {"code", "message"}


def test_openapi_schema_describes_the_rest_api(services, client):
    schema = client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/v1/sessions",
        "/v1/projects",
        "/v1/projects/{project_id}/forms",
        "/v1/projects/{project_id}/forms/{xml_form_id}/submissions",
        "/v1/projects/{project_id}/app-users",
    ):
        assert path in paths, path
    assert not any(p.startswith("/v1/key/") for p in paths)
    assert "SessionIn" in str(schema.json()["components"]["schemas"])
    assert client.get("/schema/swagger").status_code == 200


def test_access_log_never_shows_app_user_keys():
    import logging

    from server.app import RedactKeys

    key = "A" * 60 + "b!$9"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s"',
        ("127.0.0.1:1", "POST", f"/v1/key/{key}/projects/1/submission"),
        None,
    )
    assert RedactKeys().filter(record)
    assert key not in record.getMessage() and "/v1/key/<key>/projects/1" in record.getMessage()
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s", (f"/f/{key}/",), None)
    RedactKeys().filter(record)
    assert record.getMessage() == "/f/<key>/"
