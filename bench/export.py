#!/usr/bin/env python
"""Export benchmark: how fast the exports stream, and at what memory.

    .venv/bin/python bench/export.py                      # 100k visits, PostgreSQL + SeaweedFS S3
    .venv/bin/python bench/export.py --count 5000 --backend sqlite --media-mb 100

It makes a throwaway world (a PostgreSQL database dropped at the end and a SeaweedFS S3, or
SQLite and a blob folder in a temporary directory), publishes the shipped visit form and
inserts --count synthetic submissions of it with bulk SQL (SQLAlchemy core, 5,000 rows a
statement: the XML column holds one template, the parsed `values` differ per submission:
OPD, dates, names, 1-3 innovations with 0-2 evidence rows each). Every submission references
four files (two evidence photos, the attendance photo, a signature); only the first
submissions have them stored, enough for about --media-mb MB of photos, made of
--distinct-photos random blobs of --photo-mb MB reused across submissions (content-addressed
storage keeps each once; the zip still carries each reference, so the bytes sent are real).

Then it runs each export through the real HTTP route, with tests.live.LiveServer (uvicorn
in this process) and an httpx streaming client, reading and discarding the body: the CSV zip
without media, the XLSX, and the media ZIP of all photos. Printed per export: bytes, time,
time to the first byte, throughput, and this process' memory (server and client together):
RSS before, the peak of 20 ms samples and its growth, and the kernel's VmHWM (reset before
each export through /proc/self/clear_refs). --direct runs the same storage.exports.open_export
generator without HTTP. MB means MiB. It is a benchmark, not a test: figures go to stdout,
progress (prefixed "#") to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from backends import bench_services  # noqa: E402
from procstat import reset_peak  # noqa: E402

from server.app import Services  # noqa: E402
from storage import app_users, content, exports, projects, roles, users  # noqa: E402
from storage import forms as form_store  # noqa: E402
from storage.models import (  # noqa: E402
    Submission,
    SubmissionAttachment,
    SubmissionVersion,
)
from tests.live import LiveServer  # noqa: E402

MB = 1024 * 1024
VISIT = "jebol_sipera_kunjungan"
OPDS = ["setda", "dinkes", "disdik", "dpupr", "kominfo", "dishub", "bpbd", "rsud", "bkd", "lainnya"]
STATES = [None, None, None, "approved", "approved", "hasIssues", "rejected", "edited"]
PASSWORD = "kata-sandi-bench-123"
INSERT_ROWS = 5000


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# ---- memory ----------------------------------------------------------------------------------


def status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Sampler:
    """VmRSS of this process every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, status_kb("VmRSS"))
            self.stop.wait(0.02)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


# ---- the world -------------------------------------------------------------------------------


