"""Photos of printed documents, generated with Pillow: the evidence officers send most (letters,
attendance sheets, reports: black text on white paper), for calibrating the near-duplicate test
(forms/photos.py; tests/forms/test_photos.py and bench/near_duplicates.py use it).

A `document` is a page from one of three templates under one office's letterhead (kop surat),
so different documents share their layout as real ones do: attendance sheets are pre-printed
with the same 20 rows, only the names filled in differ. It reaches the server either as a
`scan` (a document-scanner app or a flatbed: the page cropped and whitened, a residual skew) or
as a `photograph` (a phone held over a desk: perspective, the room's light, blur, grain), and
then maybe changed on the way (`VARIANTS`: re-compressed, resized, cropped, rotated, re-shot).
Everything is deterministic for a seed. Text uses Pillow's built-in font (no system fonts).
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

PAGE = (620, 877)  # A4 at 75 dpi
FRAME = (600, 800)  # a phone photo, portrait
WORDS = (
    "rapat koordinasi inovasi daerah pelayanan publik dinas kesehatan pendidikan kecamatan "
    "kelurahan sosialisasi evaluasi indeks laporan kegiatan peserta narasumber anggaran "
    "program pembinaan masyarakat digital aplikasi pengaduan penilaian tahun perangkat "
    "pemerintah kota sawahlunto tentang penetapan keputusan walikota nomor dengan rahmat "
    "bahwa dalam rangka meningkatkan kualitas berdasarkan pertimbangan sebagaimana dimaksud"
).split()
NAMES = (
    "Budi Santoso|Siti Rahmah|Andi Pratama|Dewi Lestari|Rudi Hartono|Yusuf Hidayat|Rina Marlina|"
    "Hendra Gunawan|Fitri Handayani|Agus Salim|Nurhayati|Doni Saputra|Wahyu Nugroho|Sri Wahyuni|"
    "Ilham Maulana|Yanti Susanti|Taufik Hidayat|Mega Puspita|Rahmat Hidayat|Lina Oktaviani"
).split("|")
OFFICES = ("DINAS KESEHATAN", "DINAS PENDIDIKAN", "BAPPEDA", "DINAS KOMINFO", "RSUD")
INK = (0, 0, 0)
PEN = (20, 20, 110)  # handwriting in blue


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


# ---- pages -------------------------------------------------------------------------------------


def _letterhead(draw: ImageDraw.ImageDraw, office: str) -> int:
    middle = PAGE[0] / 2 + 20
    draw.ellipse((40, 28, 100, 88), outline=INK, width=3)
    draw.text((middle, 36), "PEMERINTAH KOTA SAWAHLUNTO", font=font(18), fill=INK, anchor="mt")
    draw.text((middle, 58), office, font=font(22), fill=INK, anchor="mt")
    address = "Jl. Soekarno Hatta No. 1 Sawahlunto"
    draw.text((middle, 84), address, font=font(11), fill=INK, anchor="mt")
    draw.line((36, 104, PAGE[0] - 36, 104), fill=INK, width=3)
    draw.line((36, 108, PAGE[0] - 36, 108), fill=INK, width=1)
    return 124


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def _paragraphs(draw: ImageDraw.ImageDraw, rng: random.Random, top: int, bottom: int) -> int:
    y = top
    while y < bottom:
        lines = rng.randint(2, 6)
        for i in range(lines):
            text = _words(rng, rng.randint(7, 11) if i < lines - 1 else rng.randint(2, 8))
            draw.text((40 if i else 70, y), text, font=font(13), fill=INK)
            y += 18
        y += 12
    return y


def _signature(draw: ImageDraw.ImageDraw, rng: random.Random, x: int, y: int) -> None:
    points = [(x + i * 6, y + rng.randint(-8, 8)) for i in range(rng.randint(5, 12))]
    draw.line(points, fill=PEN, width=2)


def _grid(draw: ImageDraw.ImageDraw, cols: list[int], top: int, rows: int, height: int) -> None:
    for r in range(rows + 1):
        draw.line((cols[0], top + r * height, cols[-1], top + r * height), fill=INK, width=1)
    for x in cols:
        draw.line((x, top, x, top + rows * height), fill=INK, width=1)


def attendance(rng: random.Random, office: str) -> Image.Image:
    """A pre-printed attendance sheet (daftar hadir): 20 rows, some filled in by hand."""
    page = Image.new("RGB", PAGE, "white")
    draw = ImageDraw.Draw(page)
    y = _letterhead(draw, office)
    draw.text((PAGE[0] / 2, y + 4), "DAFTAR HADIR", font=font(18), fill=INK, anchor="mt")
    y += 34
    for label in ("Hari/Tanggal", "Acara", "Tempat"):
        text = f"{label:<14}: {_words(rng, rng.randint(2, 5))}"
        draw.text((50, y), text, font=font(13), fill=INK)
        y += 20
    y += 8
    cols, rows, height = [40, 80, 300, 450, PAGE[0] - 40], 21, 28
    _grid(draw, cols, y, rows, height)
    for c, title in enumerate(("No", "Nama", "Jabatan", "Tanda Tangan")):
        draw.text((cols[c] + 6, y + 8), title, font=font(13), fill=INK)
    for r in range(1, rng.randint(8, rows - 1) + 1):
        top = y + r * height
        draw.text((cols[0] + 8, top + 8), str(r), font=font(12), fill=INK)
        draw.text((cols[1] + 6, top + 8), rng.choice(NAMES), font=font(12), fill=PEN)
        draw.text((cols[2] + 6, top + 8), _words(rng, 2)[:20], font=font(12), fill=INK)
        _signature(draw, rng, cols[3] + 10 + rng.randint(0, 60), top + 14)
    return page


def letter(rng: random.Random, office: str) -> Image.Image:
    """A letter (surat dinas): number, subject, paragraphs, a signature and a stamp."""
    page = Image.new("RGB", PAGE, "white")
    draw = ImageDraw.Draw(page)
    y = _letterhead(draw, office)
    day = f"Sawahlunto, {rng.randint(1, 28)} November 2026"
    draw.text((PAGE[0] - 220, y), day, font=font(13), fill=INK)
    y += 28
    for label in ("Nomor", "Lampiran", "Perihal"):
        text = f"{label:<10}: {_words(rng, rng.randint(1, 4))}"
        draw.text((40, y), text, font=font(13), fill=INK)
        y += 18
    _paragraphs(draw, rng, y + 20, PAGE[1] - 200)
    right, bottom = PAGE[0], PAGE[1]
    draw.text((right - 230, bottom - 170), "KEPALA " + office, font=font(13), fill=INK)
    _signature(draw, rng, right - 220, bottom - 120)
    stamp = (right - 260, bottom - 150, right - 180, bottom - 70)
    draw.ellipse(stamp, outline=(60, 60, 200), width=3)
    draw.text((right - 230, bottom - 80), rng.choice(NAMES), font=font(13), fill=INK)
    return page


def report(rng: random.Random, office: str) -> Image.Image:
    """A report: a title, text, the office's own table layout with numbers, more text."""
    page = Image.new("RGB", PAGE, "white")
    draw = ImageDraw.Draw(page)
    y = _letterhead(draw, office)
    title = "LAPORAN " + _words(rng, 3).upper()
    draw.text((PAGE[0] / 2, y + 4), title, font=font(15), fill=INK, anchor="mt")
    y = _paragraphs(draw, rng, y + 36, y + 126)
    layout = random.Random(office)  # the same columns in every report of an office
    cols = [40, *sorted(layout.sample(range(120, PAGE[0] - 80), 4)), PAGE[0] - 40]
    rows, height = 14, 24
    _grid(draw, cols, y, rows, height)
    for r in range(rows):
        for c in range(len(cols) - 1):
            text = str(rng.randint(1, 99999)) if c else _words(rng, 1)
            width = (cols[c + 1] - cols[c]) // 7
            draw.text((cols[c] + 4, y + r * height + 6), text[:width], font=font(11), fill=INK)
    _paragraphs(draw, rng, y + rows * height + 20, PAGE[1] - 60)
    return page


