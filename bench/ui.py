#!/usr/bin/env python
"""UI benchmark for JEBOL SIPERA: how fast the supervisor's pages answer on a form with many
submissions, over real HTTP, warm.

Run from the repository root with the project's venv:

    .venv/bin/python bench/ui.py                                  # sqlite + local blobs, 10,000
    .venv/bin/python bench/ui.py --backend postgres --count 2000  # PostgreSQL + SeaweedFS S3
    .venv/bin/python bench/ui.py --count 1000 --repeat 3          # a quick run

What it does
------------
1. A fresh data folder (and for postgres a throwaway database on the local PostgreSQL and a
   throwaway SeaweedFS S3, tests.services helpers); `Services(settings).prepare()`.
2. Publishes the shipped visit form `forms/library/jebol_sipera_kunjungan.xlsx` into a new
   project, makes 5 app users (the submitters) and a supervisor web user
   (`users.create_user` + `assign_role(..., "supervisor", ...)`).
3. Writes a pool of --photo-pool (200) distinct small JPEGs with Pillow (800x600 scenes,
   20-40 KB; most with EXIF DateTimeOriginal, some with GPS near Sawahlunto or far from it, some
   without EXIF, and ~5 % resized re-compressed copies of other pool photos: near-duplicates).
4. Loads --count submissions of the form with `storage.submissions.ingest` directly (no HTTP),
   from --threads threads: OPD cycling through the form's `opd` choices, visit dates over the
   last 6 months, a geopoint near Sawahlunto (-0.68 100.78), 1-3 innovations with 1-2 evidence
   rows each, an attendance photo (and sometimes an activity photo); 2-4 photos a submission,
   each an IncomingFile pointing at a pool file under a Collect-style name (`<ms>.jpg`).
   Every pool file is used by ~100+ submissions, so nearly every photo is a `duplicate` on the
   evidence board: the worst case for the flags. Printed: the load rate.
   Then each submission's `created_at` is moved to its visit day (a phone that synced that
   day), so the keyset order and the since/until filters meet months of data, as in
   production; --no-backdate keeps the load time instead.
5. Sets review states on ~10 % (`set_review_state`: hasIssues 5 %, approved 4 %, rejected 1 %).
6. Warms the caches (not timed): `photos.ensure_analyzed` over every blob digest (the
   photo_meta rows), and the 320 px thumbnail of every pool photo (`thumbs.ensure_thumbnail`),
   which covers the first page of the board and every other page.
7. Starts the app with tests.live.LiveServer (uvicorn in a thread of this process), logs in
   like a browser (GET /login for the `jebol_csrf` cookie and `_csrf_token`, POST /login ->
   `jebol_session` cookie), requests each page once untimed (template compilation, connection
   pools), then --repeat times, and prints median and max latency against --target-ms (300)
   as PASS/FAIL. Latency on loopback ~ server time. Pages: project home; the submissions table
   (page 1; the page reached by following its "More" link --deep-pages times; filters state,
   opd, q, since/until, combined); the evidence board (page 1, flag=duplicate,
   group=question); one pre-rendered thumbnail. Before timing it waits (--wait-quiet) for
   other processes to leave the CPU, and prints the CPU other processes used meanwhile: a
   large figure means the run was disturbed (2-core machines shared with test suites).
8. Times the storage calls behind each page directly (median of --repeat), so a slow page
   can be split into its database / Python shares (the rest of a page's time is the template
   and HTTP), plus a what-if: `near_duplicate_pairs` over as many distinct random pHashes as
   the form has photos (what the board's flags cost when every photo is its own file, as in
   the field, instead of ~200 shared ones). Prints the process' RSS (VmRSS/VmHWM of this
   process: the server runs in-thread, so it includes the loader's and the client's memory;
   VmHWM is reset before the server starts, so the later peak is the serving phase's).

Figures go to stdout, progress notes (prefixed "#") to stderr. Exit status 0 when every page
met the target, else 1. MB means MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import io
import logging
import math
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import sqlalchemy as sa
from procstat import machine_busy_seconds, own_cpu_seconds, reset_peak  # noqa: E402

from forms import photos as photo_rules
from server.app import Services
from server.settings import Settings
from storage import app_users, browse, photos, projects, roles, thumbs, users
from storage import forms as form_store
from storage import submissions as subs
from storage.models import Blob, Submission, SubmissionVersion
from tests.collect import instance_xml
from tests.live import LiveServer
from tests.services import SeaweedS3, ThrowawayPostgres

MB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
FORM_ID = "jebol_sipera_kunjungan"
FORM_FILE = REPO / "forms" / "library" / f"{FORM_ID}.xlsx"
SAWAHLUNTO = (-0.68, 100.78)
FAR_PLACES = [
    (-0.95, 100.35),
    (-0.30, 100.37),
    (-0.47, 100.40),
]  # Padang, Bukittinggi, Padang Panjang
SUPERVISOR_EMAIL = "supervisor@bench.local"
SUPERVISOR_PASSWORD = "bench-sandi-panjang"
WIB = timezone(timedelta(hours=7))
SEARCH_TEXT = "posyandu"  # in one innovation name of INNOVATIONS: about 1 in 30 submissions

INNOVATIONS = [
    "SIPERA Sehat",
    "Si Cantik Kota",
    "E-Arsip Sawahlunto",
    "Lapor Cepat Warga",
    "Posyandu Digital",
    "Sekolah Ramah Anak",
    "Jemput Bola Adminduk",
    "Pasar Tertib",
    "Tambang Wisata Edukasi",
    "Si Pandai Tani",
    "Rumah Sakit Tanpa Antre",
    "Damkar Siaga 24",
    "Bank Sampah Nagari",
    "Kartu Sehat Lansia",
    "Perpustakaan Keliling",
    "Sawahlunto Satu Data",
    "Ojek Sekolah",
    "E-Retribusi Pasar",
    "Aplikasi Izin Kilat",
    "Kampung KB Mandiri",
    "Sapa Warga Online",
    "Perizinan Tanpa Kertas",
    "Gerai UMKM Digital",
    "Smart Parking Kota",
    "Lumbung Pangan Desa",
    "Si Jago Bencana",
    "Klinik Inovasi ASN",
    "Festival Songket",
    "Dokter Kecil Sekolah",
    "Pojok Baca Digital",
]
NAMES = [
    "Budi Santoso",
    "Siti Rahmawati",
    "Andi Pratama",
    "Dewi Lestari",
    "Rudi Hartono",
    "Yeni Marlina",
    "Fajar Hidayat",
    "Rina Susanti",
    "Hendra Gunawan",
    "Nurul Aini",
]
POSITIONS = ["Kepala Seksi", "Sekretaris", "Kasubbag Program", "Kepala Bidang", "Analis Kebijakan"]
TAHAPAN = ["inisiatif", "uji_coba", "penerapan"]
JENIS = ["digital", "non_digital"]
BENTUK = ["tata_kelola", "pelayanan_publik", "lainnya"]
MASALAH = ["paham", "tak_sadar", "anggaran", "branding", "data_dukung", "regulasi", "video"]
JENIS_BUKTI = ["sk", "st", "anggaran", "rkpd", "sop", "laporan", "daftar", "foto", "screenshot"]
STATUS_DD = ["lengkap", "kurang", "belum"]
INDICATORS = [f"ind{n}" for n in range(16, 36)]


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in bytes."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with open("/proc/self/status") as handle:
        for line in handle:
            key = line.split(":", 1)[0]
            if key in values:
                values[key] = int(line.split()[1]) * 1024
    return values["VmRSS"], values["VmHWM"]


def wait_for_quiet(limit: float, max_other: float = 0.25, sample: float = 3.0) -> float:
    """Wait (up to `limit` s) until other processes use under `max_other` of one core over
    `sample` s; returns the share last seen (the machine may be shared with test suites)."""
    deadline = time.perf_counter() + limit
    while True:
        busy0, own0 = machine_busy_seconds(), own_cpu_seconds()
        time.sleep(sample)
        share = max(machine_busy_seconds() - busy0 - (own_cpu_seconds() - own0), 0.0) / sample
        if share < max_other or time.perf_counter() >= deadline:
            return share
        log(f"other processes use {share * 100:.0f}% of a core: waiting for a quieter machine")


def rss_text() -> str:
    now, peak = rss()
    return f"VmRSS {now / MB:.0f} MB, VmHWM {peak / MB:.0f} MB"


# ---- backend ----------------------------------------------------------------------------------


@dataclass
class Backend:
    kind: str  # sqlite | postgres
    workdir: Path
    pg: ThrowawayPostgres | None = None
    s3: SeaweedS3 | None = None

    def settings(self) -> Settings:
        values: dict[str, object] = {
            "data_dir": str(self.workdir / "data"),
            "public_url": "http://127.0.0.1",
            "secret_key": "bench-secret",
        }
        if self.kind == "postgres":
            self.pg = ThrowawayPostgres()
            values["database_url"] = self.pg.create()
            t0 = time.perf_counter()
            self.s3 = SeaweedS3(self.workdir / "seaweed").start()
            log(
                f"PostgreSQL database {self.pg.name}; SeaweedFS S3 at {self.s3.endpoint} ready in "
                f"{time.perf_counter() - t0:.1f} s"
            )
            values.update(
                s3_endpoint=self.s3.endpoint,
                s3_access_key=self.s3.access_key,
                s3_secret_key=self.s3.secret_key,
                s3_bucket="jebol",
            )
        return Settings.from_env({}, **values)

    def stop(self) -> None:
        if self.s3 is not None:
            with contextlib.suppress(Exception):
                self.s3.stop()
        if self.pg is not None:
            try:
                self.pg.drop()
            except Exception as error:  # noqa: BLE001 - report, keep cleaning up
                log(f"warning: could not drop the PostgreSQL database {self.pg.name}: {error}")


# ---- photos -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolPhoto:
    path: Path
    sha256: str
    size: int
    kind: str  # exif+gps | exif+far | exif | exif-nodate | none | near-dup


def _scene(rng: random.Random, size: tuple[int, int] = (800, 600)):
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    tint = rng.randrange(256)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=(y * 255 // height, tint, 255 - y * 255 // height))
    for _ in range(14):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        box = [x0, y0, x0 + rng.randrange(40, 300), y0 + rng.randrange(40, 300)]
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    noise = Image.effect_noise(size, 18).convert("RGB")  # texture: realistic JPEG sizes
    return Image.blend(image, noise, 0.12)


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)


def _exif(rng: random.Random, taken: datetime | None, gps: tuple[float, float] | None):
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = rng.choice(["samsung", "Xiaomi", "OPPO", "vivo"])  # Make
    exif[0x0110] = rng.choice(["SM-A155F", "Redmi Note 13", "A78", "Y36"])  # Model
    if taken is not None:
        exif.get_ifd(0x8769)[36867] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if gps is not None:
        ifd = exif.get_ifd(0x8825)
        ifd[1], ifd[2] = ("S" if gps[0] < 0 else "N"), _dms(gps[0])
        ifd[3], ifd[4] = ("W" if gps[1] < 0 else "E"), _dms(gps[1])
    return exif


def make_photo_pool(folder: Path, count: int, today: date, seed: int) -> list[PoolPhoto]:
    """`count` distinct JPEGs (20-40 KB), written to `folder`, with their digests."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pool: list[PoolPhoto] = []
    images: list[Any] = []
    for index in range(count):
        roll = rng.random()
        near = index >= 20 and roll < 0.05
        if near:  # the same picture, resized and re-compressed: a near-duplicate
            image = rng.choice(images).resize((640, 480))
        else:
            image = _scene(rng)
            images = [*images[-9:], image]  # a few recent ones to copy: bounded memory
        taken = datetime.combine(
            today - timedelta(days=rng.randrange(183)), datetime.min.time()
        ) + timedelta(seconds=rng.randrange(8 * 3600, 17 * 3600))
        if near:
            kind, exif = "near-dup", _exif(rng, taken, None)
        elif roll < 0.20:
            kind, exif = "none", None  # a screenshot or a forwarded chat picture
        elif roll < 0.30:
            kind, exif = "exif-nodate", _exif(rng, None, None)
        elif roll < 0.60:
            kind, exif = "exif", _exif(rng, taken, None)
        elif roll < 0.90:
            point = (
                SAWAHLUNTO[0] + rng.uniform(-0.003, 0.003),
                SAWAHLUNTO[1] + rng.uniform(-0.003, 0.003),
            )
            kind, exif = "exif+gps", _exif(rng, taken, point)
        else:
            kind, exif = "exif+far", _exif(rng, taken, rng.choice(FAR_PLACES))
        out = io.BytesIO()
        options: dict[str, Any] = {"quality": rng.randrange(65, 86)}
        if exif is not None:
            options["exif"] = exif.tobytes()
        image.save(out, "JPEG", **options)
        data = out.getvalue()
        path = folder / f"pool-{index:04d}.jpg"
        path.write_bytes(data)
        pool.append(PoolPhoto(path, hashlib.sha256(data).hexdigest(), len(data), kind))
    return pool


