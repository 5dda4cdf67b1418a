"""Photo integrity: EXIF facts, perceptual hashes, flags, thumbnails (storage/photos.py, thumbs.py).

Images are generated here with Pillow (EXIF written by Pillow, HEIC by pillow-heif). The pure
parts run once; what touches the database or the blob store runs on each backend.
"""

from __future__ import annotations

import hashlib
import io
import random
import uuid
from datetime import UTC
from pathlib import Path

import pillow_heif
import pytest
import sqlalchemy as sa
from PIL import Image, ImageDraw

from storage import content, photos, submissions, thumbs
from storage import forms as form_store
from storage.errors import InvalidInput, NotFound
from storage.models import PhotoMeta
from storage.photos import ImageFacts, PhotoRow, analyze_image, compute_flags
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.factories import make_project, publish

pillow_heif.register_heif_opener()

FORM = Path(__file__).parent.parent / "data" / "photos" / "kunjungan_foto.md"
SENDER = Sender(actor_id=None, device_id="collect:foto", user_agent="test")
VISIT = "2026-11-20"
POINT = (-0.68, 100.78)  # Sawahlunto


# ---- generated images --------------------------------------------------------------------------


def scene(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A picture with structure (a gradient and shapes), different for each seed."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=(y * 255 // height, 120, 255 - y * 255 // height))
    for _ in range(12):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        box = [x0, y0, x0 + rng.randrange(40, 300), y0 + rng.randrange(40, 300)]
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return (float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4))


def exif_of(
    taken: str | None = None,
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
    plain_datetime: str | None = None,
) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "JebolCam"  # Make: a camera always writes something
    if orientation:
        exif[0x0112] = orientation
    if taken:
        exif.get_ifd(0x8769)[36867] = taken
    if plain_datetime:
        exif[306] = plain_datetime
    if gps:
        ifd = exif.get_ifd(0x8825)
        ifd[1], ifd[2] = ("S" if gps[0] < 0 else "N"), dms(gps[0])
        ifd[3], ifd[4] = ("W" if gps[1] < 0 else "E"), dms(gps[1])
    return exif


def encode(
    image: Image.Image, fmt: str = "JPEG", exif: Image.Exif | None = None, **options: object
) -> bytes:
    out = io.BytesIO()
    if exif is not None:
        options["exif"] = exif.tobytes()
    image.save(out, fmt, **options)
    return out.getvalue()


def camera_photo(
    seed: int,
    taken: str | None = f"{VISIT.replace('-', ':')} 10:00:00",
    gps: tuple[float, float] | None = POINT,
    **options: object,
) -> bytes:
    return encode(scene(seed), exif=exif_of(taken, gps), quality=90, **options)


def unique_seed() -> int:
    """Blobs and their photo_meta rows are shared by every test of a run: fresh bytes per test."""
    return uuid.uuid4().int & 0xFFFFFFFF


def sideways() -> bytes:
    """40x20, red left half, blue right half, EXIF orientation 6 (shown turned 90° clockwise)."""
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))
    image.putpixel((0, 0), (unique_seed() % 200, 0, 0))
    return encode(image, exif=exif_of(orientation=6), quality=95)


# ---- analyze_image ----------------------------------------------------------------------------


def test_analyze_reads_capture_time_gps_with_sign_and_phash():
    data = encode(scene(1), exif=exif_of("2026:11:20 10:00:00", (-0.68, 100.78)))
    facts = analyze_image(data)
    assert facts.error is None and facts.has_exif
    assert (facts.width, facts.height) == (640, 480)
    assert facts.taken_local == "2026-11-20T10:00:00" and facts.taken_date == "2026-11-20"
    assert facts.gps_lat == pytest.approx(-0.68, abs=1e-6)
    assert facts.gps_lon == pytest.approx(100.78, abs=1e-6)
    assert len(facts.phash) == 16 and int(facts.phash, 16) >= 0
    west = analyze_image(encode(scene(1), exif=exif_of(gps=(40.4, -3.7))))
    assert (west.gps_lat, west.gps_lon) == (pytest.approx(40.4), pytest.approx(-3.7))


