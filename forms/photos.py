"""Photo integrity, the pure part: what an image file says about itself and the flags a
supervisor sees, computed from those facts and the submissions' answers (no database; the
cached facts and the reads of a form's photos are storage/photos.py).

- ``duplicate``: the same file (sha256) is attached to another submission (of any form of the
  project, when storage/photos.py looks);
- ``near_duplicate``: a different file that both perceptual hashes find close to a photo of
  another submission (the same picture resized, re-compressed, slightly cropped or re-shot from
  the same spot): pHash within `NEAR_DUPLICATE_MAX_DISTANCE` and the finer dHash within
  `NEAR_DUPLICATE_MAX_DETAIL_DISTANCE` (see there why both). A submission that already holds
  the very same file is not also reported as near;
- ``date_mismatch``: the EXIF capture date is not the visit date;
- ``far_from_point``: the photo's EXIF GPS is more than `GPS_MAX_METERS` from the
  submission's geopoint;
- ``no_exif``: the image decoded but carries no EXIF at all (screenshots, forwarded chat
  pictures and edited files usually lose it).

Photos that cannot be decoded get no flag besides ``duplicate``; their `error` says why.
`compute_findings` says what each flag found (the other photos and how close they are, the
two dates, the distance); `compute_flags` only which flags.
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import imagehash
import pillow_heif
from PIL import Image, ImageOps

from .instance import parse_geopoint, value_at, values_at
from .xform import Schema

pillow_heif.register_heif_opener()

#: Largest Hamming distance between two 64-bit pHashes (`imagehash.phash`, 8x8 DCT) that
#: still counts as the same picture. 0-6 is what resizing, re-compressing, small crops and
#: re-shooting the same scene from the same spot give; unrelated photos are around 32 apart.
#: At most 7, so the banding index of `near_duplicate_pairs` finds every such pair.
NEAR_DUPLICATE_MAX_DISTANCE = 6
#: ... and the largest distance between their 256-bit dHashes (`imagehash.dhash`, 16x16
#: gradients). 64 bits of low frequencies cannot tell printed pages apart: a page of black
#: text on white is nearly flat at 32x32, so different documents of one layout (two
#: attendance sheets of one office) come within 6 bits. The finer dHash sees the lines of
#: text. Calibrated on scans and phone photos of generated documents (bench/near_duplicates.py,
#: 180 documents): different documents within pHash 6 were 44 dHash bits apart or more; the
#: same page re-compressed or resized stays within a few bits, cropped by about 1 % or re-shot
#: from the same spot mostly within 36. Larger crops and rotations (2-3 %) mostly go unflagged.
NEAR_DUPLICATE_MAX_DETAIL_DISTANCE = 36
#: A photo whose EXIF GPS is farther than this from the submission's geopoint is flagged.
GPS_MAX_METERS = 1000.0
#: Every flag, in the order a board shows them.
FLAGS = ("duplicate", "near_duplicate", "date_mismatch", "far_from_point", "no_exif")

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_ORIENTATION = 0x0112
_DATETIME = 306
_DATETIME_ORIGINAL = 36867
_EXIF_TIME_RE = re.compile(r"\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BANDS = 8  # a 64-bit hash as 8 bytes (pigeonhole: distance <= 7 leaves one byte equal)
_EARTH_RADIUS_M = 6_371_008.8
_NO_PHOTO_APPEARANCES = frozenset({"signature", "draw"})  # drawn on the screen, not a camera


# ---- one image ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFacts:
    """What an image file says about itself. `error` is set when it could not be decoded."""

    width: int | None = None  # as displayed: EXIF orientation applied
    height: int | None = None
    has_exif: bool = False
    taken_local: str | None = None  # 'YYYY-MM-DDTHH:MM:SS', the phone's wall-clock time
    gps_lat: float | None = None
    gps_lon: float | None = None
    phash: str | None = None  # 16 hex digits
    dhash: str | None = None  # 64 hex digits
    error: str | None = None

    @property
    def taken_date(self) -> str | None:
        return self.taken_local[:10] if self.taken_local else None


def open_image(data: bytes) -> Image.Image:
    """Open image bytes with Pillow (JPEG, PNG, WebP, HEIC/HEIF, ...), lazily (nothing decoded).

    Raises `PIL.UnidentifiedImageError` for what is not an image and
    `PIL.Image.DecompressionBombError` for one with more than twice `Image.MAX_IMAGE_PIXELS`
    (~179 million) pixels, Pillow's guard against decompression bombs."""
    return Image.open(io.BytesIO(data))


