#!/usr/bin/env python
"""Near-duplicate calibration: how often the photo-integrity test calls two different printed
documents "similar" (false positives) and how often it still finds the same page changed on the
way (true positives), before (pHash alone) and after (pHash and the 256-bit dHash).

Run from the repository root with the project's venv:

    .venv/bin/python bench/near_duplicates.py                 # 60 documents, seeds 0-59
    .venv/bin/python bench/near_duplicates.py --first 1000    # another 60: out of sample
    .venv/bin/python bench/near_duplicates.py --count 120 --sweep

The pictures are generated (tests/documents.py): letters, attendance sheets and reports under
five offices' letterheads, half as scanner-app scans and half as phone photos on a desk, each
then re-compressed, resized, cropped, rotated or re-shot (`VARIANTS`). Every picture goes
through the server's own analysis (`forms.photos.analyze_image`, as for an upload) and pairs
are judged by the server's rule (`forms.photos.near_distances`); "before" is the old rule,
pHash distance <= 6 alone. Printed: false-positive pairs among the first pictures of different
documents and how many of those pictures would carry a wrong "similar" flag; true positives per
kind of change. The same for generic scenes (tests/forms/test_photos.scene), to show what the
stricter rule costs on photos that are not documents.
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from forms.photos import (  # noqa: E402
    NEAR_DUPLICATE_MAX_DETAIL_DISTANCE,
    NEAR_DUPLICATE_MAX_DISTANCE,
    ImageFacts,
    analyze_image,
    hamming,
)
from tests.documents import VARIANTS, calibration_set  # noqa: E402
from tests.forms.test_photos import scene  # noqa: E402


def before(a: ImageFacts, b: ImageFacts) -> bool:
    return hamming(a.phash, b.phash) <= NEAR_DUPLICATE_MAX_DISTANCE


def after(a: ImageFacts, b: ImageFacts, detail: int = NEAR_DUPLICATE_MAX_DETAIL_DISTANCE) -> bool:
    return before(a, b) and hamming(a.dhash, b.dhash) <= detail


def judge(firsts, copies, rules) -> None:
    """firsts: [(key, facts)] of different pictures; copies: [(key, variant, facts)]."""
    pairs = list(itertools.combinations(firsts, 2))
    width = max(len(name) for name in rules)
    variants = list(dict.fromkeys(v for _, v, _ in copies))
    print(f"  {len(firsts)} different pictures ({len(pairs)} pairs), {len(copies)} changed copies")
    for name, rule in rules.items():
        wrong = [(a, b) for (a, fa), (b, fb) in pairs if rule(fa, fb)]
        flagged = {key for pair in wrong for key in pair}
        facts = dict(firsts)
        found = defaultdict(lambda: [0, 0])
        for key, variant, copy in copies:
            found[variant][1] += 1
            found[variant][0] += rule(facts[key], copy)
        hits = sum(f for f, _ in found.values())
        print(
            f"  {name:<{width}}  false positives: {len(wrong):3} pairs, "
            f"{len(flagged):3}/{len(firsts)} pictures wrongly flagged"
            f" | true positives: {hits}/{len(copies)}"
        )
        for variant in variants:
            hit, total = found[variant]
            print(f"  {'':<{width}}    {variant:<34} {hit:3}/{total}")


def documents(first: int, count: int, sweep: bool) -> None:
    started = time.perf_counter()
    firsts, copies, kinds = [], [], {}
    for picture in calibration_set(range(first, first + count)):
        facts = analyze_image(picture.data)
        kinds[picture.document] = picture.how
        if picture.variant is None:
            firsts.append((picture.document, facts))
        else:
            copies.append((picture.document, picture.variant, facts))
    print(
        f"Printed documents, seeds {first}-{first + count - 1} "
        f"({sum(k == 'scan' for k in kinds.values())} scans, "
        f"{sum(k == 'photo' for k in kinds.values())} phone photos; "
        f"{time.perf_counter() - started:.0f} s to make and analyse)"
    )
    rules = {
        f"before: pHash <= {NEAR_DUPLICATE_MAX_DISTANCE}": before,
        f"after:  pHash <= {NEAR_DUPLICATE_MAX_DISTANCE} and dHash256 <= "
        f"{NEAR_DUPLICATE_MAX_DETAIL_DISTANCE}": after,
    }
    judge(firsts, copies, rules)
    close = sorted(
        hamming(fa.dhash, fb.dhash)
        for (_, fa), (_, fb) in itertools.combinations(firsts, 2)
        if before(fa, fb)
    )
    print(f"  dHash256 distances of the different documents within pHash 6: {close}")
    if sweep:
        print("  sweep of the dHash256 limit:")
        judge(
            firsts,
            copies,
            {
                f"dHash256 <= {limit}": (lambda a, b, limit=limit: after(a, b, limit))
                for limit in (24, 28, 32, 36, 40, 48)
            },
        )


def scenes(count: int) -> None:
    def jpeg(image: Image.Image, quality: int) -> bytes:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        return out.getvalue()

    def turned(image: Image.Image, degrees: float, margin: float) -> Image.Image:
        w, h = image.size
        image = image.rotate(degrees, resample=Image.Resampling.BILINEAR) if degrees else image
        box = (int(w * margin), int(h * margin), int(w * (1 - margin)), int(h * (1 - margin)))
        return image.crop(box)

    changes = {
        "re-compressed (JPEG q35)": lambda p: jpeg(p, 35),
        "resized to 50 %": lambda p: jpeg(p.resize((320, 240)), 80),
        "cropped 1.25 % a side": lambda p: jpeg(turned(p, 0, 0.0125), 75),
        "rotated 0.5°, cropped 1 %": lambda p: jpeg(turned(p, 0.5, 0.01), 85),
        "rotated 1°, cropped 2 %": lambda p: jpeg(turned(p, 1.0, 0.02), 85),
        "cropped 3 % off two sides": lambda p: jpeg(p.crop((0, 14, 621, 480)), 85),
    }
    firsts, copies = [], []
    for seed in range(count):
        image = scene(seed)
        firsts.append((seed, analyze_image(jpeg(image, 90))))
        for name, change in changes.items():
            copies.append((seed, name, analyze_image(change(image))))
    print(f"\nScenes (tests/forms/test_photos.scene: shapes on a gradient), {count}")
    judge(
        firsts,
        copies,
        {"before": before, "after": after},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first", type=int, default=0, help="first document seed (0)")
    parser.add_argument("--count", type=int, default=60, help="documents (60)")
    parser.add_argument("--scenes", type=int, default=40, help="generic scenes (40; 0: none)")
    parser.add_argument("--sweep", action="store_true", help="also try other dHash limits")
    args = parser.parse_args()
    assert set(VARIANTS)  # the kinds of change, in tests/documents.py
    documents(args.first, args.count, args.sweep)
    if args.scenes:
        scenes(args.scenes)


if __name__ == "__main__":
    main()