def test_analyze_falls_back_to_datetime_tag_and_ignores_placeholders():
    plain = analyze_image(encode(scene(2), exif=exif_of(plain_datetime="2026:11:19 07:30:00")))
    assert plain.taken_local == "2026-11-19T07:30:00"
    zeros = analyze_image(encode(scene(2), exif=exif_of("0000:00:00 00:00:00", gps=(0.0, 0.0))))
    assert zeros.has_exif and zeros.taken_local is None and zeros.gps_lat is None


def test_analyze_orientation_swaps_displayed_size():
    facts = analyze_image(sideways())
    assert (facts.width, facts.height) == (20, 40)


def test_analyze_png_without_exif():
    facts = analyze_image(encode(scene(3), "PNG"))
    assert facts.error is None and not facts.has_exif
    assert facts.taken_local is None and facts.gps_lat is None and len(facts.phash) == 16


def test_analyze_heic_with_exif():
    data = encode(scene(4), "HEIF", exif=exif_of("2026:11:20 09:15:00"))
    facts = analyze_image(data)
    assert facts.error is None and facts.has_exif and facts.taken_local == "2026-11-20T09:15:00"
    assert (facts.width, facts.height) == (640, 480)
    jpeg_hash = int(analyze_image(encode(scene(4))).phash, 16)
    assert (int(facts.phash, 16) ^ jpeg_hash).bit_count() <= photos.NEAR_DUPLICATE_MAX_DISTANCE


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"%PDF-1.7\n" + b"x" * 100])
def test_analyze_never_raises_on_non_images(data):
    assert analyze_image(data) == ImageFacts(error="not an image")


def test_analyze_truncated_image_reports_error():
    facts = analyze_image(camera_photo(5)[:2000])
    assert facts.error and facts.error.startswith("could not be decoded")
    assert facts.phash is None


def test_analyze_guards_against_decompression_bombs(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 64x64 image is then over 2x
    facts = analyze_image(encode(Image.new("RGB", (64, 64))))
    assert facts.error == "image too large (more pixels than allowed)"


def test_haversine():
    assert photos.haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-3)
    assert photos.haversine_m(*POINT, *POINT) == 0
    assert photos.haversine_m(-0.68, 100.78, -0.68, 100.79) == pytest.approx(1112, rel=1e-2)


# ---- compute_flags (pure) ----------------------------------------------------------------------


def row(
    submission_id: int,
    name: str,
    sha256: str,
    visit_date: str | None = VISIT,
    geopoint: tuple[float, float] | None = POINT,
) -> PhotoRow:
    return PhotoRow(
        submission_id,
        f"uuid:{submission_id}",
        name,
        sha256,
        "image/jpeg",
        None,
        visit_date,
        geopoint,
    )


def facts_of(**data: bytes) -> dict[str, ImageFacts]:
    return {key: analyze_image(value) for key, value in data.items()}


def test_flags_duplicate_only_across_submissions():
    facts = facts_of(a=camera_photo(10), b=camera_photo(11))
    flags = compute_flags(
        [row(1, "x.jpg", "a"), row(2, "y.jpg", "a"), row(3, "p.jpg", "b"), row(3, "q.jpg", "b")],
        facts,
    )
    assert flags == {
        (1, "x.jpg"): {"duplicate"},
        (2, "y.jpg"): {"duplicate"},
        (3, "p.jpg"): set(),
        (3, "q.jpg"): set(),
    }


