#!/usr/bin/env python
"""Ingest benchmark for JEBOL SIPERA: how fast `jebol serve` takes submissions, and at what memory.

Run from the repository root with the project's venv:

    .venv/bin/python bench/ingest.py                          # many mode, sqlite + local blobs
    .venv/bin/python bench/ingest.py --backend postgres       # many mode, PostgreSQL + SeaweedFS S3
    .venv/bin/python bench/ingest.py --mode big --size-mb 500 # one 500 MB attachment, streamed

The script starts the real server (`.venv/bin/jebol serve`) as a subprocess on a free
127.0.0.1 port with a fresh temporary data folder, talks to it the way ODK Collect does
(OpenRosa multipart POST to `{collect_url}/submission`), samples the server's memory from
/proc, verifies what the server stored, prints its figures and stops the server again
(SIGTERM, then SIGKILL after 10 s). It is a benchmark, not a test: it needs no pytest.
Figures go to stdout, progress notes (prefixed "#") to stderr. The exit status is 0 when every
answer was 201, every check passed and (big mode) the memory target was met, else 1.

Modes
-----
many (default)
    --count submissions of the shipped form `jebol_sipera_kunjungan` (its shipped version),
    each with --photos unique JPEG photos of --photo-mb MB (a noise JPEG made with Pillow, with
    unique random bytes appended after its EOI marker, so every photo is a valid, distinct
    JPEG). All photos are made before the clock starts and are held in the client's memory
    (about count x photos x photo-mb). --concurrency threads, each with its own keep-alive
    httpx.Client, send them. Printed: submissions/s, MB/s of photo bytes, p50/p95/max latency,
    the number of answers other than 201 (must be 0), the server's peak RSS and the main
    process' VmHWM, then a check that the server holds exactly the sent submissions, attachment
    rows and blobs (local store: every blob file is re-hashed; S3: every object is stat'ed).

big
    One submission carrying one attachment of --size-mb MB. The file is written once to a
    temporary file (a 1 MiB random block repeated, with a per-MiB counter) and httpx streams
    the multipart body from the open file, so the client never holds it in memory. The server
    is started with JEBOL_MAX_SUBMISSION_BYTES above the size. A small warm-up submission is
    sent first (unless --no-warmup) so the baseline RSS already includes the code paths of an
    upload. Printed: upload time, MB/s, time to send the body and the time the server needed
    after the last byte, the server's RSS before, peak during, growth, and PASS/FAIL against
    "growth under --rss-limit-mb MB" (default 64). The growth is the larger of the 50 ms
    samples' and the kernel's: a process whose VmHWM rose during the upload grew by at least
    (VmHWM after - its RSS before), even between two samples. Then the stored blob's SHA-256 is compared
    with the sent file's (local: the blob file is hashed; S3: the object is downloaded and
    hashed, skip with --no-verify-hash).

Backends (--backend)
--------------------
sqlite   = sqlite+local: SQLite file DATA_DIR/jebol.sqlite3 and blob folder DATA_DIR/blobs.
postgres = postgres+s3:  a throwaway PostgreSQL database on the local server (dropped at the
           end) and a throwaway SeaweedFS with its S3 gateway (tests.services helpers).
sqlite+s3 and postgres+local mix the two, to tell the database's share from the store's.

Memory figures
--------------
A background thread reads VmRSS from /proc/<pid>/status of the server process and of all
its descendants (uvicorn with --workers > 1 runs the app in child processes) every 50 ms;
"RSS" is the sum over that process tree. VmHWM is the kernel's high-water mark of one
process. MB means MiB (1,048,576 bytes) everywhere, for sizes, rates and memory.

CPU figures
-----------
The client runs on the same machine and competes with the server for CPU (on a 2-core
machine, 8 client threads, the server and, with S3, SeaweedFS share them). Printed per run:
CPU seconds of the server tree (user + sys), of this client, of SeaweedFS, and of "other
processes": the rest of the machine's busy time from /proc/stat (PostgreSQL's backends, the
kernel's writeback, and anything else running, e.g. someone's test suite). A large "other"
figure means the numbers of that run are disturbed: run again on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import math
import os
import queue
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from procstat import machine_busy_seconds, own_cpu_seconds  # noqa: E402
from shipped import version_of  # noqa: E402

from tests.collect import instance_xml  # noqa: E402  (plain module: httpx only)
from tests.services import SeaweedS3, ThrowawayPostgres, free_port  # noqa: E402

MB = 1024 * 1024
FORM_ID = "jebol_sipera_kunjungan"
FORM_VERSION = version_of(FORM_ID)
HEADERS = {
    "X-OpenRosa-Version": "1.0",
    "User-Agent": "org.odk.collect.android/v2024.3.0 jebol-bench",
}
URL_RE = re.compile(r"(https?://\S+/v1/key/\S+)")
SAMPLE_SECONDS = 0.05
STOP_GRACE = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- /proc ------------------------------------------------------------------------------------


def _read_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of one process in bytes ({} if it is gone)."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, rest = line.split(":", 1)
                    values[key] = int(rest.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return values


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (via /proc/<pid>/task/<tid>/children)."""
    seen: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as handle:
                    todo.extend(int(x) for x in handle.read().split())
            except OSError:
                pass
    return seen


