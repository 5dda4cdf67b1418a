"""Fault tests: real server processes (`jebol serve`), killed, cut off from PostgreSQL through a
proxy, or left without their S3 server. Each module is marked `faults` (`-m faults`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BACKENDS, backend_settings
from tests.faults.load import Field, prepare_field


@pytest.fixture(params=BACKENDS)
def field(request: pytest.FixtureRequest, tmp_path: Path) -> Field:
    """A prepared field on each backend (PostgreSQL + S3: the run's database, a new bucket)."""
    return prepare_field(backend_settings(request.param, tmp_path / "data", request))
