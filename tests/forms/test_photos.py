"""Photo integrity, the pure part: EXIF facts, perceptual hashes, flags (forms/photos.py).

Images are generated here with Pillow (EXIF written by Pillow, HEIC by pillow-heif); the tests
of the stored part (tests/storage/test_photos.py) use these generators too.
"""

from __future__ import annotations

import io
import itertools
import random
import uuid
from collections import Counter

import pillow_heif
import pytest
from PIL import Image, ImageDraw

from forms import photos
from forms.photos import ImageFacts, PhotoRow, analyze_image, compute_flags

pillow_heif.register_heif_opener()

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


def test_analyze_keeps_a_256_bit_dhash_too():
    facts = analyze_image(camera_photo(24))
    assert len(facts.dhash) == 64 and int(facts.dhash, 16) >= 0


# ---- what the flags found (compute_findings) ---------------------------------------------------


def test_findings_say_what_they_found():
    """The other submission of a duplicate, the distances of a near-duplicate, both dates,
    the distance from the visit point."""
    smaller = encode(scene(50).resize((320, 240)), exif=exif_of("2026:10:09 10:00:00"), quality=70)
    far = (POINT[0], POINT[1] + 0.03)  # ~3.3 km east
    facts = facts_of(a=camera_photo(50, gps=far), b=smaller)
    found = photos.compute_findings(
        [row(1, "a.jpg", "a"), row(2, "copy.jpg", "a"), row(3, "b.jpg", "b")], facts
    )
    [duplicate, near, far_away] = found[(1, "a.jpg")]
    assert duplicate.flag == "duplicate" and [
        (m.submission_id, m.name) for m in duplicate.others
    ] == [(2, "copy.jpg")]
    assert near.flag == "near_duplicate" and [m.submission_id for m in near.others] == [3]
    assert near.others[0].distance <= photos.NEAR_DUPLICATE_MAX_DISTANCE
    assert near.others[0].detail_distance <= photos.NEAR_DUPLICATE_MAX_DETAIL_DISTANCE
    assert far_away.flag == "far_from_point" and 3000 < far_away.meters < 3600
    [near_b, date] = found[(3, "b.jpg")]
    assert near_b.flag == "near_duplicate" and {m.submission_id for m in near_b.others} == {1, 2}
    assert (date.flag, date.taken_date, date.visit_date, date.days_apart) == (
        "date_mismatch",
        "2026-10-09",
        VISIT,
        42,
    )


def test_an_exact_duplicate_is_not_also_near():
    """The same file in another submission is a duplicate only, even when that submission also
    holds a re-compressed copy of it; a third submission with the copy is near."""
    original = camera_photo(51)
    copy = encode(scene(51), exif=exif_of("2026:11:20 10:00:00", POINT), quality=60)
    facts = facts_of(a=original, b=copy)
    flags = compute_flags(
        [row(1, "x.jpg", "a"), row(2, "x.jpg", "a"), row(2, "y.jpg", "b"), row(3, "z.jpg", "b")],
        facts,
    )
    assert flags[(1, "x.jpg")] == {"duplicate", "near_duplicate"}  # near: submission 3 only
    found = photos.compute_findings(
        [row(1, "x.jpg", "a"), row(2, "x.jpg", "a"), row(2, "y.jpg", "b")], facts
    )
    assert [f.flag for f in found[(1, "x.jpg")]] == ["duplicate"]
    assert [f.flag for f in found[(2, "x.jpg")]] == ["duplicate"]
    [near] = found[(2, "y.jpg")]  # a different file: like submission 1's x.jpg
    assert near.flag == "near_duplicate" and [m.submission_id for m in near.others] == [1]


def test_near_duplicates_of_printed_documents_are_calibrated():
    """Photos and scans of printed pages (tests/documents.py): pHash alone calls different
    documents of one layout "similar"; with the 256-bit dHash it does not, and the same page
    re-compressed, resized, cropped by about 1 % or re-shot is still found. The figures are
    counted here; bench/near_duplicates.py prints them for a larger set."""
    from tests.documents import calibration_set

    kinds = [
        "re-compressed (JPEG q35)",
        "resized to 50 %",
        "cropped 1.25 % a side",
        "re-shot from the same spot",
    ]
    seeds = [0, 30, 24, 36, 54, 11, 47, 19, 51]  # scans (even) and phone photos (odd)
    firsts: dict[int, ImageFacts] = {}
    copies: list[tuple[int, str, ImageFacts]] = []
    for picture in calibration_set(seeds, kinds):
        facts = analyze_image(picture.data)
        if picture.variant is None:
            firsts[picture.document] = facts
        else:
            copies.append((picture.document, picture.variant, facts))
    pairs = list(itertools.combinations(sorted(firsts), 2))

    def phash_only(a: ImageFacts, b: ImageFacts) -> bool:
        return photos.hamming(a.phash, b.phash) <= 6

    def both(a: ImageFacts, b: ImageFacts) -> bool:
        return photos.near_distances(a, b) is not None

    wrong_before = [(a, b) for a, b in pairs if phash_only(firsts[a], firsts[b])]
    wrong_after = [(a, b) for a, b in pairs if both(firsts[a], firsts[b])]
    found_before = Counter(kind for seed, kind, f in copies if phash_only(firsts[seed], f))
    found_after = Counter(kind for seed, kind, f in copies if both(firsts[seed], f))
    assert len(wrong_before) >= 4, wrong_before  # the walk-through's complaint, reproduced
    assert wrong_after == []
    assert found_after["re-compressed (JPEG q35)"] == found_after["resized to 50 %"] == len(seeds)
    assert found_after["cropped 1.25 % a side"] >= 7
    assert found_after["re-shot from the same spot"] >= 7
    assert sum(found_after.values()) >= sum(found_before.values()) - 3
    # The same through compute_flags: each picture a submission of its own.
    rows = [row(seed, "p.jpg", f"first-{seed}") for seed in seeds]
    facts = {f"first-{seed}": f for seed, f in firsts.items()}
    assert not any("near_duplicate" in f for f in compute_flags(rows, facts).values())
    resized = {seed: f for seed, kind, f in copies if kind == "resized to 50 %"}
    facts.update({f"copy-{seed}": f for seed, f in resized.items()})
    rows += [row(100 + seed, "p.jpg", f"copy-{seed}") for seed in seeds]
    assert all("near_duplicate" in flags for flags in compute_flags(rows, facts).values())
