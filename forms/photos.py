"""Photo integrity, the pure part: what an image file says about itself and the flags a
supervisor sees, computed from those facts and the submissions' answers (no database; the
cached facts and the reads of a form's photos are storage/photos.py).

- ``duplicate``: the same file (sha256) is attached to another submission of the form;
- ``near_duplicate``: a different file whose perceptual hash is within
  `NEAR_DUPLICATE_MAX_DISTANCE` of a photo of another submission (the same picture resized,
  re-compressed or re-shot);
- ``date_mismatch``: the EXIF capture date is not the visit date;
- ``far_from_point``: the photo's EXIF GPS is more than `GPS_MAX_METERS` from the
  submission's geopoint;
- ``no_exif``: the image decoded but carries no EXIF at all (screenshots, forwarded chat
  pictures and edited files usually lose it).

Photos that cannot be decoded get no flag besides ``duplicate``; their `error` says why.
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
#: re-shooting the same scene from the same spot give; unrelated photos are around 32 apart
#: and photos of similar scenes (two different forms on one desk) rarely come under 10.
#: At most 7, so the banding index of `near_duplicate_pairs` finds every such pair.
NEAR_DUPLICATE_MAX_DISTANCE = 6
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
            phash = str(imagehash.phash(ImageOps.exif_transpose(image)))
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


class PhashIndex:
    """The analysed photos of one form filed by each byte of their pHash (see
    `near_duplicate_pairs` for why a shared byte finds every pair within 7 bits)."""

    def __init__(self, rows: Iterable[tuple[str, str, int]], max_distance: int) -> None:
        self.max_distance = max_distance
        self.buckets: dict[tuple[int, int], list[tuple[int, str, int]]] = defaultdict(list)
        for sha256, phash, submission_id in rows:
            value = int(phash, 16)
            for band in range(_BANDS):
                self.buckets[(band, (value >> (8 * band)) & 0xFF)].append(
                    (value, sha256, submission_id)
                )

    def near(self, phash: str, sha256: str, submission_id: int) -> bool:
        value = int(phash, 16)
        for band in range(_BANDS):
            for other, other_sha, other_submission in self.buckets.get(
                (band, (value >> (8 * band)) & 0xFF), ()
            ):
                if (
                    other_submission != submission_id
                    and other_sha != sha256
                    and bin(value ^ other).count("1") <= self.max_distance
                ):
                    return True
        return False


class PhotoFacts(Protocol):
    """What `compute_flags` reads of a photo: a `PhotoMeta` row or an `ImageFacts`."""

    has_exif: bool
    gps_lat: float | None
    gps_lon: float | None
    phash: str | None
    error: str | None

    @property
    def taken_date(self) -> str | None: ...


def compute_flags(
    photos: Sequence[PhotoRow],
    facts: Mapping[str, PhotoFacts],
    *,
    near_max_distance: int = NEAR_DUPLICATE_MAX_DISTANCE,
    gps_max_meters: float = GPS_MAX_METERS,
) -> dict[tuple[int, str], set[str]]:
    """The flags (a subset of `FLAGS`) of each photo, keyed by (submission id, file name).

    `facts` maps a sha256 to its analysed facts; a photo without facts can only be a
    ``duplicate``. Duplicates are looked for among the given photos only (one form's)."""
    submissions_of: dict[str, set[int]] = defaultdict(set)
    for photo in photos:
        submissions_of[photo.sha256].add(photo.submission_id)
    hashes = {
        sha256: meta.phash
        for sha256 in submissions_of
        if (meta := facts.get(sha256)) is not None and meta.error is None and meta.phash
    }
    near: dict[str, set[str]] = defaultdict(set)
    for a, b in near_duplicate_pairs(hashes, near_max_distance):
        near[a].add(b)
        near[b].add(a)

    flags: dict[tuple[int, str], set[str]] = {}
    for photo in photos:
        found: set[str] = set()
        if submissions_of[photo.sha256] - {photo.submission_id}:
            found.add("duplicate")
        if any(submissions_of[other] - {photo.submission_id} for other in near[photo.sha256]):
            found.add("near_duplicate")
        meta = facts.get(photo.sha256)
        if meta is not None and meta.error is None:
            if meta.taken_date and photo.visit_date and meta.taken_date != photo.visit_date:
                found.add("date_mismatch")
            if (
                photo.geopoint is not None
                and meta.gps_lat is not None
                and meta.gps_lon is not None
                and haversine_m(meta.gps_lat, meta.gps_lon, *photo.geopoint) > gps_max_meters
            ):
                found.add("far_from_point")
            if not meta.has_exif:
                found.add("no_exif")
        flags[photo.key] = found
    return flags


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
