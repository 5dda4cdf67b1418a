"""In-process Services for a benchmark on a throwaway backend, and their cleanup.

    with bench_services("postgres", work) as services: ...

sqlite:   a SQLite file and a blob folder under `work`.
postgres: a throwaway PostgreSQL database (127.0.0.1:5432, dropped at the end) and, with
          `s3=True`, a throwaway SeaweedFS S3 gateway (stopped at the end); else a folder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from server.app import Services
from server.settings import Settings
from tests.services import SeaweedS3, ThrowawayPostgres


@contextlib.contextmanager
def bench_services(backend: str, work: Path, *, s3: bool = True) -> Iterator[Services]:
    values: dict[str, object] = {"data_dir": str(work / backend), "secret_key": "bench"}
    with contextlib.ExitStack() as cleanup:
        if backend == "postgres":
            pg = ThrowawayPostgres()
            values["database_url"] = pg.create()
            cleanup.callback(_quietly, pg.drop)
            if s3:
                gateway = SeaweedS3(work / "seaweed").start()
                cleanup.callback(_quietly, gateway.stop)
                values.update(
                    s3_endpoint=gateway.endpoint,
                    s3_access_key=gateway.access_key,
                    s3_secret_key=gateway.secret_key,
                    s3_bucket="jebol",
                )
        services = Services(Settings.from_env({}, **values))
        services.prepare()
        cleanup.callback(services.db.dispose)
        yield services


def _quietly(stop: object) -> None:
    with contextlib.suppress(Exception):
        stop()  # type: ignore[operator]