def analyze_image(data: bytes) -> ImageFacts:
    """Size, EXIF capture time and GPS, and perceptual hash of an image. Never raises: what is
    not a readable image comes back with `error` set."""
    try:
        image = open_image(data)
    except Image.DecompressionBombError:
        return ImageFacts(error="image too large (more pixels than allowed)")
    except Image.UnidentifiedImageError:
        return ImageFacts(error="not an image")
    except Exception as error:  # noqa: BLE001 - a truncated or malformed header
        return ImageFacts(error=_describe(error))
    with image:
        width, height = image.size
        try:
            exif = image.getexif()
        except Exception:  # noqa: BLE001 - malformed EXIF: the pixels may still be fine
            exif = Image.Exif()
        if exif.get(_ORIENTATION) in (5, 6, 7, 8):
            width, height = height, width
        taken_local, lat, lon = _exif_time(exif), *_exif_gps(exif)
        try:
            image.draft("RGB", (512, 512))  # JPEG: decode at 1/2..1/8 scale; pHash needs 32x32
            upright = ImageOps.exif_transpose(image)
            phash = str(imagehash.phash(upright))
            dhash = str(imagehash.dhash(upright, hash_size=16))
        except Image.DecompressionBombError:
            return ImageFacts(error="image too large (more pixels than allowed)")
        except Exception as error:  # noqa: BLE001 (never raise on bad input)
            return ImageFacts(error=_describe(error))
    return ImageFacts(
        width=width,
        height=height,
        has_exif=len(exif) > 0,
        taken_local=taken_local,
        gps_lat=lat,
        gps_lon=lon,
        phash=phash,
        dhash=dhash,
    )


def _describe(error: Exception) -> str:
    return f"could not be decoded: {type(error).__name__}: {error}"[:300]


def _exif_time(exif: Image.Exif) -> str | None:
    """DateTimeOriginal (Exif IFD), else DateTime, as 'YYYY-MM-DDTHH:MM:SS' local time."""
    try:
        candidates = [exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL), exif.get(_DATETIME)]
    except Exception:  # noqa: BLE001 (never raise on bad input)
        candidates = [exif.get(_DATETIME)]
    for value in candidates:
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        match = _EXIF_TIME_RE.match(value) if isinstance(value, str) else None
        if match:
            try:
                return datetime(*map(int, match.groups())).isoformat()
            except ValueError:  # '0000:00:00 00:00:00' and other placeholders
                continue
    return None


def _exif_gps(exif: Image.Exif) -> tuple[float | None, float | None]:
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:  # noqa: BLE001 (never raise on bad input)
        return None, None
    lat = _coordinate(gps.get(2), gps.get(1), "N", "S", 90.0)
    lon = _coordinate(gps.get(4), gps.get(3), "E", "W", 180.0)
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):  # 0,0: a phone without a fix
        return None, None
    return lat, lon


def _coordinate(value: Any, ref: Any, positive: str, negative: str, limit: float) -> float | None:
    """Degrees/minutes/seconds rationals and an N/S or E/W reference to signed decimal degrees."""
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    ref = ref.strip("\x00 ").upper() if isinstance(ref, str) else ""
    if ref not in (positive, negative):
        return None  # without its reference the sign is a guess; better no position
    try:
        parts = [float(x) for x in value] if isinstance(value, (tuple, list)) else [float(value)]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 1 <= len(parts) <= 3 or any(not math.isfinite(p) or p < 0 for p in parts):
        return None
    degrees = sum(p / 60**i for i, p in enumerate(parts))
    if degrees > limit:
        return None
    return -degrees if ref == negative else degrees


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (spherical Earth)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


# ---- the answers a photo is checked against ----------------------------------------------------


@dataclass(frozen=True)
class PhotoRow:
    """One stored photo of a submission's current version, with what it is checked against."""

    submission_id: int
    instance_id: str
    name: str  # the attachment's file name
    sha256: str
    content_type: str | None
    field: str | None  # schema path of the image question, e.g. '/g_penutup/foto_kegiatan'
    visit_date: str | None  # 'YYYY-MM-DD'
    geopoint: tuple[float, float] | None  # (lat, lon)

    @property
    def key(self) -> tuple[int, str]:
        return (self.submission_id, self.name)


@dataclass(frozen=True)
class PhotoPaths:
    """Where one form version keeps the answers a photo is checked against."""

    visit_date: tuple[str, ...] | None
    timestamp: tuple[str, ...] | None
    geopoint: tuple[str, ...] | None
    image_fields: tuple[tuple[str, tuple[str, ...]], ...]  # (path, parts) of photo questions
    other_binaries: tuple[tuple[str, ...], ...]  # signatures, drawings, files: not photos