def tree_rss(pid: int) -> int:
    return sum(_read_status(p).get("VmRSS", 0) for p in process_tree(pid))


def tree_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process tree (live processes only)."""
    user = system = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            user += int(fields[11])  # utime (field 14)
            system += int(fields[12])  # stime (field 15)
        except (OSError, IndexError, ValueError):
            pass
    return user / CLK_TCK, system / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    return sum(tree_cpu(pid))


class RssSampler:
    """Samples the RSS of a process tree every 50 ms in a background thread."""

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (time, tree RSS, process count)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = process_tree(self.pid)
            rss = sum(_read_status(p).get("VmRSS", 0) for p in pids)
            if rss:
                self.samples.append((time.perf_counter(), rss, len(pids)))
            self._stop.wait(self.interval)

    def peak(self, since: float = 0.0, until: float = math.inf) -> int:
        values = [rss for t, rss, _ in self.samples if since <= t <= until]
        return max(values) if values else 0

    def max_processes(self) -> int:
        return max((n for _, _, n in self.samples), default=0)


# ---- backends -----------------------------------------------------------------------------------


@dataclass
class Backend:
    db: str  # sqlite | postgres
    store: str  # local | s3
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    database_url: str | None = None
    pg: ThrowawayPostgres | None = None
    s3: SeaweedS3 | None = None

    @property
    def name(self) -> str:
        return f"{self.db}+{self.store}"

    def start(self) -> None:
        if self.db == "postgres":
            self.pg = ThrowawayPostgres()
            self.database_url = self.pg.create()
            self.env["JEBOL_DATABASE_URL"] = self.database_url
        if self.store == "s3":
            t0 = time.perf_counter()
            self.s3 = SeaweedS3(self.workdir / "seaweed").start()
            log(f"SeaweedFS S3 at {self.s3.endpoint} ready in {time.perf_counter() - t0:.1f} s")
            self.env.update(
                JEBOL_S3_ENDPOINT=self.s3.endpoint,
                JEBOL_S3_ACCESS_KEY=self.s3.access_key,
                JEBOL_S3_SECRET_KEY=self.s3.secret_key,
                JEBOL_S3_BUCKET="jebol",
            )

    def store_cpu_seconds(self) -> float | None:
        """CPU seconds used so far by the SeaweedFS process tree (None without S3)."""
        proc = getattr(self.s3, "_proc", None) if self.s3 is not None else None
        return tree_cpu_seconds(proc.pid) if proc is not None else None

    def stop(self) -> None:
        if self.s3 is not None:
            with contextlib.suppress(Exception):
                self.s3.stop()
        if self.pg is not None:
            try:
                self.pg.drop()
            except Exception as error:  # noqa: BLE001 - report, keep cleaning up
                log(f"warning: could not drop the PostgreSQL database {self.pg.name}: {error}")

    def query(self, data_dir: Path, sql: str) -> Any:
        """One scalar from the server's database."""
        if self.db == "sqlite":
            path = data_dir / "jebol.sqlite3"
            with contextlib.closing(
                sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            ) as conn:
                return conn.execute(sql).fetchone()[0]
        import psycopg

        assert self.database_url is not None
        url = self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url, connect_timeout=10) as conn:
            return conn.execute(sql).fetchone()[0]

    def rows(self, data_dir: Path, sql: str) -> list[tuple]:
        if self.db == "sqlite":
            path = data_dir / "jebol.sqlite3"
            with contextlib.closing(
                sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            ) as conn:
                return conn.execute(sql).fetchall()
        import psycopg

        assert self.database_url is not None
        url = self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url, connect_timeout=10) as conn:
            return conn.execute(sql).fetchall()


def blob_key(sha256: str) -> str:  # as storage.blobs.blob_key
    return f"blobs/sha256/{sha256[0:2]}/{sha256[2:4]}/{sha256}"


# ---- the server ---------------------------------------------------------------------------------


