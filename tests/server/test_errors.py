"""Errors are JSON {code, message} with the right status, and never carry a stack trace."""

from __future__ import annotations

import inspect

import pytest

import forms.errors
import storage.errors
from server import errors
from tests.collect import HEADERS
from tests.factories import make_app_user, make_project

# The modules whose every error class must have its row in server.errors.TABLE.
CATALOGUED = (forms.errors, storage.errors, errors)


def _error_classes() -> list[type[BaseException]]:
    return [
        cls
        for module in CATALOGUED
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == module.__name__
    ]


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance whatever the class's constructor wants (classify reads only the class,
    the message and the fields set here)."""
    error = cls.__new__(cls)
    Exception.__init__(error, "what went wrong")
    if isinstance(error, errors.HttpError):
        error.message, error.headers = "what went wrong", {}
    if isinstance(error, storage.errors.Throttled):
        error.retry_after = 7
    return error


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_error_class_has_its_row_in_the_table(cls):
    """A new error class must be given its status and code in server.errors.TABLE: falling
    back on a base class's row (or on 500) silently would hide it from the one catalogue."""
    assert cls in errors.TABLE, f"{cls.__module__}.{cls.__name__} has no row in server.errors"
    row = errors.TABLE[cls]
    status, code, message, _ = errors.classify(_instance(cls))
    assert (status, code) == (row.status, row.code)
    assert int(code) == status and message


@pytest.mark.parametrize(
    "cls, status, code",
    [
        (forms.errors.FormsError, 400, 400.1),
        (forms.errors.ODataInvalid, 400, 400.8),
        (forms.errors.FilterInvalid, 400, 400.18),
        (forms.errors.UnknownProperty, 400, 400.23),
        (forms.errors.SelectUnsupported, 400, 400.24),
        (forms.errors.InvalidSkipToken, 400, 400.35),
        (forms.errors.ODataUnsupported, 501, 501.1),
        (forms.errors.ExpandUnsupported, 501, 501.6),
        (forms.errors.SelectWithExpand, 501, 501.11),
        (storage.errors.NotFound, 404, 404.1),
        (storage.errors.XmlConflict, 409, 409.1),
        (storage.errors.Throttled, 429, 429.1),
        (errors.Unauthorized, 401, 401.2),
        (errors.ActionForbidden, 403, 403.1),
        (errors.BadRequest, 400, 400.1),
        (errors.MissingInput, 400, 400.2),
        (errors.UnexpectedValue, 400, 400.8),
        (errors.UnsupportedMedia, 415, 415.1),
        (errors.BodyTooSlow, 408, 408.1),
        (errors.ClientGone, 499, 499.1),
    ],
)
def test_central_codes_are_pinned(cls, status, code):
    assert errors.classify(_instance(cls))[:2] == (status, code)


def test_rows_carry_the_details_a_client_needs():
    assert errors.classify(_instance(storage.errors.Throttled))[3] == {"Retry-After": "7"}
    unavailable = errors.classify(storage.errors.BlobUnavailable("s3://secret-bucket down"))
    assert "secret-bucket" not in unavailable[2] and unavailable[3]["Retry-After"] == "30"
    slow = errors.classify(errors.BodyTooSlow("too slow"))
    assert slow[2:] == ("too slow", {"Connection": "close"})
    challenge = errors.classify(errors.unauthorized(challenge=True))
    assert "WWW-Authenticate" in challenge[3]


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
