"""Draw the web app's icons (committed PNGs in static/) and the site's favicon
(server/static/favicon.ico): `python -m server.webform.make_icons`.

A green tile with a white clipboard and a tick: readable at 48 px on a phone's home screen.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

STATIC = Path(__file__).parent / "static"
SITE_STATIC = Path(__file__).parent.parent / "static"
GREEN = (11, 93, 59, 255)
YELLOW = (242, 183, 5, 255)
WHITE = (255, 255, 255, 255)


def draw(size: int, *, maskable: bool = False, rounded: bool = True) -> Image.Image:
    scale = 4  # draw large, shrink: smooth edges without a font or anti-aliasing options
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    if maskable or not rounded:
        pen.rectangle((0, 0, big, big), fill=GREEN)
    else:
        pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=big // 5, fill=GREEN)
    inset = big * (0.24 if maskable else 0.17)  # maskable icons keep a 10 % safe margin
    left, top, right, bottom = inset * 1.1, inset, big - inset * 1.1, big - inset * 0.85
    pen.rounded_rectangle((left, top, right, bottom), radius=big // 22, fill=WHITE)
    clip_w = (right - left) * 0.42
    pen.rounded_rectangle(
        ((big - clip_w) / 2, top - big * 0.035, (big + clip_w) / 2, top + big * 0.07),
        radius=big // 40,
        fill=YELLOW,
    )
    width = max(1, int(big * 0.055))
    cx, cy = big / 2, (top + bottom) / 2 + big * 0.03
    unit = (right - left) * 0.2
    tick = [(cx - unit * 1.3, cy), (cx - unit * 0.3, cy + unit), (cx + unit * 1.4, cy - unit * 0.9)]
    pen.line(tick, fill=GREEN, width=width, joint="curve")
    return image.resize((size, size), Image.LANCZOS)


def main() -> None:
    STATIC.mkdir(exist_ok=True)
    draw(192).save(STATIC / "icon-192.png", optimize=True)
    draw(512).save(STATIC / "icon-512.png", optimize=True)
    draw(512, maskable=True).save(STATIC / "icon-maskable-512.png", optimize=True)
    draw(180, rounded=False).convert("RGB").save(STATIC / "apple-touch-icon.png", optimize=True)
    draw(64).save(SITE_STATIC / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48)])


if __name__ == "__main__":
    main()