TEMPLATES: tuple[Callable[[random.Random, str], Image.Image], ...] = (attendance, letter, report)


def document(seed: int) -> Image.Image:
    """Page `seed`: template seed % 3, office (seed // 3) % 5, content from the seed."""
    template = TEMPLATES[seed % len(TEMPLATES)]
    return template(random.Random(seed), OFFICES[(seed // len(TEMPLATES)) % len(OFFICES)])


# ---- how a page becomes a picture --------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """Where and how one officer photographs documents: the desk, the light, the framing."""

    desk: tuple[int, int, int]
    light_angle: float
    light_low: float  # the dim side's brightness, 0-1
    tint: tuple[float, float, float]
    scale: float  # page height / frame height; above 1 the page fills the frame
    tilt: float  # degrees


DESKS = ((112, 84, 58), (150, 120, 90), (128, 128, 124), (70, 70, 72), (190, 185, 175))


def session(seed: int) -> Session:
    rng = random.Random(seed)
    return Session(
        desk=rng.choice(DESKS),
        light_angle=rng.uniform(0, 2 * math.pi),
        light_low=rng.uniform(0.7, 0.97),
        tint=(rng.uniform(0.93, 1.0), rng.uniform(0.93, 1.0), rng.uniform(0.93, 1.0)),
        scale=rng.choice((0.9, 1.0, 1.1, 1.2)),
        tilt=rng.uniform(-2, 2),
    )


@dataclass(frozen=True)
class Shot:
    """The hand-held part of one photo: where the page lands in the frame."""

    dx: float
    dy: float
    scale: float
    tilt: float
    corners: tuple[float, ...]  # perspective: each corner moved by a fraction of the page
    blur: float
    seed: int


def shot(seed: int, like: Shot | None = None) -> Shot:
    """A photo's hand-held variation; `like`: a re-shot from about the same spot."""
    rng = random.Random(seed)
    if like is None:
        return Shot(
            rng.uniform(-0.04, 0.04),
            rng.uniform(-0.04, 0.04),
            rng.uniform(0.94, 1.06),
            rng.uniform(-2.5, 2.5),
            tuple(rng.uniform(-0.025, 0.025) for _ in range(8)),
            rng.uniform(0.4, 1.0),
            seed,
        )
    return Shot(
        like.dx + rng.uniform(-0.012, 0.012),
        like.dy + rng.uniform(-0.012, 0.012),
        like.scale * rng.uniform(0.98, 1.02),
        like.tilt + rng.uniform(-0.8, 0.8),
        tuple(c + rng.uniform(-0.006, 0.006) for c in like.corners),
        rng.uniform(0.4, 1.0),
        seed,
    )


def photograph(page: Image.Image, where: Session, how: Shot) -> Image.Image:
    """A phone photo (600x800) of a page on a desk: perspective, light, blur, grain."""
    height = FRAME[1] * where.scale * how.scale
    width = height * PAGE[0] / PAGE[1]
    cx, cy = FRAME[0] * (0.5 + how.dx), FRAME[1] * (0.5 + how.dy)
    angle = math.radians(where.tilt + how.tilt)
    cos, sin = math.cos(angle), math.sin(angle)
    quad: list[tuple[float, float]] = []
    for i, (ux, uy) in enumerate(((-0.5, -0.5), (-0.5, 0.5), (0.5, 0.5), (0.5, -0.5))):
        x = (ux + how.corners[2 * i]) * width
        y = (uy + how.corners[2 * i + 1]) * height
        quad.append((cx + x * cos - y * sin, cy + x * sin + y * cos))
    coefficients = _perspective(quad, PAGE)
    photo = Image.new("RGB", FRAME, where.desk)
    warped = page.transform(
        FRAME, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
    )
    mask = Image.new("L", PAGE, 255).transform(FRAME, Image.Transform.PERSPECTIVE, coefficients)
    photo.paste(warped, (0, 0), mask)
    ys, xs = np.mgrid[0 : FRAME[1], 0 : FRAME[0]].astype(np.float32)
    ramp = (xs / FRAME[0] - 0.5) * math.cos(where.light_angle) + (ys / FRAME[1] - 0.5) * math.sin(
        where.light_angle
    )
    light = where.light_low + (1 - where.light_low) * (ramp - ramp.min()) / np.ptp(ramp)
    grain = np.random.default_rng(how.seed).normal(0, 4, (FRAME[1], FRAME[0], 1))
    pixels = np.asarray(photo, np.float32) * light[..., None] * np.array(where.tint) + grain
    photo = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    return photo.filter(ImageFilter.GaussianBlur(how.blur))


def _perspective(quad: list[tuple[float, float]], size: tuple[int, int]) -> list[float]:
    """Coefficients for Image.transform(PERSPECTIVE): a frame point to a page point, the
    page's corners (top left, bottom left, bottom right, top right) landing on `quad`."""
    corners = [(0, 0), (0, size[1]), (size[0], size[1]), (size[0], 0)]
    rows, right = [], []
    for (x, y), (u, v) in zip(quad, corners, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        right.extend((u, v))
    return [float(c) for c in np.linalg.solve(np.array(rows, float), np.array(right, float))]


def scan(page: Image.Image, seed: int) -> Image.Image:
    """What a document-scanner app (or a flatbed) gives: the page cropped and deskewed, the
    paper whitened, a residual skew and blur; 600 px wide."""
    rng = random.Random(seed)
    w, h = PAGE
    quad = []
    for x, y in ((0, 0), (0, h), (w, h), (w, 0)):
        quad.extend((x + rng.uniform(-0.006, 0.006) * w, y + rng.uniform(-0.006, 0.006) * h))
    flat = page.transform(PAGE, Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)
    out = flat.resize((600, round(600 * h / w)), Image.Resampling.LANCZOS)
    grain = np.random.default_rng(seed).normal(0, 2, (out.height, out.width, 1))
    pixels = np.asarray(out, np.float32) * rng.uniform(0.9, 1.0) + grain
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7)))


# ---- a calibration set -------------------------------------------------------------------------


def jpeg(image: Image.Image, quality: int = 88) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def picture(seed: int) -> tuple[str, Image.Image, Callable[[int], Image.Image]]:
    """Document `seed` as it first arrives, even seeds scanned and odd ones photographed in one
    of 4 sessions: (how, the picture, a function making a re-shot/re-scan for a seed)."""
    page = document(seed)
    if seed % 2 == 0:
        return "scan", scan(page, 100 + seed), lambda again: scan(page, again)
    where, how = session(seed % 4), shot(1000 + seed)
    return (
        "photo",
        photograph(page, where, how),
        lambda again: photograph(page, where, shot(again, like=how)),
    )


def _turned(image: Image.Image, degrees: float, margin: float) -> Image.Image:
    """Rotated (corners filled white) and cropped by `margin` of each side."""
    w, h = image.size
    if degrees:
        image = image.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor="white")
    box = (int(w * margin), int(h * margin), int(w * (1 - margin)), int(h * (1 - margin)))
    return image.crop(box)