def values_for(index: int, rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    """A visit's parsed values (as forms.instance reads them) and the files it references."""
    day = (datetime(2026, 1, 1) + timedelta(days=index % 365)).date().isoformat()
    opd = OPDS[index % len(OPDS)]
    files: list[str] = []
    innovations = []
    for n in range(1 + index % 3):
        evidence = []
        for m in range(index % 3 if n == 0 else 0):
            name = f"b{index}_{n}_{m}.jpg"
            files.append(name)
            evidence.append(
                {
                    "bukti_indikator": f"ind{16 + m}",
                    "bukti_jenis": "sk",
                    "bukti_status": "lengkap",
                    "bukti_nomor": f"SK/{index}/{m}",
                    "bukti_tanggal": day,
                    "bukti_judul": "Penetapan inovasi",
                    "bukti_foto": name,
                    "bukti_catatan": "",
                }
            )
        row: dict[str, Any] = {
            "inv_nama": f"Inovasi {index}-{n} {rng.choice(['Cepat', 'Sehat', 'Pintar'])}",
            "inv_nama_baru": "ya",
            "inv_nama_lama": "",
            "inv_tahapan": "penerapan",
            "inv_jenis": "digital",
            "inv_bentuk": "pelayanan_publik",
            "inv_urusan": "u02",
            "inv_uji_coba": "2025-03-01",
            "inv_penerapan": "2025-06-01",
            "inv_masalah": "anggaran data_dukung",
            "inv_masalah_uraian": "Belum ada SK.",
            "inv_rekomendasi": "Lengkapi SK kepala daerah dan video inovasi.",
            "inv_dd_ada": "ind16 ind19",
            "inv_dd_kurang": "ind18",
            "inv_jml_ada": "2",
        }
        if evidence:
            row["bukti"] = evidence if len(evidence) > 1 else evidence[0]
        innovations.append(row)
    attendance, signature = f"h{index}.jpg", f"t{index}.png"
    files += [attendance, signature]
    values = {
        "mulai": f"{day}T09:00:00.000+07:00",
        "selesai": f"{day}T10:30:00.000+07:00",
        "perangkat": f"collect:{index % 7}",
        "petugas_login": "petugas1",
        "g_kunjungan": {
            "tgl_kunjungan": day,
            "opd": opd,
            "opd_lain": "Kantor lain" if opd == "lainnya" else "",
            "unit_kerja": "",
            "petugas": "petugas_1 petugas_2",
            "petugas_lain": "",
            "cp_nama": f"Narahubung {index}",
            "cp_jabatan": "Kasubag",
            "cp_hp": "081234567890",
            "lokasi": f"-0.{680 + index % 50} 100.{780 + index % 40} 250 5",
        },
        "inovasi": innovations if len(innovations) > 1 else innovations[0],
        "g_penutup": {
            "jml_inovasi": str(len(innovations)),
            "foto_daftar_hadir": attendance,
            "foto_kegiatan": "",
            "ttd_cp": signature,
            "tgl_tindak_lanjut": "2026-12-31",
            "catatan_umum": "Tindak lanjut.",
        },
        "meta": {"instanceID": f"uuid:{uuid.UUID(int=index + 1)}", "instanceName": f"{opd} {day}"},
    }
    return values, files


def insert_world(
    services: Services, count: int, photo_submissions: int, blobs: list[str], blob_size: int
) -> tuple[int, str]:
    project = projects.create_project(services.db, f"Bench ekspor {uuid.uuid4().hex[:6]}")
    form_store.publish_xlsform(
        services.db,
        services.blobs,
        project.id,
        (ROOT / "forms" / "library" / f"{VISIT}.xlsx").read_bytes(),
        f"{VISIT}.xlsx",
    )
    email = f"bench-{uuid.uuid4().hex[:6]}@example.org"
    user = users.create_user(services.db, email, PASSWORD)
    roles.assign_role(services.db, project.id, "manager", user.actor_id)
    phone = app_users.create_app_user(services.db, services.box, project.id, "Petugas bench")
    form = form_store.get_form(services.db, project.id, VISIT)
    version = form_store.current_version(services.db, form)
    template = f"<data id='{VISIT}' version='{version.version}'/>".encode()
    rng = random.Random(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    engine = services.db.engine
    with engine.begin() as conn:
        base_sub = conn.execute(sa.select(sa.func.coalesce(sa.func.max(Submission.id), 0))).scalar()
        base_ver = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(SubmissionVersion.id), 0))
        ).scalar()
    t0 = time.perf_counter()
    blob_index = 0
    for first in range(0, count, INSERT_ROWS):
        subs, versions, files = [], [], []
        for index in range(first, min(count, first + INSERT_ROWS)):
            values, names = values_for(index, rng)
            created = start + timedelta(seconds=index * 300)
            sub_id, ver_id = base_sub + index + 1, base_ver + index + 1
            instance_id = values["meta"]["instanceID"]
            subs.append(
                {
                    "id": sub_id,
                    "form_id": form.id,
                    "instance_id": instance_id,
                    "review_state": STATES[index % len(STATES)],
                    "submitter_id": phone.actor.id,
                    "device_id": f"collect:{index % 7}",
                    "user_agent": "bench",
                    "created_at": created,
                }
            )
            versions.append(
                {
                    "id": ver_id,
                    "submission_id": sub_id,
                    "form_id": form.id,
                    "form_version_id": version.id,
                    "instance_id": instance_id,
                    "instance_name": values["meta"]["instanceName"],
                    "xml": template,
                    "xml_sha256": "0" * 64,
                    "values": values,
                    "submitter_id": phone.actor.id,
                    "is_current": True,
                    "created_at": created,
                }
            )
            for name in names:
                stored = index < photo_submissions and not name.endswith(".png")
                sha = blobs[blob_index % len(blobs)] if stored else None
                blob_index += 1 if stored else 0
                files.append(
                    {
                        "submission_version_id": ver_id,
                        "name": name,
                        "blob_sha256": sha,
                        "content_type": "image/jpeg" if sha else None,
                        "size": blob_size if sha else None,
                    }
                )
        with engine.begin() as conn:
            conn.execute(sa.insert(Submission.__table__), subs)
            conn.execute(sa.insert(SubmissionVersion.__table__), versions)
            conn.execute(sa.insert(SubmissionAttachment.__table__), files)
        log(
            f"inserted {min(count, first + INSERT_ROWS)}/{count} submissions "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    if services.db.dialect == "postgresql":
        with engine.begin() as conn:
            for table in ("submission", "submission_version", "submission_attachment"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            conn.exec_driver_sql("ANALYZE")
    print(
        f"insert: {count} submissions in {time.perf_counter() - t0:.1f} s "
        f"(bulk SQL; {photo_submissions} of them with stored photos)"
    )
    token, _ = users.create_session(services.db, user.actor_id, 24)
    return project.id, token


def make_blobs(services: Services, distinct: int, size: int) -> list[str]:
    rng = random.Random(2)
    shas = []
    for _ in range(distinct):
        data = b"\xff\xd8\xff\xe0" + rng.randbytes(size - 6) + b"\xff\xd9"
        stored = content.put_data(services.blobs, data, "image/jpeg")
        with services.db.transaction() as tx:
            content.record(tx, stored)
        shas.append(stored.sha256)
    return shas


# ---- measuring ---------------------------------------------------------------------------------


def measure(label: str, open_stream: Callable[[], Iterator[bytes]]) -> None:
    hwm_reset = reset_peak()
    before = status_kb("VmRSS")
    total, first = 0, None
    with Sampler() as sampler:
        t0 = time.perf_counter()
        for chunk in open_stream():
            if first is None:
                first = time.perf_counter() - t0
            total += len(chunk)
        elapsed = time.perf_counter() - t0
    hwm = status_kb("VmHWM")
    print(
        f"{label}: {total / MB:.1f} MB in {elapsed:.2f} s ({total / MB / elapsed:.1f} MB/s), "
        f"first byte after {first or 0:.3f} s; RSS {before / 1024:.0f} MB before, peak "
        f"{sampler.peak / 1024:.0f} MB (+{(sampler.peak - before) / 1024:.0f} MB), "
        f"VmHWM {hwm / 1024:.0f} MB{'' if hwm_reset else ' (not reset)'}",
        flush=True,
    )


def http_stream(
    server: LiveServer, url: str, headers: dict[str, str], params: dict[str, str]
) -> Callable[[], Iterator[bytes]]:
    def run() -> Iterator[bytes]:
        with (
            httpx.Client(timeout=600) as client,
            client.stream("GET", server.url + url, params=params, headers=headers) as response,
        ):
            response.raise_for_status()
            yield from response.iter_bytes(64 * 1024)

    return run


def direct_stream(
    services: Services, project_id: int, options: exports.ExportOptions
) -> Callable[[], Iterator[bytes]]:
    def run() -> Iterator[bytes]:
        yield from exports.open_export(
            services.db,
            services.blobs,
            project_id,
            VISIT,
            options,
            tmp_dir=services.settings.tmp_dir,
        ).chunks

    return run


def odata_pages(
    services: Services, server: LiveServer, path: str, auth: dict[str, str], count: int
) -> None:
    """An OData page of 100 rows at the start and at row 90% in (90,000 of 100k), reached with
    a keyset $skiptoken as a client following nextLink would: the two should cost the same."""
    import httpx
    from sqlalchemy import func as sa_func
    from sqlmodel import select as sm_select

    from forms.odata import Cursor, encode_skiptoken
    from storage.models import Submission

    with services.db.read() as tx:
        newest = tx.exec(sm_select(sa_func.max(Submission.id))).one()
    deep = int(count * 0.9)
    pages = [
        ("OData page 1", {"$top": "100"}),
        (
            f"OData page at row {deep:,}",
            {"$top": "100", "$skiptoken": encode_skiptoken(Cursor(newest - deep, 1))},
        ),
    ]
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        for label, params in pages:
            times, rss = [], []
            for _ in range(7):
                t0 = time.perf_counter()
                response = client.get(path, params=params)
                times.append((time.perf_counter() - t0) * 1000)
                rss.append(status_kb("VmRSS") / 1024)
                response.raise_for_status()
            rows = len(response.json()["value"])
            times.sort()
            print(
                f"{label}: median {times[len(times) // 2]:.1f} ms, max {times[-1]:.1f} ms, "
                f"{rows} rows, RSS {max(rss):.0f} MB (target 50 ms)"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument(
        "--backend",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="postgres = PostgreSQL + SeaweedFS S3; sqlite = SQLite + a folder",
    )
    parser.add_argument("--media-mb", type=int, default=1024, help="MB of photos to zip")
    parser.add_argument("--photo-mb", type=float, default=1.0)
    parser.add_argument("--distinct-photos", type=int, default=64)
    parser.add_argument("--direct", action="store_true", help="run the generators, no HTTP")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("csv", "xlsx", "media", "odata"),
        help="leave an export out",
    )
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="jebol-bench-export-"))
    cleanup = contextlib.ExitStack()
    try:
        services = cleanup.enter_context(bench_services(args.backend, work))
        size = int(args.photo_mb * MB)
        photos_needed = max(1, int(args.media_mb * MB // size))
        photo_submissions = min(args.count, photos_needed // 2 + 1)  # ~2 stored photos each
        log(f"storing {args.distinct_photos} distinct photos of {size / MB:.1f} MB")
        blobs = make_blobs(services, args.distinct_photos, size)
        project_id, token = insert_world(services, args.count, photo_submissions, blobs, size)
        auth = {"Authorization": f"Bearer {token}"}
        base = f"/v1/projects/{project_id}/forms/{VISIT}"
        runs = [
            (
                "csv",
                "CSV zip without media",
                "submissions.csv.zip",
                {"attachments": "false"},
                exports.ExportOptions("csv.zip", attachments=False),
            ),
            ("xlsx", "XLSX", "submissions.xlsx", {}, exports.ExportOptions("xlsx")),
            ("media", "media ZIP (photos)", "media.zip", {}, exports.ExportOptions("media")),
        ]
        print(
            f"backend: {args.backend}; {args.count} submissions; "
            f"{'generators called directly' if args.direct else 'through HTTP (LiveServer)'}"
        )
        server_context = contextlib.nullcontext() if args.direct else LiveServer(services)
        with server_context as server:
            for key, label, tail, params, options in runs:
                if key in args.skip:
                    continue
                if args.direct:
                    measure(label, direct_stream(services, project_id, options))
                else:
                    measure(label, http_stream(server, f"{base}/{tail}", auth, params))
            if server is not None and "odata" not in args.skip:
                odata_pages(services, server, f"{base}.svc/Submissions", auth, args.count)
        return 0
    finally:
        cleanup.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