def photo_paths(schema: Schema, visit_date_names: Collection[str]) -> PhotoPaths:
    repeats = schema.repeat_paths

    def in_repeat(path: str) -> bool:
        return any(path.startswith(r + "/") for r in repeats)

    def parts(path: str) -> tuple[str, ...]:
        return tuple(path.strip("/").split("/"))

    plain = [f for f in schema.fields if not in_repeat(f.path) and f.path not in repeats]
    visit = next((f for f in plain if f.name in visit_date_names and f.type == "date"), None)
    stamp = next((f for f in plain if f.type == "dateTime" and not f.labels), None)
    point = next((f for f in plain if f.type == "geopoint"), None)
    images, others = [], []
    for f in schema.fields:
        if f.type != "binary":
            continue
        appearance = set((f.appearance or "").split())
        if (f.media_type or "").startswith("image/") and not appearance & _NO_PHOTO_APPEARANCES:
            images.append((f.path, parts(f.path)))
        else:
            others.append(parts(f.path))
    return PhotoPaths(
        parts(visit.path) if visit else None,
        parts(stamp.path) if stamp else None,
        parts(point.path) if point else None,
        tuple(images),
        tuple(others),
    )


def photo_answers(
    paths: PhotoPaths, values: dict[str, Any], created_at: datetime
) -> tuple[dict[str, str], str | None, tuple[float, float] | None]:
    """(file name -> image question path, or '' for a non-photo binary), visit date, geopoint."""
    by_name: dict[str, str] = {}
    for parts in paths.other_binaries:
        for value in values_at(values, parts):
            if isinstance(value, str) and value.strip():
                by_name.setdefault(value.strip(), "")
    for path, parts in paths.image_fields:
        for value in values_at(values, parts):
            if isinstance(value, str) and value.strip():
                by_name[value.strip()] = path  # a photo question wins over a signature
    visit_date = None
    for where in (paths.visit_date, paths.timestamp):
        value = _text_at(values, where)
        if value and _DATE_RE.match(value):
            visit_date = value[:10]
            break
    if visit_date is None:
        visit_date = created_at.date().isoformat()
    point = parse_geopoint(_text_at(values, paths.geopoint))
    return by_name, visit_date, (point.lat, point.lon) if point else None


def _text_at(values: Any, parts: Sequence[str] | None) -> str | None:
    value = value_at(values, parts) if parts is not None else None
    return value.strip() if isinstance(value, str) else None


# ---- flags -------------------------------------------------------------------------------------


class PhotoFacts(Protocol):
    """What `compute_flags` reads of a photo: a `PhotoMeta` row or an `ImageFacts`."""

    has_exif: bool
    gps_lat: float | None
    gps_lon: float | None
    phash: str | None
    dhash: str | None
    error: str | None

    @property
    def taken_date(self) -> str | None: ...


@dataclass(frozen=True)
class Match:
    """Another submission's photo a ``duplicate`` or ``near_duplicate`` points at. `distance`
    and `detail_distance` (near-duplicates only) are the pHash bits of 64 and dHash bits of
    256 that differ; the rest is filled in by whoever knows the submissions (storage)."""

    submission_id: int
    name: str
    sha256: str
    distance: int | None = None
    detail_distance: int | None = None
    instance_id: str | None = None
    instance_name: str | None = None
    xml_form_id: str | None = None


@dataclass(frozen=True)
class Finding:
    """One flag of a photo and what it found."""

    flag: str  # one of FLAGS
    others: tuple[Match, ...] = ()  # duplicate, near_duplicate
    taken_date: str | None = None  # date_mismatch: the EXIF date ...
    visit_date: str | None = None  # ... and the visit's
    meters: float | None = None  # far_from_point

    @property
    def days_apart(self) -> int | None:
        if not (self.taken_date and self.visit_date):
            return None
        try:
            taken = datetime.fromisoformat(self.taken_date)
            visit = datetime.fromisoformat(self.visit_date)
        except ValueError:
            return None
        return abs((taken - visit).days)


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes of one length."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def near_distances(
    a: PhotoFacts,
    b: PhotoFacts,
    *,
    max_distance: int = NEAR_DUPLICATE_MAX_DISTANCE,
    max_detail_distance: int = NEAR_DUPLICATE_MAX_DETAIL_DISTANCE,
) -> tuple[int, int] | None:
    """(pHash, dHash) distances when two analysed photos are near-duplicates, else None.
    A photo analysed before dHash was kept (no `dhash`) is never near."""
    if a.error or b.error or not (a.phash and b.phash and a.dhash and b.dhash):
        return None
    return _confirm(a.phash, a.dhash, b.phash, b.dhash, max_distance, max_detail_distance)