# ---- submissions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    index: int
    xml: bytes
    files: list[subs.IncomingFile]
    visit: date
    received: datetime  # what created_at becomes (backdated)
    sender: subs.Sender


def _text(value: str) -> str:
    return html.escape(value, quote=False)


def plan_submission(
    index: int,
    rng: random.Random,
    opds: list[str],
    pool: list[PoolPhoto],
    today: date,
    now: datetime,
    senders: list[subs.Sender],
    version: str,
) -> Planned:
    opd = opds[index % len(opds)]
    visit = today - timedelta(days=rng.randrange(183))
    start = datetime.combine(visit, datetime.min.time(), WIB) + timedelta(
        seconds=rng.randrange(8 * 3600, 15 * 3600)
    )
    end = start + timedelta(minutes=rng.randrange(30, 150))
    received = min(end + timedelta(minutes=rng.randrange(5, 3 * 24 * 60)), now)
    n_photos = rng.randint(2, 4)
    picked = rng.sample(pool, n_photos)
    stamp = int(start.timestamp() * 1000)
    names = [f"{stamp + 7919 * j}.jpg" for j in range(n_photos)]
    files = [
        subs.IncomingFile(
            name=name,
            path=photo.path,
            size=photo.size,
            sha256=photo.sha256,
            content_type="image/jpeg",
        )
        for name, photo in zip(names, picked)
    ]
    attendance, rest = names[0], names[1:]
    activity = rest.pop(0) if len(rest) >= 2 and rng.random() < 0.3 else ""
    evidence = rest  # 1..3 photos, one evidence row each, spread over 1..3 innovations
    n_innovations = rng.randint(math.ceil(len(evidence) / 2), len(evidence))
    rows_per = [1] * n_innovations
    for extra in range(len(evidence) - n_innovations):
        rows_per[extra] += 1
    photo_iter = iter(evidence)
    innovations = []
    for count in rows_per:
        tahapan = rng.choice(TAHAPAN)
        name = rng.choice(INNOVATIONS)
        ada = rng.sample(INDICATORS, rng.randint(1, 3))
        kurang = rng.sample([i for i in INDICATORS if i not in ada], rng.randint(0, 2))
        bukti = ""
        for _ in range(count):
            jenis = rng.choice(JENIS_BUKTI)
            nomor = (
                f"800/{rng.randint(1, 999)}/{opd.upper()}-{visit.year}"
                if jenis in ("sk", "st", "anggaran", "rkpd", "sop")
                else ""
            )
            bukti += (
                f"<bukti><bukti_indikator>{rng.choice(ada + kurang)}</bukti_indikator>"
                f"<bukti_jenis>{jenis}</bukti_jenis>"
                f"<bukti_status>{rng.choice(STATUS_DD)}</bukti_status>"
                f"<bukti_nomor>{nomor}</bukti_nomor>"
                f"<bukti_tanggal>{visit - timedelta(days=rng.randrange(400))}</bukti_tanggal>"
                f"<bukti_judul>{_text(rng.choice(['Dokumen', 'Foto', 'Laporan']))} "
                f"{_text(name)}</bukti_judul><bukti_foto>{next(photo_iter)}</bukti_foto>"
                f"<bukti_catatan>{rng.choice(['Lengkap', 'Perlu tanda tangan', ''])}"
                "</bukti_catatan></bukti>"
            )
        trial = visit - timedelta(days=rng.randrange(60, 700))
        innovations.append(
            f"<inovasi><inv_nama>{_text(name)}</inv_nama>"
            f"<inv_nama_baru>{rng.choice(['ya', 'tidak'])}</inv_nama_baru><inv_nama_lama/>"
            f"<inv_tahapan>{tahapan}</inv_tahapan><inv_jenis>{rng.choice(JENIS)}</inv_jenis>"
            f"<inv_bentuk>{rng.choice(BENTUK)}</inv_bentuk>"
            f"<inv_urusan>u{rng.randint(1, 38):02d}</inv_urusan>"
            f"<inv_uji_coba>{trial if tahapan != 'inisiatif' else ''}</inv_uji_coba>"
            f"<inv_penerapan>{trial + timedelta(days=90) if tahapan == 'penerapan' else ''}"
            "</inv_penerapan>"
            f"<inv_masalah>{' '.join(rng.sample(MASALAH, rng.randint(1, 3)))}</inv_masalah>"
            f"<inv_masalah_uraian>Kunjungan ke-{index}: data dukung {_text(name)} belum lengkap."
            "</inv_masalah_uraian>"
            "<inv_rekomendasi>Lengkapi SK dan unggah foto kegiatan berlatar spanduk.</inv_rekomendasi>"
            f"<inv_dd_ada>{' '.join(ada)}</inv_dd_ada><inv_dd_kurang>{' '.join(kurang)}</inv_dd_kurang>"
            f"<inv_jml_ada>{len(ada)}</inv_jml_ada>{bukti}</inovasi>"
        )
    lat = SAWAHLUNTO[0] + rng.gauss(0, 0.01)
    lon = SAWAHLUNTO[1] + rng.gauss(0, 0.01)
    sender = senders[index % len(senders)]
    body = (
        f"<mulai>{start.isoformat(timespec='milliseconds')}</mulai>"
        f"<selesai>{end.isoformat(timespec='milliseconds')}</selesai>"
        f"<perangkat>{sender.device_id}</perangkat><petugas_login>Petugas</petugas_login>"
        f"<g_kunjungan><tgl_kunjungan>{visit}</tgl_kunjungan><opd>{opd}</opd>"
        f"<opd_lain>{'Kantor Camat Sementara' if opd == 'lainnya' else ''}</opd_lain>"
        f"<unit_kerja>{rng.choice(['', 'UPT Puskesmas', 'SDN 05', 'UPTD Pasar', 'Seksi Layanan'])}"
        "</unit_kerja>"
        f"<petugas>{' '.join(sorted(rng.sample(['petugas_1', 'petugas_2', 'petugas_3'], 2)))}"
        "</petugas><petugas_lain/>"
        f"<cp_nama>{rng.choice(NAMES)}</cp_nama><cp_jabatan>{rng.choice(POSITIONS)}</cp_jabatan>"
        f"<cp_hp>08{rng.randrange(10**9, 10**10)}</cp_hp>"
        f"<lokasi>{lat:.6f} {lon:.6f} {rng.uniform(150, 450):.1f} {rng.uniform(3, 15):.1f}</lokasi>"
        "</g_kunjungan>"
        + "".join(innovations)
        + f"<g_penutup><jml_inovasi>{len(innovations)}</jml_inovasi>"
        f"<foto_daftar_hadir>{attendance}</foto_daftar_hadir>"
        + (f"<foto_kegiatan>{activity}</foto_kegiatan>" if activity else "<foto_kegiatan/>")
        + f"<ttd_cp/><tgl_tindak_lanjut>{visit + timedelta(days=rng.randint(7, 45))}"
        "</tgl_tindak_lanjut>"
        f"<catatan_umum>{rng.choice(['Kunjungan lancar.', 'OPD kooperatif.', ''])}</catatan_umum>"
        "</g_penutup>"
    )
    xml = instance_xml(
        FORM_ID,
        version,
        f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        body,
        instance_name=f"{opd} {visit}",
    )
    return Planned(index, xml, files, visit, received.astimezone(UTC), sender)


