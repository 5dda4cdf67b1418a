"""The S3 server goes away under a running `jebol serve`: really stopped (SIGTERM, SIGKILL after
a second) in the middle of uploads, and hung (SIGSTOP). The phone gets 503 with Retry-After in
bounded time, nothing is half-stored, and the server recovers by itself when S3 is back.

The module has its own SeaweedFS (the run's shared one must stay up), with PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from server.app import Services
from server.settings import Settings
from storage import gc
from tests.conftest import BACKENDS
from tests.faults.load import Field, Load, make_items, post_once, prepare_field, tally
from tests.faults.procs import RestartableS3, ServerProcess

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL + S3 backend"),
]

# Short S3 timeouts, so a hung S3 costs seconds (storage/blobs/ has the defaults).
S3_ENV = {"JEBOL_S3_CONNECT_TIMEOUT": "2", "JEBOL_S3_READ_TIMEOUT": "2", "JEBOL_S3_RETRIES": "0"}


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableS3]:
    server = RestartableS3(tmp_path_factory.mktemp("weed-faults")).start()
    yield server
    # SIGTERM, SIGKILL after 10 s: weed takes all of them, so let the next tests run meanwhile.
    threading.Thread(target=server.stop, name="weed-stop").start()


@pytest.fixture(scope="module")
def s3_server(
    weed: RestartableS3, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Field, ServerProcess]]:
    workdir = tmp_path_factory.mktemp("s3-faults")
    field = prepare_field(
        Settings.from_env(
            {},
            data_dir=str(workdir / "data"),
            secret_key="faults",
            database_url=request.getfixturevalue("postgres_url"),
            s3_endpoint=weed.endpoint,
            s3_access_key=weed.access_key,
            s3_secret_key=weed.secret_key,
            s3_bucket="faults",
        )
    )
    with ServerProcess({**field.env(), **S3_ENV}, workdir / "server.log") as server:
        yield field, server


@pytest.fixture
def stored(s3_server: tuple[Field, ServerProcess]) -> Iterator[Services]:
    """Direct access to what the server stored (database and bucket, not through it)."""
    services = Services(s3_server[0].settings)
    yield services
    services.db.dispose()


def test_s3_stopped_during_uploads(weed, s3_server, stored):
    field, server = s3_server
    url = field.collect_url(server.url)
    items = make_items(60, photos=3)
    load = Load(url, items, clients=4, retry=False).start()
    load.wait_for(15, timeout=60)
    weed.stop(grace=1.0)
    try:
        load.join(timeout=60)
        response, seconds = post_once(url, make_items(1, photos=3)[0])
        assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
        assert seconds < 5
        # Every answer was a 201 or a 503: no 500, no hang, no request left without an answer.
        assert set(load.answers) == {201, 503} and len(load.acknowledged) < len(items)
    finally:
        weed.start()  # same ports, same data
    before = tally(stored.db, stored.blobs, items, load.acknowledged)
    assert (before.lost, before.incomplete, before.duplicated) == (0, 0, 0)
    # No row without its files (a row may lack its 201: committed, then S3 failed the check
    # after the commit; the phone's retry gets the 201).
    assert before.rows == before.present >= before.acknowledged

    # The server was not restarted: it takes the phones' retries as soon as S3 is back.
    again = Load(
        url, [i for i in items if i.instance_id not in load.acknowledged], clients=4
    ).start()
    again.join(timeout=60)
    acknowledged = load.acknowledged | again.acknowledged
    after = tally(stored.db, stored.blobs, items, acknowledged)
    assert (after.acknowledged, after.present, after.lost, after.duplicated, after.incomplete) == (
        60,
        60,
        0,
        0,
        0,
    )

    # Orphans (files of refused uploads) go; everything a row names stays.
    report = gc.collect(stored.db, stored.blobs, grace=timedelta(0))
    assert report.scanned == report.referenced + report.removed
    assert len(set(stored.blobs.iter_keys(gc.PREFIX))) == report.referenced
    assert tally(stored.db, stored.blobs, items, acknowledged) == after


def test_s3_hung_answers_503_in_bounded_time(weed, s3_server, stored):
    field, server = s3_server
    url = field.collect_url(server.url)
    store = Services(Settings.from_env({**field.env(), **S3_ENV})).blobs  # as the server has it
    bound = (store.retries + 1) * (store.connect_timeout + store.read_timeout) + 3
    item, later = make_items(2)
    weed.pause()
    try:
        response, seconds = post_once(url, item)
    finally:
        weed.resume()
    assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
    assert seconds < bound
    for sent in (item, later):  # recovered by itself: the retry and a new one land
        assert post_once(url, sent)[0].status_code == 201
    result = tally(stored.db, stored.blobs, [item, later], {item.instance_id, later.instance_id})
    assert (result.present, result.duplicated) == (2, 0)