def test_flags_near_duplicate_resized_recompressed_but_not_a_different_photo():
    original = camera_photo(12)
    smaller = encode(
        scene(12).resize((320, 240)), exif=exif_of("2026:11:20 10:00:00", POINT), quality=60
    )
    cropped = encode(
        scene(12).crop((8, 6, 632, 474)), exif=exif_of("2026:11:20 10:00:00", POINT), quality=75
    )
    facts = facts_of(a=original, b=smaller, c=cropped, d=camera_photo(13))
    distance = (int(facts["a"].phash, 16) ^ int(facts["c"].phash, 16)).bit_count()
    assert 0 < distance <= photos.NEAR_DUPLICATE_MAX_DISTANCE
    flags = compute_flags(
        [row(1, "a.jpg", "a"), row(2, "b.jpg", "b"), row(3, "c.jpg", "c"), row(4, "d.jpg", "d")],
        facts,
    )
    assert flags[(1, "a.jpg")] == flags[(2, "b.jpg")] == flags[(3, "c.jpg")] == {"near_duplicate"}
    assert flags[(4, "d.jpg")] == set()
    # Near-duplicates inside one submission (two shots of one scene) are not flagged.
    same = compute_flags([row(1, "a.jpg", "a"), row(1, "b.jpg", "b")], facts)
    assert same == {(1, "a.jpg"): set(), (1, "b.jpg"): set()}


def test_flags_date_mismatch():
    facts = facts_of(
        a=camera_photo(14, taken="2026:11:19 23:59:00"),
        b=camera_photo(15),
        c=camera_photo(16, taken=None),
        d=camera_photo(17, taken="2026:11:19 23:59:00"),
    )
    flags = compute_flags(
        [
            row(1, "a.jpg", "a"),
            row(2, "b.jpg", "b"),
            row(3, "c.jpg", "c"),
            row(4, "d.jpg", "d", visit_date=None),
        ],
        facts,
    )
    assert flags[(1, "a.jpg")] == {"date_mismatch"}
    assert flags[(2, "b.jpg")] == flags[(3, "c.jpg")] == flags[(4, "d.jpg")] == set()


def test_flags_far_from_point():
    far = (POINT[0], POINT[1] + 0.02)  # ~2.2 km east
    near = (POINT[0] + 0.004, POINT[1])  # ~450 m north
    facts = facts_of(
        a=camera_photo(18, gps=far),
        b=camera_photo(19, gps=near),
        c=camera_photo(20, gps=None),
        d=camera_photo(21, gps=far),
    )
    flags = compute_flags(
        [
            row(1, "a.jpg", "a"),
            row(2, "b.jpg", "b"),
            row(3, "c.jpg", "c"),
            row(4, "a2.jpg", "d", geopoint=None),
        ],
        facts,
    )
    assert flags[(1, "a.jpg")] == {"far_from_point"}
    assert flags[(2, "b.jpg")] == set()
    assert flags[(3, "c.jpg")] == set()
    assert "far_from_point" not in flags[(4, "a2.jpg")]


def test_flags_no_exif_only_for_decoded_images():
    facts = facts_of(png=encode(scene(22), "PNG"), bad=b"garbage", cam=camera_photo(23))
    flags = compute_flags(
        [
            row(1, "s.png", "png"),
            row(2, "x.jpg", "bad"),
            row(3, "y.jpg", "bad"),
            row(4, "c.jpg", "cam"),
            row(5, "unknown.jpg", "not-analysed"),
        ],
        facts,
    )
    assert flags[(1, "s.png")] == {"no_exif"}
    assert flags[(2, "x.jpg")] == flags[(3, "y.jpg")] == {"duplicate"}
    assert flags[(4, "c.jpg")] == set() and flags[(5, "unknown.jpg")] == set()


def test_flags_by_submission_merges_photos():
    merged = photos.flags_by_submission(
        {(1, "a"): {"no_exif"}, (1, "b"): {"duplicate"}, (2, "c"): set()}
    )
    assert merged == {1: {"no_exif", "duplicate"}, 2: set()}


