"""kill -9 of the server in the middle of a 1,000-submission load, then a restart: every 201 is
kept with byte-identical attachments, and the clients' retries complete without duplicates."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from server.app import Services
from storage import gc
from tests.faults.load import Load, make_items, tally
from tests.faults.procs import ServerProcess

pytestmark = pytest.mark.faults

SUBMISSIONS = 1000
CLIENTS = 8


def test_kill9_mid_load_loses_and_duplicates_nothing(field, tmp_path):
    items = make_items(SUBMISSIONS)
    server = ServerProcess(field.env(), tmp_path / "server.log").start()
    try:
        load = Load(field.collect_url(server.url), items, clients=CLIENTS).start()
        load.wait_for(SUBMISSIONS * 2 // 5, timeout=120)
        server.kill9()
        at_kill = len(load.acknowledged)
        server.start()  # same port; the clients are retrying meanwhile
        load.join(timeout=180)
    finally:
        server.stop()
    assert not load.failures
    assert at_kill < SUBMISSIONS and load.answers[0] > 0  # killed mid-load; clients saw it
    services = Services(field.settings)
    try:
        result = tally(services.db, services.blobs, items, load.acknowledged)
        assert (
            result.acknowledged,
            result.present,
            result.lost,
            result.duplicated,
            result.incomplete,
            result.rows,
        ) == (SUBMISSIONS, SUBMISSIONS, 0, 0, 0, SUBMISSIONS)
        # What the kill left behind (spooled parts, files without rows) goes; nothing else.
        report = gc.collect(
            services.db, services.blobs, grace=timedelta(0), spool_dir=Path(field.settings.tmp_dir)
        )
        assert report.referenced == report.scanned - report.removed >= SUBMISSIONS
        assert tally(services.db, services.blobs, items, load.acknowledged) == result
    finally:
        services.db.dispose()