@dataclass
class Loaded:
    submission_ids: list[tuple[int, int, datetime]]  # (submission id, version id, backdate)
    instance_ids: list[str]
    seconds: float


def load(services: Services, project_id: int, plans: list[Planned], threads: int) -> Loaded:
    done = 0
    lock = threading.Lock()
    results: list[tuple[int, int, datetime, str] | None] = [None] * len(plans)
    t0 = time.perf_counter()
    step = max(1000, len(plans) // 10)

    def work(part: list[Planned]) -> None:
        nonlocal done
        for plan in part:
            outcome = subs.ingest(
                services.db,
                services.blobs,
                project_id,
                plan.xml,
                plan.files,
                sender=plan.sender,
                xml_form_id=FORM_ID,
            )
            if outcome.outcome != "created" or outcome.missing:
                raise RuntimeError(
                    f"submission {plan.index}: {outcome.outcome}, missing {outcome.missing}"
                )
            results[plan.index] = (
                outcome.submission.id,
                outcome.version.id,
                plan.received,
                outcome.submission.instance_id,
            )
            with lock:
                done += 1
                if done % step == 0:
                    elapsed = time.perf_counter() - t0
                    log(f"loaded {done}/{len(plans)} in {elapsed:.0f} s ({done / elapsed:.0f}/s)")

    parts = [plans[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as executor:
        for future in [executor.submit(work, part) for part in parts]:
            future.result()
    seconds = time.perf_counter() - t0
    rows = [r for r in results if r is not None]
    return Loaded([(s, v, at) for s, v, at, _ in rows], [r[3] for r in rows], seconds)


def backdate(services: Services, loaded: Loaded) -> None:
    """created_at of each submission and its version := when its phone sent it (visit day)."""
    with services.db.transaction() as tx:
        for start in range(0, len(loaded.submission_ids), 1000):
            chunk = loaded.submission_ids[start : start + 1000]
            tx.execute(sa.update(Submission), [{"id": s, "created_at": at} for s, _, at in chunk])
            tx.execute(
                sa.update(SubmissionVersion), [{"id": v, "created_at": at} for _, v, at in chunk]
            )


# ---- HTTP ---------------------------------------------------------------------------------------

CSRF_INPUT = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
MORE_LINK = re.compile(r'href="\?([^"]*?after=[A-Za-z0-9_\-]+)"')


def log_in(client: httpx.Client) -> str:
    page = client.get("/login")
    page.raise_for_status()
    match = CSRF_INPUT.search(page.text)
    if match is None or "jebol_csrf" not in client.cookies:
        raise RuntimeError("GET /login gave no CSRF token or cookie")
    answer = client.post(
        "/login",
        data={
            "email": SUPERVISOR_EMAIL,
            "password": SUPERVISOR_PASSWORD,
            "next": "/",
            "_csrf_token": html.unescape(match.group(1)),
        },
    )
    if answer.status_code != 303 or "jebol_session" not in client.cookies:
        raise RuntimeError(f"POST /login answered {answer.status_code}: {answer.text[:300]}")
    return "UI login (GET /login, POST /login with _csrf_token) -> jebol_session cookie"


def next_link(text: str) -> str | None:
    match = MORE_LINK.search(text)
    return "?" + html.unescape(match.group(1)) if match else None


def describe(response: httpx.Response) -> str:
    """What a page showed: table rows or board tiles, and whether it links a next page."""
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/html"):
        return kind.split(";")[0]
    text = response.text
    more = ", more" if MORE_LINK.search(text) else ", last page"
    tiles = text.count('class="tile"')
    if 'class="board' in text:
        return f"{tiles} tiles{more}"
    rows = text.count("<tr>") + text.count('<tr class="">') + text.count('<tr class="overdue">')
    return f"{max(rows - 1, 0)} rows{more}"


@dataclass
class Timing:
    label: str
    path: str
    times: list[float]
    first: float
    status: int
    note: str

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def worst(self) -> float:
        return max(self.times)


def time_get(client: httpx.Client, label: str, path: str, repeat: int) -> Timing:
    t0 = time.perf_counter()
    response = client.get(path)
    first = time.perf_counter() - t0
    if response.status_code != 200:
        raise RuntimeError(
            f"{label}: GET {path} answered {response.status_code}: {response.text[:300]}"
        )
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"{label}: GET {path} answered {response.status_code}")
    note = f"{describe(response)}, {len(response.content) / 1024:.0f} KB"
    return Timing(label, path, times, first, response.status_code, note)


# ---- direct storage timings -------------------------------------------------------------------


def time_call(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    fn()  # warm
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def storage_breakdown(
    services: Services, project_id: int, deep_cursor: str | None, repeat: int
) -> list[tuple[str, float, str]]:
    """Median times of the storage calls behind each page (the handler's own calls)."""
    from server.ui import i18n

    db, blobs = services.db, services.blobs
    form = form_store.get_form(db, project_id, FORM_ID)
    version = form_store.current_version(db, form)
    schema = form_store.schema_of(version)
    lines: list[tuple[str, float, str]] = []

    def add(label: str, fn: Callable[[], Any], note: Callable[[Any], str] = lambda _: "") -> Any:
        seconds, result = time_call(fn, repeat)
        lines.append((label, seconds, note(result)))
        return result

    add("project home: browse.form_stats", lambda: browse.form_stats(db, project_id))
    add(
        "project home: browse.opd_coverage",
        lambda: browse.opd_coverage(db, project_id, i18n.label, date.today()),
        lambda r: f"{len(r)} OPDs",
    )
    add(
        "form context: get_form + current_version + schema_of",
        lambda: form_store.schema_of(
            form_store.current_version(db, form_store.get_form(db, project_id, FORM_ID))
        ),
    )
    for label, filters, cursor, count in [
        ("table: page_submissions, page 1 (with count)", browse.Filters(), None, True),
        ("table: page_submissions, page 1 (no count)", browse.Filters(), None, False),
        ("table: page_submissions, deep page (cursor)", browse.Filters(), deep_cursor, False),
        ("table: page_submissions state=hasIssues", browse.Filters(state="hasIssues"), None, True),
        ("table: page_submissions opd=dinkes", browse.Filters(opd="dinkes"), None, True),
        (f"table: page_submissions q={SEARCH_TEXT}", browse.Filters(text=SEARCH_TEXT), None, True),
        (
            "table: page_submissions since/until 30 days",
            browse.Filters(
                since=date.today() - timedelta(days=60), until=date.today() - timedelta(days=30)
            ),
            None,
            True,
        ),
    ]:
        if cursor is None and "deep" in label:
            continue
        add(
            label,
            lambda f=filters, c=cursor, n=count: browse.page_submissions(
                db, form, f, cursor=c, schema=schema, count=n
            ),
            lambda p: f"{len(p.rows)} rows, total {p.total}",
        )
    page = add(
        "board: page_submissions (60, no count)",
        lambda: browse.page_submissions(
            db, form, browse.Filters(), limit=60, schema=schema, count=False
        ),
        lambda p: f"{len(p.rows)} rows",
    )
    every = add(
        "board: photos.list_form_photos",
        lambda: photos.list_form_photos(db, form.id),
        lambda r: f"{len(r)} photos",
    )
    ids = {row.submission.id for row in page.rows}
    shown = [p for p in every if p.submission_id in ids]
    facts = add(
        "board: ensure_analyzed(shown)",
        lambda: photos.ensure_analyzed(db, blobs, [p.sha256 for p in shown]),
        lambda r: f"{len(r)} facts",
    )
    add(
        "board: ensure_analyzed(rest, limit=0)",
        lambda: photos.ensure_analyzed(
            db, blobs, [p.sha256 for p in every if p.sha256 not in facts], limit=0
        ),
        lambda r: f"{len(r)} facts",
    )
    all_facts = photos.ensure_analyzed(db, blobs, [p.sha256 for p in every])
    add(
        "board: photos.compute_flags(every)",
        lambda: photo_rules.compute_flags(every, all_facts),
        lambda r: f"{sum(1 for f in r.values() if f)} flagged of {len(r)}",
    )
    # What-if: the pool makes the form hold only ~200 distinct files. In the field every photo is
    # its own file with its own pHash, and near_duplicate_pairs compares about n^2/32 pairs.
    rnd = random.Random(7)
    distinct = {f"{i:064x}": f"{rnd.getrandbits(64):016x}" for i in range(len(every))}
    add(
        f"what-if: near_duplicate_pairs, {len(every)} distinct pHashes",
        lambda: photo_rules.near_duplicate_pairs(distinct),
        lambda r: f"{len(r)} pairs (random hashes)",
    )
    return lines


# ---- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/ui.py",
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="sqlite = SQLite + local blob folder; postgres = PostgreSQL + "
        "SeaweedFS S3 (default: sqlite)",
    )
    parser.add_argument(
        "--count", type=int, default=10_000, help="submissions to load (default 10000)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="timed requests per page, after one untimed (default 5)",
    )
    parser.add_argument("--threads", type=int, default=2, help="loader threads (default 2)")
    parser.add_argument(
        "--photo-pool",
        type=int,
        default=200,
        help="distinct JPEGs the submissions share (default 200)",
    )
    parser.add_argument(
        "--deep-pages",
        type=int,
        default=100,
        help="follow the table's More link this many pages deep (default 100)",
    )
    parser.add_argument(
        "--target-ms",
        type=float,
        default=300.0,
        help="PASS when a page's max latency is under this (default 300)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=300.0,
        help="before timing, wait up to this many seconds until other processes "
        "use under 25%% of a core (default 300; 0: do not wait)",
    )
    parser.add_argument(
        "--no-backdate",
        action="store_true",
        help="keep created_at = load time instead of the visit day",
    )
    parser.add_argument("--seed", type=int, default=20250101, help="random seed")
    parser.add_argument(
        "--tmp",
        type=Path,
        default=None,
        help="folder for the work directory (default: the system temp folder)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if min(args.count, args.repeat, args.threads, args.photo_pool) < 1 or args.photo_pool < 4:
        parser.error("--count, --repeat, --threads must be >= 1 and --photo-pool >= 4")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="jebol-bench-ui-", dir=args.tmp))
    backend = Backend(args.backend, workdir)
    ok = False
    try:
        ok = run(args, backend, workdir)
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        backend.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


def run(args: argparse.Namespace, backend: Backend, workdir: Path) -> bool:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request on stderr
    rng = random.Random(args.seed)
    today = date.today()
    now = datetime.now(UTC)
    settings = backend.settings()
    services = Services(settings)
    services.prepare()
    db = services.db
    name = "sqlite+local" if args.backend == "sqlite" else "postgres+s3"
    try:
        # -- setup: project, form, users --------------------------------------------------------
        project = projects.create_project(db, "Jemput Bola Inovasi")
        published = form_store.publish_xlsform(
            db, services.blobs, project.id, FORM_FILE.read_bytes(), FORM_FILE.name
        )
        schema = form_store.schema_of(published.version)
        opd_field = schema.field("/g_kunjungan/opd")
        assert opd_field is not None
        opds = [c.value for c in opd_field.choices]
        senders = []
        for n in range(1, 6):
            app_user = app_users.create_app_user(db, services.box, project.id, f"Petugas {n}")
            senders.append(
                subs.Sender(
                    app_user.actor.id,
                    f"collect:bench{n:04d}",
                    "org.odk.collect.android/v2024.3.0 jebol-bench",
                )
            )
        user = users.create_user(
            db, SUPERVISOR_EMAIL, SUPERVISOR_PASSWORD, display_name="Supervisor Bench"
        )
        roles.assign_role(db, project.id, "supervisor", user.actor_id)
        log(
            f"project {project.id}, form {FORM_ID} version {published.version.version} "
            f"({len(opds)} OPD choices), 5 app users, supervisor {SUPERVISOR_EMAIL}"
        )

        # -- photos and submissions -------------------------------------------------------------
        t0 = time.perf_counter()
        pool = make_photo_pool(workdir / "pool", args.photo_pool, today, args.seed)
        kinds = Counter(p.kind for p in pool)
        sizes = sorted(p.size for p in pool)
        log(
            f"photo pool: {len(pool)} JPEGs in {time.perf_counter() - t0:.1f} s, "
            f"{sizes[0] / 1024:.0f}-{sizes[-1] / 1024:.0f} KB"
        )
        t0 = time.perf_counter()
        plans = [
            plan_submission(i, rng, opds, pool, today, now, senders, published.version.version)
            for i in range(args.count)
        ]
        n_files = sum(len(p.files) for p in plans)
        log(
            f"planned {len(plans)} submissions ({n_files} photo references, "
            f"{sum(len(p.xml) for p in plans) / len(plans) / 1024:.1f} KB XML each) "
            f"in {time.perf_counter() - t0:.1f} s"
        )

        loaded = load(services, project.id, plans, args.threads)
        print(f"ui bench, backend {name}, {args.count} submissions of {FORM_ID}")
        print(
            f"  load: {args.count} submissions ({n_files} photos from a pool of {len(pool)} "
            f"JPEGs, {sum(sizes) / len(sizes) / 1024:.0f} KB avg; "
            + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            + f") via storage.submissions.ingest from {args.threads} threads: "
            f"{loaded.seconds:.1f} s = {args.count / loaded.seconds:.0f} submissions/s"
            + (" (over 5 min: use --count)" if loaded.seconds > 300 else "")
        )

        t0 = time.perf_counter()
        if not args.no_backdate:
            backdate(services, loaded)
            print(
                f"  created_at moved to each visit day (last 6 months) in "
                f"{time.perf_counter() - t0:.1f} s"
            )
        t0 = time.perf_counter()
        review_rng = random.Random(args.seed + 1)
        chosen = review_rng.sample(loaded.instance_ids, max(1, len(loaded.instance_ids) // 10))
        states = Counter()
        for k, instance_id in enumerate(chosen):
            state = "hasIssues" if k % 10 < 5 else "approved" if k % 10 < 9 else "rejected"
            subs.set_review_state(
                db, project.id, FORM_ID, instance_id, state, actor_id=user.actor_id
            )
            states[state] += 1
        print(
            f"  review states set on {len(chosen)} submissions ("
            + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
            + f") in {time.perf_counter() - t0:.1f} s"
        )

        # -- warm caches ------------------------------------------------------------------------
        t0 = time.perf_counter()
        with db.read() as tx:
            digests = list(
                tx.exec(sa.select(Blob.sha256).where(Blob.content_type.like("image/%"))).scalars()
            )
        facts = photos.ensure_analyzed(db, services.blobs, digests)
        analysed = time.perf_counter() - t0
        t0 = time.perf_counter()
        used = {p.sha256 for p in pool} & set(digests)
        for digest in used:
            thumbs.ensure_thumbnail(services.blobs, digest, 320)
        print(
            f"  warm-up (not timed): photos.ensure_analyzed over all {len(digests)} image blobs "
            f"({len(facts)} photo_meta rows) {analysed:.1f} s; 320 px thumbnails of all "
            f"{len(used)} stored pool photos (covers the board's first page and every other) "
            f"{time.perf_counter() - t0:.1f} s"
        )
        rss_loaded = rss_text()
        peak_reset = reset_peak()

        # -- HTTP -------------------------------------------------------------------------------
        form_path = f"/p/{project.id}/f/{FORM_ID}"
        results: list[Timing] = []
        deep_cursor: str | None = None
        with LiveServer(services) as live, httpx.Client(base_url=live.url, timeout=120) as client:
            how = log_in(client)
            log(f"server at {live.url}; {how}")
            rss_started = rss_text()
            if args.wait_quiet > 0:
                share = wait_for_quiet(args.wait_quiet)
                log(f"other processes use {share * 100:.0f}% of a core; timing now")
            wall0, busy0, own0 = time.perf_counter(), machine_busy_seconds(), own_cpu_seconds()
            results.append(time_get(client, "project home", f"/p/{project.id}", args.repeat))
            results.append(time_get(client, "table, page 1", form_path, args.repeat))

            # Follow "More" links the way a supervisor scrolls.
            link: str | None = form_path
            walk: list[float] = []
            depth = 0
            last_link = form_path
            while link is not None and depth < args.deep_pages:
                t0 = time.perf_counter()
                response = client.get(link if link.startswith("/") else form_path + link)
                walk.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    raise RuntimeError(f"page {depth + 1} answered {response.status_code}")
                last_link = link if link.startswith("/") else form_path + link
                link = next_link(response.text)
                depth += 1
            deep_cursor = last_link.rsplit("after=", 1)[1] if "after=" in last_link else None
            if deep_cursor is not None:  # (a form with one page has no cursor to follow)
                results.append(
                    time_get(client, f"table, page {depth} (keyset after=)", last_link, args.repeat)
                )
            since, until = today - timedelta(days=60), today - timedelta(days=30)
            quarter = f"since={today - timedelta(days=90)}&until={today}"
            for label, query in [
                ("table state=hasIssues", "state=hasIssues"),
                ("table opd=dinkes", "opd=dinkes"),
                (f"table q={SEARCH_TEXT}", f"q={SEARCH_TEXT}"),
                ("table since/until (30 days)", f"since={since}&until={until}"),
                ("table opd+state+dates", f"opd=dinkes&state=approved&{quarter}"),
            ]:
                results.append(time_get(client, label, f"{form_path}?{query}", args.repeat))
            results.append(time_get(client, "board, page 1", f"{form_path}/board", args.repeat))
            results.append(
                time_get(
                    client, "board flag=duplicate", f"{form_path}/board?flag=duplicate", args.repeat
                )
            )
            results.append(
                time_get(
                    client, "board group=question", f"{form_path}/board?group=question", args.repeat
                )
            )
            first = browse.page_submissions(
                db, form_store.get_form(db, project.id, FORM_ID), browse.Filters(), limit=1
            ).rows[0]
            attachment = subs.list_attachments(
                db, project.id, FORM_ID, first.submission.instance_id
            )[0]
            results.append(
                time_get(
                    client,
                    "thumbnail 320 (pre-rendered)",
                    f"{form_path}/s/{first.submission.instance_id}/thumb/320/{attachment.name}",
                    args.repeat,
                )
            )
            rss_after = rss_text()
            wall = time.perf_counter() - wall0
            own = own_cpu_seconds() - own0
            other = max(machine_busy_seconds() - busy0 - own, 0.0)

        width = max(len(r.label) for r in results)
        print(
            f"  pages over HTTP (LiveServer, uvicorn in-thread, {how.split(' ->')[0]}); "
            f"{args.repeat} timed requests each after 1 untimed; target < {args.target_ms:.0f} ms"
        )
        ok = True
        for r in results:
            passed = r.worst * 1000 < args.target_ms
            ok &= passed
            print(
                f"    {r.label:<{width}}  median {r.median * 1000:7.1f} ms  max "
                f"{r.worst * 1000:7.1f} ms  (first {r.first * 1000:7.1f} ms; {r.note})  "
                f"{'PASS' if passed else 'FAIL'}"
            )
        if walk:
            ordered = sorted(walk)
            print(
                f"    following More {len(walk)} pages deep (one request each): median "
                f"{statistics.median(walk) * 1000:.1f} ms, p95 "
                f"{ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1000:.1f} ms, max "
                f"{ordered[-1] * 1000:.1f} ms"
            )
        print(
            f"  CPU during the HTTP timings ({wall:.0f} s wall, {os.cpu_count()} cores): this "
            f"process (server + client) {own:.1f} s ({own / wall * 100:.0f}% of one core), other "
            f"processes {other:.1f} s ({other / wall * 100:.0f}%)"
            + (
                "; the machine was busy with other work: figures are disturbed"
                if other / wall > 0.25
                else ""
            )
        )
        print(
            f"  memory of this process (server in-thread + loader + client): after load and "
            f"warm-up {rss_loaded}; server started {rss_started}; after the timings {rss_after}"
            + (
                " (VmHWM reset before the server started: the peak while serving)"
                if peak_reset
                else ""
            )
        )

        # -- direct storage timings -------------------------------------------------------------
        print(f"  storage calls behind the pages (direct, median of {args.repeat}):")
        for label, seconds, note in storage_breakdown(
            services, project.id, deep_cursor, args.repeat
        ):
            print(f"    {label:<52} {seconds * 1000:8.1f} ms  {note}")
        print(f"  overall: {'PASS' if ok else 'FAIL'} (every page under {args.target_ms:.0f} ms)")
        return ok
    finally:
        services.db.dispose()


if __name__ == "__main__":
    sys.exit(main())