def test_banding_index_matches_brute_force():
    rng = random.Random(20261120)
    hashes: dict[str, str] = {}
    for i in range(1000):
        value = rng.getrandbits(64)
        hashes[f"h{i}"] = f"{value:016x}"
        if i % 5 == 0:  # plant neighbours at distances 0..9
            near = value
            for bit in rng.sample(range(64), rng.randrange(10)):
                near ^= 1 << bit
            hashes[f"n{i}"] = f"{near:016x}"
    for i in range(40):  # low-detail pictures share bytes: crowded buckets
        hashes[f"z{i}"] = f"{(0x8000000000000000 | rng.getrandbits(12)):016x}"
    keys = sorted(hashes)
    values = {k: int(v, 16) for k, v in hashes.items()}
    close = {
        (a, b): distance
        for i, a in enumerate(keys)
        for b in keys[i + 1 :]
        if (distance := (values[a] ^ values[b]).bit_count()) <= 9
    }
    for max_distance in (0, 3, 6, 7, 9):
        brute = {pair for pair, distance in close.items() if distance <= max_distance}
        assert photos.near_duplicate_pairs(hashes, max_distance) == brute
        assert max_distance == 0 or brute  # the check is not vacuous


# ---- thumbnails ------------------------------------------------------------------------------


class CountingBlobs:
    """A real blob store that counts reads and writes (no behaviour of its own)."""

    def __init__(self, inner):
        self.inner = inner
        self.reads: list[str] = []
        self.puts: list[str] = []

    def read_bytes(self, key):
        self.reads.append(key)
        return self.inner.read_bytes(key)

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        self.puts.append(key)
        return self.inner.put_bytes(key, data, content_type)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def stored(services, data: bytes) -> str:
    return content.put_data(services.blobs, data, "image/jpeg").sha256


def test_thumbnail_key():
    sha = "a" * 64
    assert thumbs.thumbnail_key(320, sha) == f"thumbs/320/{sha}.jpg"
    with pytest.raises(InvalidInput):
        thumbs.thumbnail_key(100, sha)
    with pytest.raises(ValueError):
        thumbs.thumbnail_key(320, "../etc")


def test_thumbnail_applies_orientation_and_drops_exif(services):
    sha = stored(services, sideways())
    key = thumbs.ensure_thumbnail(services.blobs, sha, 320)
    assert key == f"thumbs/320/{sha}.jpg"
    with Image.open(io.BytesIO(services.blobs.read_bytes(key))) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (20, 40)  # portrait, never enlarged
        top, bottom = thumb.getpixel((10, 2)), thumb.getpixel((10, 37))
        assert top[0] > 200 and top[2] < 60  # the red left half is now on top
        assert bottom[2] > 200 and bottom[0] < 60
        assert len(thumb.getexif()) == 0


def test_thumbnail_fits_size_and_is_cached(services):
    seed = unique_seed()
    sha = stored(services, encode(scene(seed, (2000, 1000)), exif=exif_of(gps=POINT)))
    counting = CountingBlobs(services.blobs)
    small = thumbs.ensure_thumbnail(counting, sha, 320)
    large = thumbs.ensure_thumbnail(counting, sha, 1280)
    assert counting.puts == [small, large] and len(counting.reads) == 2
    first = services.blobs.read_bytes(small)
    with Image.open(io.BytesIO(first)) as thumb:
        assert thumb.size == (320, 160)
    with Image.open(io.BytesIO(services.blobs.read_bytes(large))) as thumb:
        assert thumb.size == (1280, 640)
    again = CountingBlobs(services.blobs)
    assert thumbs.ensure_thumbnail(again, sha, 320) == small
    assert again.puts == [] and again.reads == []
    assert services.blobs.read_bytes(small) == first


def test_heic_thumbnail(services):
    sha = stored(services, encode(scene(unique_seed(), (800, 600)), "HEIF"))
    key = thumbs.ensure_thumbnail(services.blobs, sha, 320)
    with Image.open(io.BytesIO(services.blobs.read_bytes(key))) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (320, 240) and thumb.mode == "RGB"


def test_transparent_png_thumbnail_on_white(services):
    image = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    image.putpixel((0, 0), (unique_seed() % 255, 0, 0, 255))
    sha = stored(services, encode(image, "PNG"))
    key = thumbs.ensure_thumbnail(services.blobs, sha, 320)
    with Image.open(io.BytesIO(services.blobs.read_bytes(key))) as thumb:
        assert min(thumb.getpixel((25, 25))) > 245