def _confirm(
    phash_a: str, dhash_a: str, phash_b: str, dhash_b: str, max_distance: int, max_detail: int
) -> tuple[int, int] | None:
    distance = hamming(phash_a, phash_b)
    if distance > max_distance:
        return None
    detail = hamming(dhash_a, dhash_b)
    return (distance, detail) if detail <= max_detail else None


class NearIndex:
    """The analysed photos of a project filed by each byte of their pHash (see
    `near_duplicate_pairs` for why a shared byte finds every pair within 7 bits); a candidate
    is then confirmed with the dHash (`near_distances`)."""

    def __init__(
        self,
        rows: Iterable[tuple[str, str, str | None, int]],
        max_distance: int = NEAR_DUPLICATE_MAX_DISTANCE,
        max_detail_distance: int = NEAR_DUPLICATE_MAX_DETAIL_DISTANCE,
    ) -> None:
        """`rows`: (sha256, phash, dhash, submission id); rows without a dhash are left out."""
        self.max_distance = max_distance
        self.max_detail_distance = max_detail_distance
        self.everything: list[tuple[int, str, str, int]] = []
        self.buckets: dict[tuple[int, int], list[tuple[int, str, str, int]]] = defaultdict(list)
        for sha256, phash, dhash, submission_id in rows:
            if not (phash and dhash):
                continue
            entry = (int(phash, 16), dhash, sha256, submission_id)
            self.everything.append(entry)
            for band in range(_BANDS):
                self.buckets[(band, (entry[0] >> (8 * band)) & 0xFF)].append(entry)

    def matches(
        self, phash: str, dhash: str, sha256: str, submission_id: int
    ) -> list[tuple[str, int, int, int]]:
        """(sha256, submission id, pHash distance, dHash distance) of the other submissions'
        photos (other files) near this one, closest first."""
        value = int(phash, 16)
        if self.max_distance >= _BANDS:
            candidates: Iterable[tuple[int, str, str, int]] = self.everything
        else:
            candidates = {
                entry
                for band in range(_BANDS)
                for entry in self.buckets.get((band, (value >> (8 * band)) & 0xFF), ())
            }
        found = []
        for other, other_dhash, other_sha, other_submission in candidates:
            if other_submission == submission_id or other_sha == sha256:
                continue
            distance = (value ^ other).bit_count()
            if distance > self.max_distance:
                continue
            detail = hamming(dhash, other_dhash)
            if detail <= self.max_detail_distance:
                found.append((other_sha, other_submission, distance, detail))
        return sorted(found, key=lambda m: (m[2], m[3], m[1], m[0]))


def compute_findings(
    photos: Sequence[PhotoRow],
    facts: Mapping[str, PhotoFacts],
    *,
    near_max_distance: int = NEAR_DUPLICATE_MAX_DISTANCE,
    near_max_detail_distance: int = NEAR_DUPLICATE_MAX_DETAIL_DISTANCE,
    gps_max_meters: float = GPS_MAX_METERS,
) -> dict[tuple[int, str], list[Finding]]:
    """What each photo's flags found, keyed by (submission id, file name), in `FLAGS` order.

    `facts` maps a sha256 to its analysed facts; a photo without facts can only be a
    ``duplicate``. Duplicates are looked for among the given photos only."""
    holders: dict[str, list[PhotoRow]] = defaultdict(list)
    for photo in photos:
        holders[photo.sha256].append(photo)
    analysed = {
        sha256: meta
        for sha256 in holders
        if (meta := facts.get(sha256)) is not None and meta.error is None and meta.phash
    }
    near: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    candidates = {sha256: meta.phash for sha256, meta in analysed.items() if meta.phash}
    for a, b in near_duplicate_pairs(candidates, near_max_distance):
        found = near_distances(
            analysed[a],
            analysed[b],
            max_distance=near_max_distance,
            max_detail_distance=near_max_detail_distance,
        )
        if found is not None:
            near[a][b] = near[b][a] = found

    findings: dict[tuple[int, str], list[Finding]] = {}
    for photo in photos:
        found: list[Finding] = []
        same = [p for p in holders[photo.sha256] if p.submission_id != photo.submission_id]
        if same:
            found.append(
                Finding("duplicate", tuple(Match(p.submission_id, p.name, p.sha256) for p in same))
            )
        holding = {p.submission_id for p in same} | {photo.submission_id}
        close = sorted(
            (
                Match(p.submission_id, p.name, p.sha256, distance, detail)
                for other, (distance, detail) in near[photo.sha256].items()
                for p in holders[other]
                if p.submission_id not in holding  # the very same file there: a duplicate
            ),
            key=lambda m: (m.distance, m.detail_distance, m.submission_id, m.name),
        )
        if close:
            found.append(Finding("near_duplicate", tuple(close)))
        found.extend(fact_findings(photo, facts.get(photo.sha256), gps_max_meters))
        findings[photo.key] = found
    return findings