class Server:
    """`jebol serve` in a subprocess (own session, so stragglers can be killed as a group)."""

    def __init__(
        self,
        workdir: Path,
        backend: Backend,
        workers: int,
        extra_env: dict[str, str] | None = None,
        start_timeout: float = 90.0,
        command: list[str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "server.log"
        self.port = free_port()
        self.backend = backend
        self.workers = workers
        self.extra_env = extra_env or {}
        self.start_timeout = start_timeout
        self.command = command
        self.proc: subprocess.Popen | None = None
        self.collect_url = ""
        self.main_hwm = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JEBOL_")}
        env.update(self.backend.env)
        env.update(self.extra_env)
        env.update(
            JEBOL_DATA_DIR=str(self.data_dir),
            JEBOL_HOST="127.0.0.1",
            JEBOL_PORT=str(self.port),
            JEBOL_WORKERS=str(self.workers),
            PYTHONUNBUFFERED="1",
        )
        command = self.command
        if not command:
            jebol = Path(sys.executable).parent / "jebol"
            if not jebol.exists():
                jebol = REPO / ".venv" / "bin" / "jebol"
            command = [str(jebol), "serve"]
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                command,
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = t0 + self.start_timeout
        while not self.collect_url:
            self._check_alive("while starting")
            match = URL_RE.search(self.log_path.read_text(errors="replace"))
            if match:
                self.collect_url = match.group(1).rstrip("/")
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(
                    f"no Collect URL after {self.start_timeout:.0f} s\n{self.log_tail()}"
                )
            time.sleep(0.1)
        while True:  # the port, then the app
            self._check_alive("before listening")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                if (
                    httpx.get(f"http://127.0.0.1:{self.port}/health/live", timeout=5).status_code
                    == 200
                ):
                    break
            except (OSError, httpx.HTTPError):
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(
                    f"port {self.port} not answering after "
                    f"{self.start_timeout:.0f} s\n{self.log_tail()}"
                )
            time.sleep(0.1)
        if self.workers > 1:  # wait until every worker has started its app
            while len(process_tree(self.pid)) < self.workers + 1 and time.perf_counter() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
        log(
            f"server pid {self.pid} on 127.0.0.1:{self.port}, {self.workers} worker(s), "
            f"ready in {time.perf_counter() - t0:.1f} s"
        )

    def _check_alive(self, when: str) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {self.proc.returncode} {when}\n{self.log_tail()}"
            )

    def hwm(self) -> dict[int, int]:
        return {p: _read_status(p).get("VmHWM", 0) for p in process_tree(self.pid)}

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                log(f"server did not stop {STOP_GRACE:.0f} s after SIGTERM: SIGKILL")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only its processes
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"(no server log: {error})"


# ---- submissions ----------------------------------------------------------------------------------


def submission_body(index: int, photo_names: list[str]) -> str:
    """Answers of `jebol_sipera_kunjungan` in the element nesting of its XForm instance."""
    opds = ["dinkes", "disdik", "dpupr", "kominfo", "dukcapil", "rsud", "bpbd", "dishub"]
    opd = opds[index % len(opds)]
    main = photo_names[0] if photo_names else ""
    kegiatan = photo_names[1] if len(photo_names) > 1 else ""
    bukti_photos = photo_names[2:]
    bukti = "".join(
        "<bukti><bukti_indikator>ind25</bukti_indikator><bukti_jenis>foto</bukti_jenis>"
        "<bukti_status>lengkap</bukti_status><bukti_nomor/><bukti_tanggal>2025-05-20</bukti_tanggal>"
        f"<bukti_judul>Foto sosialisasi {n + 1}</bukti_judul><bukti_foto>{name}</bukti_foto>"
        "<bukti_catatan>Spanduk terlihat jelas</bukti_catatan></bukti>"
        for n, name in enumerate(bukti_photos)
    )
    if not bukti:
        bukti = (
            "<bukti><bukti_indikator>ind16</bukti_indikator><bukti_jenis>sk</bukti_jenis>"
            "<bukti_status>kurang</bukti_status><bukti_nomor>800/123/BLD-2025</bukti_nomor>"
            "<bukti_tanggal>2025-03-01</bukti_tanggal><bukti_judul>SK Tim Inovasi</bukti_judul>"
            "<bukti_foto/><bukti_catatan>Foto menyusul</bukti_catatan></bukti>"
        )
    return (
        "<mulai>2025-06-02T09:00:00.000+07:00</mulai><selesai>2025-06-02T10:30:00.000+07:00</selesai>"
        f"<perangkat>collect:bench{index % 50:04d}</perangkat><petugas_login>Petugas 1</petugas_login>"
        f"<g_kunjungan><tgl_kunjungan>2025-06-02</tgl_kunjungan><opd>{opd}</opd><opd_lain/>"
        f"<unit_kerja>UPT {index}</unit_kerja><petugas>petugas_1 petugas_2</petugas><petugas_lain/>"
        "<cp_nama>Budi Santoso</cp_nama><cp_jabatan>Kepala Seksi</cp_jabatan>"
        "<cp_hp>081234567890</cp_hp><lokasi>-0.6833 100.7833 250.0 5.0</lokasi></g_kunjungan>"
        "<inovasi><inv_nama>SIPERA Sehat</inv_nama><inv_nama_baru>tidak</inv_nama_baru><inv_nama_lama/>"
        "<inv_tahapan>penerapan</inv_tahapan><inv_jenis>digital</inv_jenis>"
        "<inv_bentuk>pelayanan_publik</inv_bentuk><inv_urusan>u02</inv_urusan>"
        "<inv_uji_coba>2024-01-15</inv_uji_coba><inv_penerapan>2024-07-01</inv_penerapan>"
        "<inv_masalah>data_dukung regulasi</inv_masalah>"
        "<inv_masalah_uraian>SK belum ditandatangani; foto kegiatan belum lengkap.</inv_masalah_uraian>"
        "<inv_rekomendasi>Lengkapi SK Kepala Daerah dan unggah foto kegiatan.</inv_rekomendasi>"
        "<inv_dd_ada>ind25 ind30</inv_dd_ada><inv_dd_kurang>ind16</inv_dd_kurang><inv_jml_ada>2</inv_jml_ada>"
        f"{bukti}</inovasi>"
        f"<g_penutup><jml_inovasi>1</jml_inovasi><foto_daftar_hadir>{main}</foto_daftar_hadir>"
        + (f"<foto_kegiatan>{kegiatan}</foto_kegiatan>" if kegiatan else "<foto_kegiatan/>")
        + "<ttd_cp/><tgl_tindak_lanjut>2025-06-16</tgl_tindak_lanjut>"
        "<catatan_umum>Kunjungan lancar.</catatan_umum></g_penutup>"
    )


def make_submission_xml(index: int, photo_names: list[str]) -> bytes:
    return instance_xml(
        FORM_ID,
        FORM_VERSION,
        f"uuid:{uuid.uuid4()}",
        submission_body(index, photo_names),
        instance_name=f"bench {index}",
    )


def base_jpeg(target: int) -> bytes:
    """A noise JPEG (quality 95) a little smaller than `target` bytes."""
    from PIL import Image

    side = max(16, int(math.sqrt(target / 2.2)))
    data = b""
    for _ in range(6):
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=95)
        data = buffer.getvalue()
        if 0.85 * target <= len(data) <= target - 64:
            break
        side = max(16, int(side * math.sqrt(0.93 * target / len(data))))
    return data