def test_thumbnail_of_non_image_or_missing_file(services):
    sha = stored(services, b"not a photo " + uuid.uuid4().bytes)
    with pytest.raises(InvalidInput, match="not an image"):
        thumbs.ensure_thumbnail(services.blobs, sha, 320)
    assert not services.blobs.exists(thumbs.thumbnail_key(320, sha))
    with pytest.raises(NotFound):
        thumbs.ensure_thumbnail(services.blobs, hashlib.sha256(uuid.uuid4().bytes).hexdigest(), 320)


# ---- cached facts and the photos of a form (each backend) -------------------------------------


def test_photo_meta_table_is_migrated(services):
    assert "photo_meta" in sa.inspect(services.db.engine).get_table_names()


def test_ensure_analyzed_caches_rows(services):
    good, png, bad = (
        camera_photo(unique_seed()),
        encode(scene(unique_seed()), "PNG"),
        b"junk " + uuid.uuid4().bytes,
    )
    shas = []
    for data in (good, png, bad):
        blob = content.put_data(services.blobs, data, "image/jpeg")
        with services.db.transaction() as tx:
            content.record(tx, blob)
        shas.append(blob.sha256)
    unknown = hashlib.sha256(uuid.uuid4().bytes).hexdigest()  # no blob row: left out
    counting = CountingBlobs(services.blobs)
    some = photos.ensure_analyzed(services.db, counting, [*shas, unknown], limit=1)
    assert list(some) == shas[:1] and len(counting.reads) == 1
    metas = photos.ensure_analyzed(services.db, counting, [*shas, shas[0], unknown])
    assert list(metas) == shas and len(counting.reads) == 3
    assert metas[shas[0]].phash == some[shas[0]].phash
    assert metas[shas[0]].taken_date == VISIT and metas[shas[0]].gps_lat == pytest.approx(-0.68)
    assert metas[shas[0]].taken_local == "2026-11-20T10:00:00" and metas[shas[0]].has_exif
    assert not metas[shas[1]].has_exif and metas[shas[1]].error is None
    assert metas[shas[2]].error == "not an image"
    again = CountingBlobs(services.blobs)
    cached = photos.ensure_analyzed(services.db, again, reversed(shas))
    assert again.reads == [] and list(cached) == shas[::-1]
    for sha in shas:
        assert (cached[sha].phash, cached[sha].taken_local, cached[sha].error) == (
            metas[sha].phash,
            metas[sha].taken_local,
            metas[sha].error,
        )
        assert cached[sha].analyzed_at.tzinfo is not None
    with services.db.read() as tx:
        assert tx.get(PhotoMeta, shas[0]).phash == metas[shas[0]].phash
    assert photos.ensure_analyzed(services.db, services.blobs, []) == {}


def _file(tmp_path: Path, name: str, data: bytes, content_type: str = "image/jpeg"):
    path = tmp_path / f"part-{uuid.uuid4().hex}"
    path.write_bytes(data)
    return IncomingFile(name, path, len(data), hashlib.sha256(data).hexdigest(), content_type)


def _visit(
    services,
    project,
    tmp_path,
    files: dict[str, bytes],
    *,
    visit: str = VISIT,
    point: str = "-0.68 100.78 250 5",
    evidence: tuple[str, ...] = (),
    started: str = "2026-11-20T08:00:00.000+07:00",
    deprecated_id: str | None = None,
):
    body = (
        f"<mulai>{started}</mulai><g_kunjungan><tgl_kunjungan>{visit}</tgl_kunjungan>"
        f"<lokasi>{point}</lokasi></g_kunjungan>"
        f"<foto_kegiatan>{'kegiatan.jpg' if 'kegiatan.jpg' in files else ''}</foto_kegiatan>"
        + "".join(f"<bukti><bukti_foto>{e}</bukti_foto></bukti>" for e in evidence)
        + f"<ttd>{'ttd.png' if 'ttd.png' in files else ''}</ttd>"
    )
    xml = instance_xml("kunjungan_foto", "1", new_instance_id(), body, deprecated_id=deprecated_id)
    parts = [
        _file(tmp_path, name, data, "image/png" if name.endswith(".png") else "image/jpeg")
        for name, data in files.items()
    ]
    return submissions.ingest(services.db, services.blobs, project.id, xml, parts, sender=SENDER)