def _width(image: Image.Image, width: int) -> Image.Image:
    return image.resize((width, round(width * image.height / image.width)))


#: What happens to a picture on its way to a second submission, by name: each makes the JPEG
#: of a changed copy from the first picture and its re-shot (`again`, made once, lazily).
VARIANTS: dict[str, Callable[[Image.Image, Callable[[], Image.Image]], bytes]] = {
    "re-compressed (JPEG q35)": lambda p, again: jpeg(p, 35),
    "resized to 50 %": lambda p, again: jpeg(p.resize((p.width // 2, p.height // 2)), 80),
    "resized to 240 px": lambda p, again: jpeg(_width(p, 240), 75),
    "cropped 1.25 % a side": lambda p, again: jpeg(_turned(p, 0, 0.0125), 75),
    "rotated 0.5°, cropped 1 %": lambda p, again: jpeg(_turned(p, 0.5, 0.01), 85),
    "re-shot from the same spot": lambda p, again: jpeg(again()),
    "re-shot, forwarded (450 px, q60)": lambda p, again: jpeg(_width(again(), 450), 60),
    "rotated 1°, cropped 2 %": lambda p, again: jpeg(_turned(p, 1.0, 0.02), 85),
    "cropped 3 % off two sides": lambda p, again: jpeg(
        p.crop((0, int(p.height * 0.03), int(p.width * 0.97), p.height)), 85
    ),
}


@dataclass(frozen=True)
class Picture:
    document: int  # the page's seed: equal seeds, the same page
    how: str  # "scan" or "photo"
    variant: str | None  # None: the first picture of the page; else a VARIANTS name
    data: bytes


def calibration_set(
    seeds: Iterable[int], variants: Iterable[str] | None = None
) -> Iterator[Picture]:
    """Each document's first picture (a JPEG at quality 88) and its changed copies."""
    for seed in seeds:
        how, image, reshoot = picture(seed)
        again = cache(lambda reshoot=reshoot, seed=seed: reshoot(seed + 7777))
        yield Picture(seed, how, None, jpeg(image))
        for name in VARIANTS if variants is None else variants:
            yield Picture(seed, how, name, VARIANTS[name](image, again))