def unique_photo(base: bytes, target: int, index: int) -> bytes:
    """`base` plus unique bytes after its EOI marker (still a valid JPEG), `target` bytes long."""
    marker = b"JEBOL-BENCH" + struct.pack(">Q", index) + os.urandom(16)
    pad = max(0, target - len(base) - len(marker))
    return base + marker + os.urandom(pad)


@dataclass
class Result:
    latency: float
    status: int | None
    error: str = ""


def cpu_line(
    wall: float, server: list[float], client: float, store: float | None, busy: float
) -> str:
    """Who used the CPU during `wall` seconds; 'other' is the rest of the machine."""
    total = sum(server)
    other = busy - total - client - (store or 0.0)
    parts = [
        f"server {total:.1f} s ({total / wall * 100:.0f}% of one core; user {server[0]:.1f} "
        f"+ sys {server[1]:.1f})",
        f"client {client:.1f} s ({client / wall * 100:.0f}%)",
    ]
    if store is not None:
        parts.append(f"SeaweedFS {store:.1f} s ({store / wall * 100:.0f}%)")
    parts.append(f"other processes {max(other, 0.0):.1f} s ({max(other, 0.0) / wall * 100:.0f}%)")
    return (
        f"  CPU during the run ({os.cpu_count()} cores = {os.cpu_count() * 100}%, shared): "
        + ", ".join(parts)
    )