def _publish_visit_form(services):
    project = make_project(services)
    published = form_store.publish_xlsform(
        services.db, services.blobs, project.id, FORM.read_bytes(), FORM.name
    )
    return project, published.form


def test_list_form_photos_reads_answers_and_skips_signatures(services, tmp_path):
    project, form = _publish_visit_form(services)
    signature = encode(Image.new("RGB", (30, 10), (255, 255, 255)), "PNG")
    first = _visit(
        services,
        project,
        tmp_path,
        {
            "kegiatan.jpg": camera_photo(unique_seed()),
            "b1.jpg": camera_photo(31),
            "b2.jpg": camera_photo(32),
            "ttd.png": signature,
        },
        evidence=("b1.jpg", "b2.jpg"),
    )
    no_date = _visit(
        services,
        project,
        tmp_path,
        {"kegiatan.jpg": camera_photo(33)},
        visit="",
        point="",
        started="2026-11-18T23:30:00.000+07:00",
    )
    deleted = _visit(services, project, tmp_path, {"kegiatan.jpg": camera_photo(34)})
    submissions.soft_delete(
        services.db, project.id, "kunjungan_foto", deleted.submission.instance_id, actor_id=None
    )
    rows = photos.list_form_photos(services.db, form.id)
    by_key = {r.key: r for r in rows}
    sid = first.submission.id
    assert sorted(by_key) == sorted(
        [
            (sid, "b1.jpg"),
            (sid, "b2.jpg"),
            (sid, "kegiatan.jpg"),
            (no_date.submission.id, "kegiatan.jpg"),
        ]
    )
    main = by_key[(sid, "kegiatan.jpg")]
    assert (main.field, main.visit_date, main.geopoint) == ("/foto_kegiatan", VISIT, POINT)
    assert main.instance_id == first.submission.instance_id
    assert by_key[(sid, "b1.jpg")].field == "/bukti/bukti_foto"
    assert by_key[(sid, "b1.jpg")].sha256 == hashlib.sha256(camera_photo(31)).hexdigest()
    fallback = by_key[(no_date.submission.id, "kegiatan.jpg")]
    assert (fallback.visit_date, fallback.geopoint) == ("2026-11-18", None)


def test_list_form_photos_follows_edits_and_falls_back_to_received_date(services, tmp_path):
    project = make_project(services)
    published = publish(services, project)  # foto_sederhana: no date question, no start
    xml = instance_xml(
        "foto_sederhana",
        "1",
        new_instance_id(),
        "<nama>Budi</nama><lokasi>-0.68 100.78 250 5</lokasi><foto_utama>utama.jpg</foto_utama>",
    )
    created = submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        xml,
        [_file(tmp_path, "utama.jpg", camera_photo(40))],
        sender=SENDER,
    )
    [only] = photos.list_form_photos(services.db, published.form.id)
    received = created.submission.created_at.astimezone(UTC).date().isoformat()
    assert (only.field, only.visit_date, only.geopoint) == ("/foto_utama", received, POINT)
    edit = instance_xml(
        "foto_sederhana",
        "1",
        new_instance_id(),
        "<nama>Budi</nama><lokasi>-0.70 100.70 250 5</lokasi><foto_utama>baru.jpg</foto_utama>",
        deprecated_id=created.version.instance_id,
    )
    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        edit,
        [_file(tmp_path, "baru.jpg", camera_photo(41))],
        sender=SENDER,
    )
    [current] = photos.list_form_photos(services.db, published.form.id)
    assert (current.name, current.geopoint) == ("baru.jpg", (-0.70, 100.70))


