"""Health probes: /health/live, and /health/ready naming the part that failed, in time even
when a store hangs (a real TCP peer that accepts connections and never answers)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from server import health
from server.app import Services, create_app
from server.settings import Settings
from storage.blobs import BlobStore, LocalBlobStore, S3BlobStore
from storage.db import Database
from tests.conftest import BASE_URL


def _client(settings: Settings, db: Database, blobs: BlobStore) -> TestClient:
    app = create_app(settings, Services(settings, db=db, blobs=blobs), prepare=False)
    return TestClient(app, base_url=BASE_URL, raise_server_exceptions=False)


def test_ready_when_database_and_blob_store_answer(client):
    live = client.get("/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "blobs": "ok"}


def test_not_ready_names_the_part_that_failed(services, tmp_path):
    """On SQLite: a database path that is a folder, a blob folder that is a file. On
    PostgreSQL + S3: a database and a bucket that do not exist, on the real servers."""
    settings = services.settings
    if services.db.dialect == "sqlite":
        broken_db = Database(f"sqlite:///{tmp_path}")
        not_a_folder = tmp_path / "blobs"
        not_a_folder.write_bytes(b"")
        broken_blobs: BlobStore = LocalBlobStore(not_a_folder)
    else:
        broken_db = Database(settings.database_url.rsplit("/", 1)[0] + "/jebol_no_such_db")
        broken_blobs = S3BlobStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            bucket=f"missing-{uuid.uuid4().hex}",
        )
    cases = [
        (broken_db, services.blobs, {"database": "error", "blobs": "ok"}),
        (services.db, broken_blobs, {"database": "ok", "blobs": "error"}),
    ]
    for db, blobs, expected in cases:
        with _client(settings, db, blobs) as client:
            response = client.get("/health/ready")
        assert response.status_code == 503, expected
        assert response.json() == {"status": "unavailable", **expected}
        assert int(response.headers["retry-after"]) > 0
    broken_db.dispose()


@pytest.fixture
def silent_peer() -> Iterator[int]:
    """A port whose connections the kernel accepts and nobody ever answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()  # the hung checks now see a reset and end


def test_hung_stores_answer_503_within_the_timeout(silent_peer, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(health, "CHECK_SECONDS", 0.5)
    settings = Settings.from_env({}, data_dir=str(tmp_path), secret_key="x")
    db = Database(f"postgresql+psycopg://jebol@127.0.0.1:{silent_peer}/jebol")
    blobs = S3BlobStore(f"127.0.0.1:{silent_peer}", "key", "secret-key")
    with _client(settings, db, blobs) as client:
        for attempt in range(2):
            start = time.monotonic()
            response = client.get("/health/ready")
            elapsed = time.monotonic() - start
            assert response.status_code == 503 and elapsed < 2.0, (attempt, elapsed)
            assert response.json() == {
                "status": "unavailable",
                "database": "timeout",
                "blobs": "timeout",
            }
            running = (health._RUNNING[db], health._RUNNING[blobs])
            if attempt == 0:
                first = running
        # The second probe waited on the checks still hanging; it did not start more.
        assert running == first and not any(f.done() for f in running)
    db.dispose()
