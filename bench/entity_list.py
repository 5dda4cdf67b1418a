#!/usr/bin/env python
"""Entity lists as phones get them: the manifest, the list's CSV and its integrity reply for a
list of 10,000 innovations.

    .venv/bin/python bench/entity_list.py                  # SQLite + a folder
    .venv/bin/python bench/entity_list.py --pg             # SQLite, then PostgreSQL
    .venv/bin/python bench/entity_list.py --entities 50000 --runs 3

Per backend it makes a throwaway world (SQLite in a temporary directory; with --pg also a
PostgreSQL database dropped at the end), creates the list `inovasi` with the properties opd,
tahapan, jenis, bentuk, urusan_utama and --entities entities (REST's bulk create, in chunks),
publishes a follow-up form reading `inovasi.csv` and assigns it to an app user. Then, through
the real HTTP routes (tests.live.LiveServer: uvicorn in this process) with the app user's key,
as Collect calls them: the manifest (median and p95 of --manifests calls), the CSV download
(time, time to the first byte, size, and this process' RSS peak growth over 20 ms samples
while it streams; server and client are both in it), the 304 a phone with the current copy
gets, and the integrity reply for the whole list and for 100 ids. Last, the CSV generator
alone under tracemalloc: the peak of Python allocations while it yields the whole list (the
flat-memory claim, without the HTTP stack). MB means MiB. A benchmark, not a test: figures go
to stdout, progress (prefixed "#") to stderr.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from backends import bench_services  # noqa: E402

from server.app import Services  # noqa: E402
from storage import app_users, datasets, entities, entity_lists, projects, roles  # noqa: E402
from storage import forms as form_store  # noqa: E402
from tests.live import LiveServer  # noqa: E402

MB = 1024 * 1024
FORM = "pilih_inovasi"
FOLLOW_UP = f"""| survey |
| | type | name | label | choice_filter |
| | text | opd | OPD | |
| | select_one_from_file inovasi.csv | inovasi | Inovasi | opd=${{opd}} |
| settings |
| | form_id | form_title | version |
| | {FORM} | Pilih inovasi | 1 |
"""
PROPERTIES = ["opd", "tahapan", "jenis", "bentuk", "urusan_utama"]
OPDS = ["setda", "dinkes", "disdik", "dpupr", "kominfo", "dishub", "bpbd", "rsud", "bkd", "dlh"]
TAHAPAN = ["inisiatif", "uji_coba", "penerapan"]
JENIS = ["digital", "non_digital"]
BENTUK = ["tata_kelola", "pelayanan_publik", "lainnya"]
CHUNK = 2000
HEADERS = {"X-OpenRosa-Version": "1.0", "User-Agent": "org.odk.collect.android/bench"}


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def rss_kb() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler:
    """VmRSS of this process every 20 ms; `growth` is the peak over the start, in KiB."""

    def __init__(self) -> None:
        self.start = rss_kb()
        self.peak = self.start
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kb())
            self.stop.wait(0.02)

    @property
    def growth(self) -> int:
        return self.peak - self.start

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def innovation(index: int) -> dict[str, object]:
    return {
        "label": f"Inovasi {index:05d} {['Cepat', 'Sehat', 'Pintar', 'Ramah'][index % 4]}",
        "data": {
            "opd": OPDS[index % len(OPDS)],
            "tahapan": TAHAPAN[index % len(TAHAPAN)],
            "jenis": JENIS[index % len(JENIS)],
            "bentuk": BENTUK[index % len(BENTUK)],
            "urusan_utama": f"u{index % 32:02d}",
        },
    }


def make_world(services: Services, count: int) -> tuple[int, str]:
    """The list with `count` entities, the follow-up form and an app user: (project, key)."""
    project = projects.create_project(services.db, f"Bench daftar {uuid.uuid4().hex[:6]}")
    datasets.create_list(services.db, project.id, "inovasi")
    for name in PROPERTIES:
        datasets.add_property(services.db, project.id, "inovasi", name)
    started = time.perf_counter()
    for first in range(0, count, CHUNK):
        rows = [innovation(i) for i in range(first, min(count, first + CHUNK))]
        entities.create_many(services.db, project.id, "inovasi", rows, {"name": "bench.csv"})
    log(f"{count} entities created in {time.perf_counter() - started:.1f} s")
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, FOLLOW_UP.encode(), f"{FORM}.md"
    )
    app_user = app_users.create_app_user(services.db, services.box, project.id, "Petugas bench")
    roles.assign_form(services.db, project.id, FORM, app_user.actor.id)
    assert app_user.token is not None
    return project.id, app_user.token


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def time_manifest(client: httpx.Client, url: str, calls: int) -> None:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        response = client.get(url, headers=HEADERS)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
    print(f"  manifest: median {ms(statistics.median(times))}, p95 {ms(p95)} ({calls} calls)")


def time_download(client: httpx.Client, url: str, runs: int) -> str:
    """Stream the CSV `runs` times, reading and discarding it; returns its ETag."""
    etag = ""
    for run in range(runs):
        size = 0
        started = time.perf_counter()
        first: float | None = None
        with Sampler() as sampler, client.stream("GET", url, headers=HEADERS) as response:
            response.raise_for_status()
            etag = response.headers["etag"]
            for chunk in response.iter_raw():
                first = first if first is not None else time.perf_counter() - started
                size += len(chunk)
        took = time.perf_counter() - started
        print(
            f"  CSV run {run + 1}: {ms(took)}, first byte {ms(first or 0.0)}, "
            f"{size / MB:.2f} MB, {size / MB / took:.1f} MB/s, "
            f"RSS peak growth {sampler.growth / 1024:.1f} MB (from {sampler.start / 1024:.0f} MB)"
        )
    started = time.perf_counter()
    cached = client.get(url, headers={**HEADERS, "If-None-Match": etag})
    print(
        f"  CSV with the current ETag: {cached.status_code} in {ms(time.perf_counter() - started)}"
    )
    return etag


def time_integrity(client: httpx.Client, url: str, ids: list[str]) -> None:
    for label, params in (("whole list", {}), (f"{len(ids)} ids", {"id": ",".join(ids)})):
        started = time.perf_counter()
        response = client.get(url, headers=HEADERS, params=params)
        response.raise_for_status()
        print(
            f"  integrity, {label}: {ms(time.perf_counter() - started)}, "
            f"{len(response.content) / 1024:.0f} KiB, {response.text.count('<entity ')} entities"
        )


def traced_generator(services: Services, project_id: int) -> None:
    listed = entity_lists.find_list_file(services.db, project_id, "inovasi")
    assert listed is not None
    tracemalloc.start()
    started = time.perf_counter()
    size = sum(len(c) for c in entity_lists.csv_chunks(services.db, listed.dataset))
    took = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  CSV generator alone (tracemalloc on): {ms(took)}, {size / MB:.2f} MB, "
        f"peak Python allocations {peak / MB:.2f} MB"
    )


def bench(backend: str, args: argparse.Namespace, work: Path) -> None:
    with bench_services(backend, work, s3=False) as services:
        project_id, key = make_world(services, args.entities)
        sample = [
            f.entity.uuid for f in entities.list_entities(services.db, project_id, "inovasi")
        ][:100]
        print(f"backend: {backend}; {args.entities} entities, {len(PROPERTIES)} properties")
        with LiveServer(services) as server, httpx.Client(base_url=server.url) as client:
            logging.getLogger("jebol.access").setLevel(logging.WARNING)  # one line per call
            base = f"/v1/key/{key}/projects/{project_id}"
            time_manifest(client, f"{base}/forms/{FORM}/manifest", args.manifests)
            time_download(client, f"{base}/forms/{FORM}/attachments/inovasi.csv", args.runs)
            time_integrity(client, f"{base}/datasets/inovasi/integrity", sample)
        traced_generator(services, project_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="CSV downloads per backend")
    parser.add_argument("--manifests", type=int, default=50, help="manifest calls per backend")
    parser.add_argument("--pg", action="store_true", help="also PostgreSQL (127.0.0.1:5432)")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="jebol-bench-entity-list-"))
    try:
        for backend in ("sqlite", "postgres") if args.pg else ("sqlite",):
            bench(backend, args, work)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