def fact_findings(
    photo: PhotoRow, meta: PhotoFacts | None, gps_max_meters: float = GPS_MAX_METERS
) -> list[Finding]:
    """The flags a photo's own facts raise: ``date_mismatch``, ``far_from_point``, ``no_exif``."""
    if meta is None or meta.error is not None:
        return []
    found = []
    if meta.taken_date and photo.visit_date and meta.taken_date != photo.visit_date:
        found.append(
            Finding("date_mismatch", taken_date=meta.taken_date, visit_date=photo.visit_date)
        )
    if photo.geopoint is not None and meta.gps_lat is not None and meta.gps_lon is not None:
        meters = haversine_m(meta.gps_lat, meta.gps_lon, *photo.geopoint)
        if meters > gps_max_meters:
            found.append(Finding("far_from_point", meters=meters))
    if not meta.has_exif:
        found.append(Finding("no_exif"))
    return found


def compute_flags(
    photos: Sequence[PhotoRow],
    facts: Mapping[str, PhotoFacts],
    *,
    near_max_distance: int = NEAR_DUPLICATE_MAX_DISTANCE,
    near_max_detail_distance: int = NEAR_DUPLICATE_MAX_DETAIL_DISTANCE,
    gps_max_meters: float = GPS_MAX_METERS,
) -> dict[tuple[int, str], set[str]]:
    """The flags (a subset of `FLAGS`) of each photo, keyed by (submission id, file name):
    `compute_findings` without what they found."""
    return flag_names(
        compute_findings(
            photos,
            facts,
            near_max_distance=near_max_distance,
            near_max_detail_distance=near_max_detail_distance,
            gps_max_meters=gps_max_meters,
        )
    )


def flag_names(
    findings: Mapping[tuple[int, str], Sequence[Finding]],
) -> dict[tuple[int, str], set[str]]:
    return {key: {f.flag for f in found} for key, found in findings.items()}


def near_duplicate_pairs(
    hashes: Mapping[str, str], max_distance: int = NEAR_DUPLICATE_MAX_DISTANCE
) -> set[tuple[str, str]]:
    """Pairs (a, b), a < b, of keys whose 64-bit hex hashes differ in at most `max_distance` bits.

    Banding index: each distinct hash is cut into 8 bytes and filed under (byte index, byte
    value). Two hashes within 7 bits differ in at most 7 of the 8 bytes, so they share a bucket
    (pigeonhole), and only hashes sharing a bucket are compared: about n^2/32 comparisons
    instead of n^2/2 for random hashes. A distance above 7 compares every pair.
    """
    keys_of: dict[int, list[str]] = defaultdict(list)
    for key in sorted(hashes):
        keys_of[int(hashes[key], 16)].append(key)
    distinct = sorted(keys_of)
    close: set[tuple[int, int]] = set()
    if max_distance >= _BANDS:
        groups: Iterable[list[int]] = [distinct]
    else:
        buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
        for value in distinct:
            for band in range(_BANDS):
                buckets[(band, (value >> (8 * band)) & 0xFF)].append(value)
        groups = buckets.values()
    for members in groups:  # ascending, so a < b
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if (a ^ b).bit_count() <= max_distance:
                    close.add((a, b))
    close.update((value, value) for value in distinct)
    pairs: set[tuple[str, str]] = set()
    for a, b in close:
        for key_a in keys_of[a]:
            for key_b in keys_of[b]:
                if key_a != key_b:
                    pairs.add((key_a, key_b) if key_a < key_b else (key_b, key_a))
    return pairs


def flags_by_submission(flags: Mapping[tuple[int, str], set[str]]) -> dict[int, set[str]]:
    """Every flag of any photo of each submission (for a board row or a filter)."""
    merged: dict[int, set[str]] = defaultdict(set)
    for (submission_id, _), found in flags.items():
        merged[submission_id] |= found
    return dict(merged)
