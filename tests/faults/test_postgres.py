"""PostgreSQL goes away under a running `jebol serve` (through a TCP proxy: the machine's
PostgreSQL serves other tests): stopped (connections closed, new ones refused) and unreachable
(new connections never answered). Requests answer 503 with Retry-After in bounded time, and the
first requests after PostgreSQL is back succeed, without restarting the server."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from server.app import Services
from server.settings import Settings
from storage.db import PG_CONNECT_TIMEOUT
from tests.conftest import BACKENDS
from tests.faults.load import (
    ADMIN_PASSWORD,
    Field,
    Item,
    make_items,
    post_once,
    prepare_field,
    tally,
)
from tests.faults.procs import ServerProcess
from tests.faults.proxy import TcpProxy

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL backend"),
]


@pytest.fixture(scope="module")
def cut_off(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Field, TcpProxy, ServerProcess]]:
    """A server whose PostgreSQL (the run's database) is behind a proxy, with its blobs in a
    local folder (only the database fails); one for the module: a start costs seconds."""
    workdir = tmp_path_factory.mktemp("pg-faults")
    database_url = request.getfixturevalue("postgres_url")
    field = prepare_field(
        Settings.from_env(
            {}, data_dir=str(workdir / "data"), secret_key="faults", database_url=database_url
        )
    )
    with (
        TcpProxy(urlsplit(database_url).port) as proxy,
        ServerProcess(
            {**field.env(), "JEBOL_DATABASE_URL": _through(database_url, proxy.port)},
            workdir / "server.log",
        ) as server,
    ):
        yield field, proxy, server


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()


def test_postgres_stopped_then_back(cut_off):
    field, proxy, server = cut_off
    items = make_items(4)
    url = field.collect_url(server.url)
    admin = (field.admin_email, ADMIN_PASSWORD)
    for item in items[:2]:
        assert post_once(url, item)[0].status_code == 201  # the pool holds connections now
    proxy.refuse()
    try:
        response, seconds = post_once(url, items[2])
        _assert_unavailable(response)
        assert seconds < 5
        api = httpx.get(f"{server.url}/v1/users/current", auth=admin, timeout=30)
        _assert_unavailable(api)
        assert api.json()["code"] == 503.2
    finally:
        proxy.up()
    # The first requests succeed: the pool replaces the connections the outage broke.
    for _ in range(4):
        assert (
            httpx.get(f"{server.url}/v1/users/current", auth=admin, timeout=30).status_code == 200
        )
    for item in items[2:]:
        assert post_once(url, item)[0].status_code == 201
    _assert_all_stored(field, items)


def test_postgres_unreachable_answers_503_within_the_connect_timeout(cut_off):
    field, proxy, server = cut_off
    first, second = make_items(2)
    url = field.collect_url(server.url)
    proxy.blackhole()
    try:
        response, seconds = post_once(url, first)
        _assert_unavailable(response)
        assert seconds < PG_CONNECT_TIMEOUT + 3
    finally:
        proxy.up()
    for item in (first, second):
        assert post_once(url, item)[0].status_code == 201
    _assert_all_stored(field, [first, second])


def _assert_all_stored(field: Field, items: list[Item]) -> None:
    services = Services(field.settings)
    try:
        result = tally(services.db, services.blobs, items, {i.instance_id for i in items})
    finally:
        services.db.dispose()
    assert (result.present, result.lost, result.duplicated) == (len(items), 0, 0)
