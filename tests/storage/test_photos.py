"""Photo integrity, the stored part: cached facts, a form's photos and their flags, thumbnails
(storage/photos.py, thumbs.py). Each test runs on each backend; the pure part is
tests/forms/test_photos.py, whose image generators these tests use.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from forms.photos import compute_flags, flags_by_submission
from storage import content, photos, submissions, thumbs
from storage import forms as form_store
from storage.errors import InvalidInput, NotFound
from storage.models import PhotoMeta
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.factories import make_project, publish
from tests.forms.test_photos import (
    POINT,
    VISIT,
    camera_photo,
    encode,
    exif_of,
    scene,
    sideways,
    unique_seed,
)

FORM = Path(__file__).parent.parent / "data" / "photos" / "kunjungan_foto.md"
SENDER = Sender(actor_id=None, device_id="collect:foto", user_agent="test")


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
    assert flags_by_submission(flags)[c.submission.id] == {"near_duplicate", "no_exif"}


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
    whole = compute_flags(every, facts)
    page = photo_store.list_form_photos(
        services.db, form.id, submission_ids=[ids[0], ids[2], ids[4]]
    )
    assert {p.submission_id for p in page} == {ids[0], ids[2], ids[4]}
    flags = photo_store.page_flags(services.db, form.id, page, facts)
    assert {key: flags[key] for key in flags} == {p.key: whole[p.key] for p in page}
    assert "duplicate" in flags[(ids[0], "utama.jpg")]
    assert "near_duplicate" in flags[(ids[2], "utama.jpg")]
    assert not {"duplicate", "near_duplicate"} & flags[(ids[4], "utama.jpg")]


def _simple(services, project, tmp_path, data: bytes, name: str = "Budi"):
    """A foto_sederhana submission with `data` as its photo utama.jpg."""
    from tests.factories import photo_body

    xml = instance_xml(
        "foto_sederhana", "1", new_instance_id(), photo_body(name), instance_name=name
    )
    return submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        xml,
        [_file(tmp_path, "utama.jpg", data)],
        sender=SENDER,
    )


def test_duplicates_are_found_across_the_forms_of_a_project_only(services, tmp_path):
    """The same photo sent as a visit's and as another form's evidence is a duplicate (naming
    the other form's submission); a resized copy in a third submission is near, with its
    distances; the same photo in another project is none of this project's business."""
    project, visit_form = _publish_visit_form(services)
    publish(services, project)  # foto_sederhana
    seed = unique_seed()
    shared = camera_photo(seed)
    resized = encode(scene(seed).resize((320, 240)), exif=exif_of(gps=POINT), quality=70)
    visit = _visit(services, project, tmp_path, {"kegiatan.jpg": shared})
    other = _simple(services, project, tmp_path, shared, "Dukcapil")
    near = _simple(services, project, tmp_path, resized, "Salinan")
    elsewhere = make_project(services)
    publish(services, elsewhere)
    _simple(services, elsewhere, tmp_path, shared, "Proyek lain")

    # Near-duplicates are looked for among analysed photos: a page showing them did that.
    digests = [hashlib.sha256(data).hexdigest() for data in (shared, resized)]
    photos.ensure_analyzed(services.db, services.blobs, digests)
    shown = photos.list_form_photos(services.db, visit_form.id, [visit.submission.id])
    facts = photos.ensure_analyzed(services.db, services.blobs, [p.sha256 for p in shown])
    found = photos.page_findings(services.db, project.id, shown, facts)
    [duplicate, similar] = found[(visit.submission.id, "kegiatan.jpg")]
    assert duplicate.flag == "duplicate"
    assert [(m.xml_form_id, m.instance_id, m.instance_name, m.name) for m in duplicate.others] == [
        ("foto_sederhana", other.submission.instance_id, "Dukcapil", "utama.jpg")
    ]
    assert similar.flag == "near_duplicate"
    [match] = similar.others
    assert (match.xml_form_id, match.instance_id, match.name) == (
        "foto_sederhana",
        near.submission.instance_id,
        "utama.jpg",
    )
    assert match.distance <= 6 and match.detail_distance is not None
    marks = photos.submission_flags(
        services.db, services.blobs, project.id, visit_form.id, [visit.submission.id]
    )
    assert marks == {visit.submission.id: ["duplicate", "near_duplicate"]}
    # The exact duplicate, seen from the other form: a duplicate, and near only the copy.
    simple = photos.list_form_photos(
        services.db, other.submission.form_id, [other.submission.id, near.submission.id]
    )
    facts = photos.ensure_analyzed(services.db, services.blobs, [p.sha256 for p in simple])
    flags = photos.page_flags(services.db, other.submission.form_id, simple, facts)
    # (foto_sederhana has no visit date: the day received is compared, hence no date here)
    assert flags[(other.submission.id, "utama.jpg")] - {"date_mismatch"} == {
        "duplicate",
        "near_duplicate",
    }
    assert flags[(near.submission.id, "utama.jpg")] - {"date_mismatch"} == {"near_duplicate"}


def test_rows_analysed_before_the_dhash_are_analysed_again(services):
    blob = content.put_data(services.blobs, camera_photo(unique_seed()), "image/jpeg")
    with services.db.transaction() as tx:
        content.record(tx, blob)
    [first] = photos.ensure_analyzed(services.db, services.blobs, [blob.sha256]).values()
    with services.db.transaction() as tx:
        tx.get(PhotoMeta, blob.sha256).dhash = None  # as a row from migration 0010 looks
    counting = CountingBlobs(services.blobs)
    [again] = photos.ensure_analyzed(services.db, counting, [blob.sha256]).values()
    assert again.dhash == first.dhash and len(counting.reads) == 1
    with services.db.read() as tx:
        assert tx.get(PhotoMeta, blob.sha256).dhash == first.dhash