def _delta(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# ---- mode: many -----------------------------------------------------------------------------------


def run_many(args: argparse.Namespace, backend: Backend, server: Server) -> bool:
    target = int(args.photo_mb * MB)
    t0 = time.perf_counter()
    base = base_jpeg(target)
    jobs: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    expected: dict[str, int] = {}  # sha256 -> size
    for i in range(args.count):
        photos = []
        for k in range(args.photos):
            data = unique_photo(base, target, i * args.photos + k)
            photos.append((f"{1700000000000 + i * args.photos + k}.jpg", data))
            expected[hashlib.sha256(data).hexdigest()] = len(data)
        jobs.append((make_submission_xml(i, [name for name, _ in photos]), photos))
    photo_bytes = sum(len(data) for _, photos in jobs for _, data in photos)
    log(
        f"made {args.count * args.photos} unique JPEGs of {target / MB:.2f} MB "
        f"(noise JPEG {len(base)} bytes + unique tail) in {time.perf_counter() - t0:.1f} s "
        "(not timed)"
    )

    sampler = RssSampler(server.pid).start()
    time.sleep(0.5)
    rss_before = tree_rss(server.pid)
    work: queue.Queue[int] = queue.Queue()
    for i in range(args.count):
        work.put(i)
    results: list[Result] = []
    lock = threading.Lock()
    start = threading.Barrier(args.concurrency + 1)
    url = f"{server.collect_url}/submission"

    def client(number: int) -> None:
        timeout = httpx.Timeout(args.timeout, connect=10.0)
        with httpx.Client(timeout=timeout, headers=HEADERS) as http:
            start.wait()
            while True:
                try:
                    i = work.get_nowait()
                except queue.Empty:
                    return
                xml, photos = jobs[i]
                parts = [("xml_submission_file", ("submission.xml", xml, "text/xml"))]
                parts += [(name, (name, data, "image/jpeg")) for name, data in photos]
                began = time.perf_counter()
                try:
                    if args.head:
                        http.head(url, params={"deviceID": f"collect:bench{number}"})
                    response = http.post(
                        url, files=parts, params={"deviceID": f"collect:bench{number}"}
                    )
                    result = Result(
                        time.perf_counter() - began,
                        response.status_code,
                        "" if response.status_code == 201 else response.text[:300],
                    )
                except httpx.HTTPError as error:
                    result = Result(
                        time.perf_counter() - began, None, f"{type(error).__name__}: {error}"
                    )
                with lock:
                    results.append(result)

    threads = [
        threading.Thread(target=client, args=(n,), name=f"client-{n}")
        for n in range(args.concurrency)
    ]
    for thread in threads:
        thread.start()
    cpu_server0, cpu_client0 = tree_cpu(server.pid), own_cpu_seconds()
    cpu_store0, busy0 = backend.store_cpu_seconds(), machine_busy_seconds()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    cpu_server_split = [b - a for a, b in zip(cpu_server0, tree_cpu(server.pid))]
    cpu_client = own_cpu_seconds() - cpu_client0
    cpu_store = _delta(backend.store_cpu_seconds(), cpu_store0)
    busy = machine_busy_seconds() - busy0
    time.sleep(0.2)
    sampler.stop()
    peak = sampler.peak(since=began)
    hwm = server.hwm()
    rss_now = {p: _read_status(p).get("VmRSS", 0) for p in process_tree(server.pid)}

    latencies = sorted(r.latency * 1000 for r in results)
    errors = [r for r in results if r.status != 201]
    rate = len(results) / wall
    print(
        f"ingest many: {args.count} submissions x {args.photos} photo(s) x "
        f"{target / MB:.2f} MB, {args.concurrency} clients, {args.workers} worker(s), "
        f"backend {backend.name}: {rate:.1f} sub/s, {photo_bytes / MB / wall:.1f} MB/s, "
        f"p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
        f"max {latencies[-1]:.0f} ms, server peak RSS {peak / MB:.0f} MB, errors {len(errors)}"
    )
    print(
        f"  wall {wall:.2f} s for {photo_bytes / MB:.0f} MB of photos; "
        f"latency min {latencies[0]:.0f} ms, mean {sum(latencies) / len(latencies):.0f} ms, "
        f"p99 {percentile(latencies, 99):.0f} ms"
    )
    print(
        f"  server RSS (sum over {sampler.max_processes()} process(es)): before "
        f"{rss_before / MB:.0f} MB, peak {peak / MB:.0f} MB (+{(peak - rss_before) / MB:.0f} MB); "
        f"VmHWM main {hwm.get(server.pid, 0) / MB:.0f} MB (includes setup)"
        + (
            f", children {', '.join(f'{v / MB:.0f}' for p, v in hwm.items() if p != server.pid)} MB"
            f"; RSS now main {rss_now.get(server.pid, 0) / MB:.0f} MB, children "
            f"{', '.join(f'{v / MB:.0f}' for p, v in rss_now.items() if p != server.pid)} MB"
            if len(hwm) > 1
            else ""
        )
    )
    print(cpu_line(wall, cpu_server_split, cpu_client, cpu_store, busy))
    if errors:
        kinds: dict[str, int] = {}
        for r in errors:
            kinds[f"{r.status} {r.error[:160]}"] = kinds.get(f"{r.status} {r.error[:160]}", 0) + 1
        for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  error x{n}: {kind}")
    ok = not errors
    ok &= verify_many(args, backend, server, expected)
    return ok


def verify_many(
    args: argparse.Namespace, backend: Backend, server: Server, expected: dict[str, int]
) -> bool:
    t0 = time.perf_counter()
    n_sub = backend.query(server.data_dir, "SELECT count(*) FROM submission")
    n_att = backend.query(
        server.data_dir, "SELECT count(*) FROM submission_attachment WHERE blob_sha256 IS NOT NULL"
    )
    n_missing = backend.query(
        server.data_dir, "SELECT count(*) FROM submission_attachment WHERE blob_sha256 IS NULL"
    )
    rows = backend.rows(
        server.data_dir,
        "SELECT blob_sha256, size FROM submission_attachment WHERE blob_sha256 IS NOT NULL",
    )
    in_db = {sha: size for sha, size in rows}
    want_att = args.count * args.photos
    ok = n_sub == args.count and n_att == want_att and in_db == expected
    line = (
        f"  verify: database holds {n_sub} submissions (want {args.count}), {n_att} stored "
        f"attachments (want {want_att}), {n_missing} missing; rows match sent photos: "
        f"{'yes' if in_db == expected else 'NO'}"
    )
    if backend.store == "local":
        root = server.data_dir / "blobs" / "blobs" / "sha256"
        files = [p for p in root.rglob("*") if p.is_file()]
        tmp_left = [p for p in (server.data_dir / "tmp").rglob("*") if p.is_file()]
        good = 0
        for sha in expected:
            path = server.data_dir / "blobs" / blob_key(sha)
            if path.is_file() and _file_sha256(path) == sha:
                good += 1
        line += (
            f"; blob files {len(files)} (incl. form files), {good}/{len(expected)} sent photos "
            f"present with the right SHA-256; {len(tmp_left)} temp file(s) left"
        )
        ok &= good == len(expected) and not tmp_left
    else:
        assert backend.s3 is not None
        client = backend.s3.client(timeout=30)
        good = 0
        for sha, size in expected.items():
            try:
                if client.stat_object("jebol", blob_key(sha)).size == size:
                    good += 1
            except Exception:  # noqa: BLE001 - counted as missing
                pass
        tmp_left = [p for p in (server.data_dir / "tmp").rglob("*") if p.is_file()]
        line += (
            f"; S3 objects present with the right size: {good}/{len(expected)}; "
            f"{len(tmp_left)} temp file(s) left"
        )
        ok &= good == len(expected) and not tmp_left
    print(line + f" ({time.perf_counter() - t0:.1f} s)")
    print(f"  verify: {'PASS' if ok else 'FAIL'}")
    return ok


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(4 * MB), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- mode: big ------------------------------------------------------------------------------------


class TrackedFile(io.RawIOBase):
    """A read-only file that notes when its last byte was read (= the body was sent)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")
        self.size = os.fstat(self._file.fileno()).st_size
        self.eof_at: float | None = None
        self.first_read_at: float | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int = -1) -> bytes:
        if self.first_read_at is None:
            self.first_read_at = time.perf_counter()
        data = self._file.read(size)
        if self._file.tell() >= self.size and self.eof_at is None:
            self.eof_at = time.perf_counter()
        return data

    def close(self) -> None:
        self._file.close()
        super().close()


def write_big_file(path: Path, size: int) -> str:
    """`size` bytes: a small valid JPEG, then a 1 MiB random block repeated with a counter."""
    digest = hashlib.sha256()
    head = base_jpeg(64 * 1024)
    block = bytearray(os.urandom(MB))
    written = 0
    with open(path, "wb") as out:
        first = head[:size]
        out.write(first)
        digest.update(first)
        written = len(first)
        counter = 0
        while written < size:
            block[0:8] = struct.pack(">Q", counter)
            counter += 1
            chunk = bytes(block[: min(MB, size - written)])
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return digest.hexdigest()


def post_small(server: Server, index: int) -> int:
    name = f"warmup-{index}.jpg"
    photo = unique_photo(base_jpeg(MB), MB, 10**9 + index)
    xml = make_submission_xml(10**6 + index, [name])
    with httpx.Client(timeout=60, headers=HEADERS) as http:
        response = http.post(
            f"{server.collect_url}/submission",
            files=[
                ("xml_submission_file", ("submission.xml", xml, "text/xml")),
                (name, (name, photo, "image/jpeg")),
            ],
        )
    return response.status_code


def run_big(
    args: argparse.Namespace, backend: Backend, server: Server, big_path: Path, big_sha: str
) -> bool:
    size = big_path.stat().st_size
    if not args.no_warmup:
        status = post_small(server, 1)
        log(f"warm-up submission (1 MB photo): {status}")
        if status != 201:
            print(f"ingest big: warm-up submission answered {status}; FAIL")
            return False
        time.sleep(1.0)
    sampler = RssSampler(server.pid).start()
    time.sleep(0.5)
    rss_before = max(rss for _, rss, _ in sampler.samples[-5:])
    before_by_pid = {p: _read_status(p) for p in process_tree(server.pid)}
    hwm_before = before_by_pid.get(server.pid, {}).get("VmHWM", 0)
    name = "foto_besar.jpg"
    xml = make_submission_xml(0, [name])
    tracked = TrackedFile(big_path)
    cpu_server0, cpu_client0 = tree_cpu(server.pid), own_cpu_seconds()
    cpu_store0, busy0 = backend.store_cpu_seconds(), machine_busy_seconds()
    timeout = httpx.Timeout(args.timeout, connect=10.0)
    began = time.perf_counter()
    status: int | None = None
    body = ""
    try:
        with httpx.Client(timeout=timeout, headers=HEADERS) as http:
            response = http.post(
                f"{server.collect_url}/submission",
                files=[
                    ("xml_submission_file", ("submission.xml", xml, "text/xml")),
                    (name, (name, tracked, "image/jpeg")),
                ],
                params={"deviceID": "collect:bench-big"},
            )
            status, body = response.status_code, response.text
    except httpx.HTTPError as error:
        body = f"{type(error).__name__}: {error}"
    finished = time.perf_counter()
    tracked.close()
    cpu_server_split = [b - a for a, b in zip(cpu_server0, tree_cpu(server.pid))]
    cpu_client = own_cpu_seconds() - cpu_client0
    cpu_store = _delta(backend.store_cpu_seconds(), cpu_store0)
    busy = machine_busy_seconds() - busy0
    time.sleep(0.5)
    after = tree_rss(server.pid)
    sampler.stop()
    peak = sampler.peak(since=began, until=finished + 0.1)
    hwm_after = server.hwm()
    hwm = hwm_after.get(server.pid, 0)
    sampled_growth = peak - rss_before
    # Cross-check with the kernel's high-water marks: a process whose VmHWM rose during the
    # upload peaked at least (VmHWM after - its RSS before) above its baseline, even between
    # two 50 ms samples.
    hwm_growth = max(
        (
            v - before_by_pid[p].get("VmRSS", 0)
            for p, v in hwm_after.items()
            if p in before_by_pid and v > before_by_pid[p].get("VmHWM", 0)
        ),
        default=0,
    )
    growth = max(sampled_growth, hwm_growth)
    elapsed = finished - began
    sent_at = tracked.eof_at or finished
    limit = args.rss_limit_mb * MB
    passed = status == 201 and growth < limit
    client_hwm = _read_status(os.getpid()).get("VmHWM", 0)

    print(
        f"ingest big: 1 submission with a {size / MB:.0f} MB attachment, backend {backend.name}, "
        f"{args.workers} worker(s): status {status}, upload {elapsed:.1f} s, "
        f"{size / MB / elapsed:.1f} MB/s, server RSS before {rss_before / MB:.0f} MB, "
        f"peak {peak / MB:.0f} MB, growth {growth / MB:.1f} MB -> "
        f"{'PASS' if passed else 'FAIL'} (target: growth under {args.rss_limit_mb} MB)"
    )
    print(
        f"  body sent after {sent_at - began:.1f} s ({size / MB / (sent_at - began):.1f} MB/s); "
        f"201 came {finished - sent_at:.1f} s after the last byte (server: hash/copy to the store, "
        f"database)"
    )
    print(
        f"  growth from 50 ms RSS samples {sampled_growth / MB:.1f} MB, from VmHWM "
        + (
            f"{hwm_growth / MB:.1f} MB"
            if hwm_growth
            else "- (no process set a new high-water mark)"
        )
        + f"; server RSS 0.5 s after: {after / MB:.0f} MB; VmHWM main before "
        f"{hwm_before / MB:.0f} MB (includes setup), after {hwm / MB:.0f} MB; "
        f"client VmHWM {client_hwm / MB:.0f} MB (streams from the file)"
    )
    print(cpu_line(elapsed, cpu_server_split, cpu_client, cpu_store, busy))
    if status != 201:
        print(f"  answer: {body[:500]}")
        return False
    return verify_big(args, backend, server, name, big_sha, size) and passed


def verify_big(
    args: argparse.Namespace, backend: Backend, server: Server, name: str, sha: str, size: int
) -> bool:
    rows = backend.rows(
        server.data_dir,
        f"SELECT blob_sha256, size FROM submission_attachment WHERE name = '{name}'",
    )
    db_ok = rows == [(sha, size)]
    line = f"  verify: attachment row {'matches' if db_ok else f'MISMATCH {rows!r}'}"
    ok = db_ok
    t0 = time.perf_counter()
    if backend.store == "local":
        path = server.data_dir / "blobs" / blob_key(sha)
        stored = _file_sha256(path) if path.is_file() else "(missing)"
        line += f"; stored blob SHA-256 {'==' if stored == sha else '!='} sent ({stored[:16]}…)"
        ok &= stored == sha
    elif args.no_verify_hash:
        line += "; S3 object hash not checked (--no-verify-hash)"
    else:
        assert backend.s3 is not None
        client = backend.s3.client(timeout=120)
        digest = hashlib.sha256()
        response = client.get_object("jebol", blob_key(sha))
        try:
            for chunk in response.stream(4 * MB):
                digest.update(chunk)
        finally:
            response.close()
            response.release_conn()
        stored = digest.hexdigest()
        line += f"; S3 object SHA-256 {'==' if stored == sha else '!='} sent ({stored[:16]}…)"
        ok &= stored == sha
    tmp_left = [p for p in (server.data_dir / "tmp").rglob("*") if p.is_file()]
    line += f"; {len(tmp_left)} temp file(s) left ({time.perf_counter() - t0:.1f} s)"
    ok &= not tmp_left
    print(line)
    print(f"  verify: {'PASS' if ok else 'FAIL'}")
    return ok


# ---- main -----------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/ingest.py",
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mode",
        choices=["many", "big"],
        default="many",
        help="many: many ~1 MB photo submissions in parallel; big: one huge "
        "attachment (default: many)",
    )
    parser.add_argument(
        "--backend",
        default="sqlite",
        choices=[
            "sqlite",
            "postgres",
            "sqlite+local",
            "sqlite+s3",
            "postgres+local",
            "postgres+s3",
        ],
        help="sqlite = sqlite+local, postgres = postgres+s3 (default: sqlite)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="JEBOL_WORKERS (default 2, as jebol serve)"
    )
    parser.add_argument(
        "--count", type=int, default=300, help="many: number of submissions (default 300)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="many: client threads, one keep-alive httpx.Client each (default 8)",
    )
    parser.add_argument(
        "--photos",
        type=int,
        default=1,
        help="many: photos per submission (1: foto_daftar_hadir, 2: + foto_kegiatan, "
        "more: /inovasi/bukti/bukti_foto repeats) (default 1)",
    )
    parser.add_argument(
        "--xml-only",
        action="store_true",
        help="many: submissions without attachments (the XML alone; same as --photos 0)",
    )
    parser.add_argument(
        "--photo-mb", type=float, default=1.0, help="many: size of each photo in MB (default 1.0)"
    )
    parser.add_argument(
        "--head",
        action="store_true",
        help="many: send Collect's HEAD /submission before every POST",
    )
    parser.add_argument(
        "--size-mb", type=int, default=500, help="big: attachment size in MB (default 500)"
    )
    parser.add_argument(
        "--rss-limit-mb",
        type=int,
        default=64,
        help="big: PASS if the server's RSS grows less than this (default 64)",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="big: no small submission before measuring the baseline RSS",
    )
    parser.add_argument(
        "--no-verify-hash",
        action="store_true",
        help="big on S3: do not download the object to compare its SHA-256",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="client read/write timeout in s (default 120 many, 1800 big)",
    )
    parser.add_argument(
        "--tmp",
        type=Path,
        default=None,
        help="folder for the work directory (default: the system temp folder)",
    )
    parser.add_argument(
        "--server-cmd",
        default=None,
        help="command that starts the server instead of `.venv/bin/jebol serve` "
        "(split on spaces; e.g. to run it under a profiler); it must print "
        "the Collect URL like `jebol serve` does",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the work directory (data folder, server log) at the end",
    )
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = 1800.0 if args.mode == "big" else 120.0
    if args.xml_only:
        args.photos = 0
    if min(args.workers, args.count, args.concurrency, args.size_mb) < 1 or args.photos < 0:
        parser.error("--workers, --count, --concurrency and --size-mb must be >= 1, --photos >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    db, _, store = args.backend.partition("+")
    store = store or ("s3" if db == "postgres" else "local")
    workdir = Path(tempfile.mkdtemp(prefix="jebol-bench-", dir=args.tmp))
    backend = Backend(db=db, store=store, workdir=workdir)
    server: Server | None = None
    ok = False
    big_path = workdir / "big-upload.bin"
    try:
        extra: dict[str, str] = {}
        big_sha = ""
        if args.mode == "big":
            t0 = time.perf_counter()
            big_sha = write_big_file(big_path, args.size_mb * MB)
            log(
                f"wrote {args.size_mb} MB test file in {time.perf_counter() - t0:.1f} s (not timed)"
            )
            extra["JEBOL_MAX_SUBMISSION_BYTES"] = str(args.size_mb * MB + 16 * MB)
        backend.start()
        server = Server(
            workdir,
            backend,
            args.workers,
            extra,
            command=args.server_cmd.split() if args.server_cmd else None,
        )
        server.start()
        if args.mode == "many":
            ok = run_many(args, backend, server)
        else:
            ok = run_big(args, backend, server, big_path, big_sha)
        if server.proc is not None and server.proc.poll() is not None:
            print(f"  server died during the run (exit {server.proc.returncode})")
            ok = False
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as error:  # noqa: BLE001 - report with the server's log
        log(f"benchmark failed: {type(error).__name__}: {error}")
        if server is not None:
            log("server log tail:\n" + server.log_tail())
    finally:
        if server is not None:
            server.stop()
        backend.stop()
        with contextlib.suppress(OSError):
            big_path.unlink()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
