"""Schemathesis against the app's own OpenAPI schema: generated calls to every /v1 operation,
as an admin, must never answer a 5xx.

The app runs in-process (ASGI) on its own SQLite database and blob folder, so calls that
delete or rename things cannot disturb the other tests. Half of the generated path parameters
are replaced by the ids of a real project, form, submission and attachment, so operations are
exercised past their 404s. Examples per operation are bounded and derandomized (the same
calls every run); see BUDGET for the cost.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from server.app import Services, create_app
from server.settings import Settings
from storage import submissions, users
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.conftest import backend_settings
from tests.factories import assign_forms, jpeg, make_app_user, make_project, photo_body, publish

# 15 examples per operation: 30-40 s for the 77 operations on the 2-core machine.
BUDGET = settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,
    ],
)


@dataclass
class Api:
    app: Any
    headers: dict[str, str]
    real: dict[str, Any]  # path parameter -> a value that names something that exists
    admin_actor: int


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """SQLite only: the schema and the handlers do not depend on the backend, and the
    other backend's checks are the battery's (tests/security/test_*.py)."""
    data = tmp_path_factory.mktemp("schemathesis")
    services = Services(backend_settings("sqlite", data, request))
    services.prepare()
    admin = users.create_user(
        services.db,
        f"admin-{uuid.uuid4().hex[:8]}@example.org",
        "kata-sandi-panjang",
        is_admin=True,
    )
    token, _ = users.create_session(services.db, admin.actor_id, 24)
    project = make_project(services)
    publish(services, project)
    app_user = make_app_user(services, project)
    assign_forms(services, project, app_user)
    photo = jpeg(seed=1)
    part = data / "photo"
    part.write_bytes(photo)
    instance_id = new_instance_id()
    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        instance_xml("foto_sederhana", "1", instance_id, photo_body()),
        [IncomingFile("utama.jpg", part, len(photo), hashlib.sha256(photo).hexdigest())],
        sender=Sender(actor_id=None),
    )
    real = {
        "project_id": project.id,
        "xml_form_id": "foto_sederhana",
        "form_file": "foto_sederhana",
        "form_svc": "foto_sederhana.svc",
        "table": "Submissions",
        "instance_id": instance_id,
        "version_id": instance_id,
        "name": "utama.jpg",
        "version_file": "1",
        "actor_id": app_user.actor.id,
    }
    yield Api(
        create_app(services.settings, services, prepare=False),
        {"Authorization": f"Bearer {token}"},
        real,
        admin.actor_id,
    )
    services.db.dispose()


@pytest.fixture(scope="module")
def api_schema(api: Api) -> Any:
    return schemathesis.openapi.from_asgi("/schema/openapi.json", api.app)


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the schema, read from an app that is never served
    (the parametrization must exist before any fixture does)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Settings.from_env({}, data_dir=tmp, secret_key="schema-only")
        services = Services(config)
        paths = create_app(config, services, prepare=False).openapi_schema.to_schema()["paths"]
        services.db.dispose()
    return [
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch", "head")
    ]


@pytest.mark.parametrize("method, path", _operations())
def test_no_operation_answers_a_server_error(
    api: Api, api_schema: Any, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    real = {p.name: api.real[p.name] for p in operation.path_parameters if p.name in api.real}
    cases = st.one_of(
        operation.as_strategy(),
        operation.as_strategy(path_parameters=real),
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real),
    )

    @given(case=cases)
    @BUDGET
    def call(case: Any) -> None:
        if case.path_parameters and case.path_parameters.get("actor_id") == api.admin_actor:
            # Deleting or demoting the admin whose token makes the calls would turn the rest
            # of the run into 401/403s: aim those calls at the app user instead.
            case.path_parameters["actor_id"] = api.real["actor_id"]
        response = case.call(headers=api.headers)
        case.validate_response(response, checks=[not_a_server_error])

    call()
