"""Scale out: two `jebol serve` processes (one of them with JEBOL_WORKERS=2) on one PostgreSQL
database, one S3 bucket and one JEBOL_SECRET_KEY. The same submissions sent to both at once land
exactly once each, with their attachments; a session made on one is honoured by the other."""

from __future__ import annotations

import re

import httpx
import pytest

from server.app import Services
from tests.conftest import BACKENDS, backend_settings
from tests.faults.load import ADMIN_PASSWORD, Load, make_items, prepare_field, tally
from tests.faults.procs import ServerProcess

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL + S3 backend"),
]

SUBMISSIONS = 100


def test_two_servers_share_everything_and_store_each_submission_once(request, tmp_path):
    field = prepare_field(backend_settings("postgres", tmp_path / "data", request))
    items = make_items(SUBMISSIONS)
    a = ServerProcess(field.env(), tmp_path / "a.log", workers=2).launch()
    b = ServerProcess(field.env(), tmp_path / "b.log").launch()
    try:
        a.wait_ready()
        b.wait_ready()
        loads = [Load(field.collect_url(server.url), items, clients=4).start() for server in (a, b)]
        for load in loads:
            load.join(timeout=120)

        login = httpx.post(
            f"{a.url}/v1/sessions",
            timeout=30,
            json={"email": field.admin_email, "password": ADMIN_PASSWORD},
        )
        assert login.status_code == 200
        bearer = {"Authorization": f"Bearer {login.json()['token']}"}
        current = httpx.get(f"{b.url}/v1/users/current", headers=bearer, timeout=30)
        assert current.status_code == 200 and current.json()["email"] == field.admin_email
        ended = httpx.delete(
            f"{b.url}/v1/sessions/{login.json()['token']}", headers=bearer, timeout=30
        )
        assert ended.status_code == 200
        assert httpx.get(f"{a.url}/v1/users/current", headers=bearer, timeout=30).status_code == 401
    finally:
        a.stop()
        b.stop()
    workers = set(re.findall(r"Started server process \[(\d+)\]", a.log_path.read_text()))
    assert len(workers) == 2, a.log_tail()
    for load in loads:
        assert not load.failures and load.acknowledged == {i.instance_id for i in items}
    services = Services(field.settings)
    try:
        result = tally(services.db, services.blobs, items, loads[0].acknowledged)
    finally:
        services.db.dispose()
    assert (result.present, result.lost, result.duplicated, result.rows) == (
        SUBMISSIONS,
        0,
        0,
        SUBMISSIONS,
    )
