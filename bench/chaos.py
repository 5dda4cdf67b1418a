#!/usr/bin/env python
"""kill -9 chaos for JEBOL SIPERA: the server killed in the middle of a load, again and again.

    .venv/bin/python bench/chaos.py                         # 10 rounds, SQLite + local folder
    .venv/bin/python bench/chaos.py --backend postgres      # PostgreSQL + SeaweedFS S3
    .venv/bin/python bench/chaos.py --rounds 3 --workers 2  # see --help

Each round prepares a fresh field (a project, the photo test form, an app user), starts
`jebol serve --no-setup` as a subprocess, and has --clients Collect-like clients send
--submissions submissions (each with --photos photos of a few KB). Clients retry as Collect's
auto-send does: the same instanceID and files again after a connection error or a 5xx, until a
201. At a random point between 10 % and 90 % of the load the whole server process group gets
SIGKILL; it is started again at once on the same port, and the clients carry on.

After the load the server is stopped and the database and blob store are read directly
(storage APIs, not the server): a submission is *present* when it exists exactly once with every
attachment, each blob hashing to the SHA-256 of the bytes the client sent. Printed per round:
acknowledged (201s), present, lost (a 201 but not present), duplicated (extra rows for one
instanceID), attempts that got no answer or a 5xx, where the kill landed, what the kill left
over for `jebol gc` (orphan blobs + upload spool files), and the round's time.
Exit status 0 when nothing was lost or duplicated in any round, else 1.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from server.app import Services  # noqa: E402
from server.settings import Settings  # noqa: E402
from storage import gc  # noqa: E402
from tests.faults.load import Load, make_items, prepare_field, tally  # noqa: E402
from tests.faults.procs import ServerProcess  # noqa: E402
from tests.services import SeaweedS3, ThrowawayPostgres  # noqa: E402

COLUMNS = (
    "round",
    "killed at",
    "acknowledged",
    "present",
    "lost",
    "duplicated",
    "retried",
    "left over",
    "seconds",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--photos", type=int, default=2, help="attachments per submission")
    parser.add_argument("--photo-bytes", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1, help="JEBOL_WORKERS")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seed", type=int, default=None, help="for the kill points")
    return parser.parse_args(argv)


def run_round(
    args: argparse.Namespace, settings: Settings, workdir: Path, rng: random.Random
) -> dict[str, object]:
    field = prepare_field(settings)
    items = make_items(args.submissions, photos=args.photos, size=args.photo_bytes)
    kill_at = int(args.submissions * rng.uniform(0.1, 0.9))
    started = time.monotonic()
    server = ServerProcess(field.env(), workdir / "server.log", workers=args.workers).start()
    try:
        load = Load(field.collect_url(server.url), items, clients=args.clients).start()
        load.wait_for(kill_at, timeout=300)
        server.kill9()
        killed_at = len(load.acknowledged)
        server.start()
        load.join(timeout=600)
    finally:
        server.stop()
    seconds = time.monotonic() - started
    services = Services(settings)
    try:
        result = tally(services.db, services.blobs, items, load.acknowledged)
        left = gc.collect(
            services.db,
            services.blobs,
            grace=timedelta(0),
            dry_run=True,
            spool_dir=Path(settings.tmp_dir),
        )
    finally:
        services.db.dispose()
    retried = sum(n for status, n in load.answers.items() if status != 201)
    return {
        "killed at": killed_at,
        "acknowledged": result.acknowledged,
        "present": result.present,
        "lost": result.lost,
        "duplicated": result.duplicated,
        "retried": retried,
        "left over": f"{left.removed}+{left.spool_removed}",
        "seconds": round(seconds, 1),
        "failures": load.failures,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="jebol-chaos-"))
    database = ThrowawayPostgres() if args.backend == "postgres" else None
    s3 = SeaweedS3(root / "seaweedfs") if args.backend == "postgres" else None
    print(
        f"# {args.rounds} rounds x {args.submissions} submissions, {args.clients} clients, "
        f"{args.workers} worker(s), {args.backend}",
        file=sys.stderr,
    )
    print(" | ".join(COLUMNS))
    bad = 0
    keep = True  # the logs and data, when a round failed or raised
    try:
        database_url = database.create() if database else ""
        if s3:
            s3.start()
        for number in range(1, args.rounds + 1):
            workdir = root / f"round-{number}"
            workdir.mkdir()
            overrides: dict[str, object] = {
                "data_dir": str(workdir / "data"),
                "secret_key": "chaos",
            }
            if s3 and database:
                overrides.update(
                    database_url=database_url,
                    s3_endpoint=s3.endpoint,
                    s3_access_key=s3.access_key,
                    s3_secret_key=s3.secret_key,
                    s3_bucket=f"chaos-{uuid.uuid4().hex[:12]}",
                )
            row = run_round(args, Settings.from_env({}, **overrides), workdir, rng)
            print(
                " | ".join(str(row[c]) if c != "round" else str(number) for c in COLUMNS),
                flush=True,
            )
            for failure in row["failures"]:
                print(f"# refused: {failure}", file=sys.stderr)
            bad += bool(
                row["lost"]
                or row["duplicated"]
                or row["failures"]
                or row["present"] != args.submissions
            )
        keep = bool(bad)
    finally:
        if s3:
            s3.stop()
        if database:
            database.drop()
        if keep:
            print(f"# logs and data kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"# {args.rounds - bad}/{args.rounds} rounds kept every acknowledged submission, "
        "without duplicates",
        file=sys.stderr,
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
