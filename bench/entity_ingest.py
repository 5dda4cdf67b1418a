#!/usr/bin/env python
"""What an entity costs at ingest: a submission that creates an entity, one that updates one,
against the same submission of a form that saves no entity.

    .venv/bin/python bench/entity_ingest.py                      # SQLite + a folder
    .venv/bin/python bench/entity_ingest.py --backend postgres   # PostgreSQL + SeaweedFS S3
    .venv/bin/python bench/entity_ingest.py --count 2000 --entities 10000

In-process, no HTTP (the HTTP share is the same for all three and bench/ingest.py measures
it): each row calls storage.submissions.ingest, the function the OpenRosa route calls, one
submission at a time, with the request's unit of work around it as the server has it. The
list is first filled with --entities entities (REST bulk create), so lookups run against a
list of realistic size. Printed per kind: submissions/s and the mean and p95 time per
submission in ms, and the difference to the plain form. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backends import bench_services  # noqa: E402

from server.app import Services  # noqa: E402
from storage import entities, projects, submissions  # noqa: E402
from storage import forms as form_store  # noqa: E402

FORMS = {
    "plain": """| survey |
| | type | name | label |
| | text | opd | OPD |
| | text | nama | Nama |
| | text | tahap | Tahapan |
| settings |
| | form_id | version |
| | plain | 1 |
""",
    "create": """| survey |
| | type | name | label | save_to |
| | text | opd | OPD | opd |
| | text | nama | Nama | |
| | text | tahap | Tahapan | tahap |
| entities |
| | list_name | label |
| | inovasi | ${nama} |
| settings |
| | form_id | version |
| | create | 1 |
""",
    "update": """| survey |
| | type | name | label | save_to |
| | text | opd | OPD | |
| | select_one_from_file inovasi.csv | nama | Inovasi | |
| | text | tahap | Tahapan | tahap |
| entities |
| | list_name | entity_id | update_if |
| | inovasi | ${nama} | true() |
| settings |
| | form_id | version |
| | update | 1 |
""",
}


def xml(kind: str, entity_uuid: str, base: int) -> bytes:
    entity = {
        "plain": "",
        "create": f'<entity dataset="inovasi" create="1" id="uuid:{entity_uuid}">'
        "<label>Inovasi uji</label></entity>",
        "update": f'<entity dataset="inovasi" update="1" id="{entity_uuid}" '
        f'baseVersion="{base}" trunkVersion="" branchId=""/>',
    }[kind]
    name = entity_uuid if kind == "update" else "Inovasi uji"
    return (
        f'<data id="{kind}" version="1"><opd>dinkes</opd><nama>{name}</nama>'
        f"<tahap>uji_coba</tahap><meta><instanceID>uuid:{uuid.uuid4()}</instanceID>"
        f"{entity}</meta></data>"
    ).encode()


def run(
    services: Services, project_id: int, kind: str, count: int, targets: list[str]
) -> list[float]:
    sender = submissions.Sender(actor_id=None, user_agent="bench")
    times = []
    for i in range(count):
        target = targets[i % len(targets)] if kind == "update" else str(uuid.uuid4())
        base = 1 + i // len(targets)
        body = xml(kind, target, base)
        start = time.perf_counter()
        unit = services.db.unit(write=True)
        submissions.ingest(unit, services.blobs, project_id, body, sender=sender)
        unit.finish()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--count", type=int, default=1000, help="submissions of each kind")
    parser.add_argument("--entities", type=int, default=10_000, help="entities in the list first")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jebol-bench-entities-"))
    cleanup = contextlib.ExitStack()
    try:
        services = cleanup.enter_context(bench_services(args.backend, work))
        project = projects.create_project(services.db, "bench entities")
        for kind, source in FORMS.items():
            form_store.publish_xlsform(
                services.db, services.blobs, project.id, source.encode(), f"{kind}.md"
            )
        rows = [{"label": f"Inovasi {i}", "data": {"opd": "dinkes"}} for i in range(args.entities)]
        start = time.perf_counter()
        entities.create_many(
            services.db, project.id, "inovasi", rows, {"name": "bench.csv"}, actor_id=None
        )
        print(f"bulk create of {args.entities} entities: {time.perf_counter() - start:.2f} s")
        targets = [
            f.entity.uuid for f in entities.list_entities(services.db, project.id, "inovasi")
        ]
        targets = targets[: max(1, args.count // 4)]  # each updated about four times in turn
        print(f"backend: {args.backend}; {args.count} submissions of each kind, one at a time")
        print(f"{'kind':<8} {'subs/s':>8} {'mean ms':>8} {'p95 ms':>8} {'vs plain':>9}")
        plain_mean = None
        for kind in ("plain", "create", "update"):
            run(services, project.id, kind, 20, targets[:5] if kind == "update" else targets)
            times = run(services, project.id, kind, args.count, targets[5:] or targets)
            mean = statistics.fmean(times) * 1000
            p95 = statistics.quantiles(times, n=20)[-1] * 1000
            plain_mean = plain_mean or mean
            print(
                f"{kind:<8} {len(times) / sum(times):8.1f} {mean:8.2f} {p95:8.2f} "
                f"{mean - plain_mean:+8.2f}ms"
            )
    finally:
        cleanup.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
