"""Health probes for Docker, compose and load balancers.

`/health/live`: the process answers (restart it when this fails). `/health/ready`: it can
serve, because the database and the blob store answer (send it no traffic while this fails).

Each readiness check runs on a small thread pool of its own and is awaited at most
CHECK_SECONDS, so a hung database or S3 server makes the probe answer 503 in time instead of
hanging it, and never takes the worker threads request handlers use. A check still running
from an earlier probe is awaited again rather than started twice: a hung store ties up one
thread, not one per probe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from weakref import WeakKeyDictionary

import msgspec
from litestar import Response, get

from .deps import DB, Blobs
from .guards import PUBLIC

log = logging.getLogger("jebol.health")

CHECK_SECONDS = 2.0
RETRY_AFTER_SECONDS = 10
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jebol-health")
_RUNNING: WeakKeyDictionary[object, Future[None]] = WeakKeyDictionary()


class Readiness(msgspec.Struct):
    status: str  # ok | unavailable
    database: str  # ok | error | timeout
    blobs: str


@get("/health/live", sync_to_thread=False, tags=["Health"], opt=PUBLIC, summary="The process is up")
def health_live() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/health/ready",
    tags=["Health"],
    opt=PUBLIC,
    summary="The database and the blob store answer",
    description="200 when both answer; 503 with Retry-After and the part that failed "
    "(`error`, or `timeout` after a few seconds) otherwise.",
)
async def health_ready(db: DB, blobs: Blobs) -> Response[Readiness]:
    db = db.detached()  # the database itself (one check per store), not this request's unit
    database, blob_store = await asyncio.gather(
        _check("database", db, db.ping), _check("blob store", blobs, blobs.check)
    )
    if database == blob_store == "ok":
        return Response(Readiness("ok", database, blob_store))
    return Response(
        Readiness("unavailable", database, blob_store),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _check(name: str, target: object, probe: Callable[[], None]) -> str:
    running = _RUNNING.get(target)
    if running is None or running.done():
        running = _RUNNING[target] = _POOL.submit(probe)
    try:
        await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(running)), CHECK_SECONDS)
    except TimeoutError:
        log.warning("not ready: the %s did not answer within %.1f s", name, CHECK_SECONDS)
        return "timeout"
    except Exception as error:  # noqa: BLE001 - any failure means not ready; the log says which
        log.warning("not ready: the %s failed: %s", name, error)
        return "error"
    return "ok"


HANDLERS = [health_live, health_ready]