def test_photo_flags_end_to_end(services, tmp_path):
    project, form = _publish_visit_form(services)
    seed = unique_seed()
    shared = camera_photo(seed)
    resized = encode(
        scene(seed).resize((320, 240)), exif=exif_of("2026:11:20 11:00:00", POINT), quality=70
    )
    screenshot = encode(scene(unique_seed()), "PNG")
    a = _visit(
        services,
        project,
        tmp_path,
        {"kegiatan.jpg": shared, "b1.jpg": camera_photo(seed + 1)},
        evidence=("b1.jpg",),
    )
    b = _visit(
        services,
        project,
        tmp_path,
        {"kegiatan.jpg": shared},
        visit="2026-11-21",
        point="-0.70 100.78 250 5",
    )  # ~2.2 km south of where the photo was taken
    c = _visit(
        services,
        project,
        tmp_path,
        {"kegiatan.jpg": resized, "b1.jpg": screenshot},
        evidence=("b1.jpg",),
    )
    flags = photos.photo_flags(services.db, services.blobs, form.id)
    assert flags == {
        (a.submission.id, "kegiatan.jpg"): {"duplicate", "near_duplicate"},
        (a.submission.id, "b1.jpg"): set(),
        (b.submission.id, "kegiatan.jpg"): {
            "duplicate",
            "near_duplicate",
            "date_mismatch",
            "far_from_point",
        },
        (c.submission.id, "kegiatan.jpg"): {"near_duplicate"},
        (c.submission.id, "b1.jpg"): {"no_exif"},
    }
    with services.db.read() as tx:
        assert tx.get(PhotoMeta, hashlib.sha256(shared).hexdigest()) is not None
    assert photos.flags_by_submission(flags)[c.submission.id] == {"near_duplicate", "no_exif"}


def test_photo_flags_of_a_form_without_photos(services):
    project = make_project(services)
    published = publish(services, project, "tanpa_media")
    assert photos.photo_flags(services.db, services.blobs, published.form.id) == {}


def test_page_flags_agree_with_flags_over_the_whole_form(services, tmp_path):
    """The board checks one page against the whole form through indexes; it must find what the
    whole-form computation finds for the same photos."""
    from storage import photos as photo_store
    from storage.submissions import IncomingFile, Sender, ingest
    from tests.collect import instance_xml, new_instance_id
    from tests.factories import jpeg, make_project, photo_body, publish

    project = make_project(services)
    form = publish(services, project).form
    near_a = encode(scene(12))
    near_b = encode(scene(12).resize((320, 240)))
    shared = jpeg(size=128, seed=71)

    ids = []
    for index, data in enumerate([shared, shared, near_a, near_b, jpeg(size=128, seed=72)]):
        path = tmp_path / f"photo{index}"
        path.write_bytes(data)
        result = ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml("foto_sederhana", "1", new_instance_id(), photo_body()),
            [IncomingFile("utama.jpg", path, len(data), hashlib.sha256(data).hexdigest())],
            sender=Sender(actor_id=None),
        )
        ids.append(result.submission.id)
    every = photo_store.list_form_photos(services.db, form.id)
    facts = photo_store.ensure_analyzed(services.db, services.blobs, [p.sha256 for p in every])
    whole = photo_store.compute_flags(every, facts)
    page = photo_store.list_form_photos(
        services.db, form.id, submission_ids=[ids[0], ids[2], ids[4]]
    )
    assert {p.submission_id for p in page} == {ids[0], ids[2], ids[4]}
    flags = photo_store.page_flags(services.db, form.id, page, facts)
    assert {key: flags[key] for key in flags} == {p.key: whole[p.key] for p in page}
    assert "duplicate" in flags[(ids[0], "utama.jpg")]
    assert "near_duplicate" in flags[(ids[2], "utama.jpg")]
    assert not {"duplicate", "near_duplicate"} & flags[(ids[4], "utama.jpg")]
