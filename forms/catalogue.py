"""The IID indicator catalogue and scoring method, read from versioned data files.

The data lives beside the instruments, one file per edition, because it changes yearly:
`forms/library/iid_indicators_<edition>.csv` (one row per indicator x parameter level) and
`forms/library/iid_method_<edition>.json`. Pure code: no database, network or environment.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

EVIDENCE_KINDS = frozenset({"pdf", "image", "pdf_or_image", "video", "text"})


@dataclass(frozen=True)
class Level:
    level: int  # parameter level P1..P3
    parameter: str  # what the level requires, e.g. "SK Kepala Daerah"
    nilai: int  # points for the level (multiplied by the indicator's bobot)
    evidence_kind: str = ""
    evidence_note: str = ""


@dataclass(frozen=True)
class Indicator:
    code: str  # "ind16": the choice name used in the forms
    number: int
    name: str
    bobot: int
    levels: tuple[Level, ...]
    evidence_kind: str  # the kind for the indicator as a whole (see _merge_kinds)
    evidence_note: str

    def level(self, level: int) -> Level:
        for item in self.levels:
            if item.level == level:
                return item
        raise ValueError(f"{self.code} has no parameter level {level!r}")

    @property
    def max_score(self) -> float:
        return self.bobot * max(item.nilai for item in self.levels)


def load_indicators(edition: int = 2023) -> list[Indicator]:
    """The SID indicators of an edition, in catalogue order."""
    return list(_indicators(int(edition)))


def load_method(edition: int = 2023) -> dict:
    """The scoring method of an edition (divisor, maxima, predicate bands, portal limits)."""
    method = json.loads(_read(f"iid_method_{int(edition)}.json"))
    if method.get("edition") != int(edition):
        raise ValueError(f"iid_method_{edition}.json declares edition {method.get('edition')!r}")
    return method


def score(indicator: Indicator, level: int) -> float:
    """Score of one indicator at a parameter level: bobot x nilai."""
    return float(indicator.bobot * indicator.level(level).nilai)


@cache
def _indicators(edition: int) -> tuple[Indicator, ...]:
    rows: dict[str, list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(_read(f"iid_indicators_{edition}.csv"))):
        if int(row["edition"]) != edition:
            raise ValueError(f"iid_indicators_{edition}.csv has a row of edition {row['edition']}")
        if row["evidence_kind"] not in EVIDENCE_KINDS:
            raise ValueError(f"{row['indicator']}: unknown evidence_kind {row['evidence_kind']!r}")
        rows.setdefault(row["indicator"], []).append(row)
    return tuple(_indicator(code, group) for code, group in rows.items())


def _indicator(code: str, group: list[dict[str, str]]) -> Indicator:
    first = group[0]
    for row in group:
        if (row["number"], row["name"], row["bobot"]) != (
            first["number"],
            first["name"],
            first["bobot"],
        ):
            raise ValueError(f"{code}: number, name and bobot differ between its rows")
    levels = tuple(
        sorted(
            (
                Level(
                    int(r["level"]),
                    r["parameter"],
                    int(r["nilai"]),
                    r["evidence_kind"],
                    r["evidence_note"],
                )
                for r in group
            ),
            key=lambda item: item.level,
        )
    )
    notes = {item.evidence_note for item in levels}
    note = (
        levels[0].evidence_note
        if len(notes) == 1
        else "; ".join(f"P{item.level}: {item.evidence_note}" for item in levels)
    )
    return Indicator(
        code=code,
        number=int(first["number"]),
        name=first["name"],
        bobot=int(first["bobot"]),
        levels=levels,
        evidence_kind=_merge_kinds({item.evidence_kind for item in levels}),
        evidence_note=note,
    )


def _merge_kinds(kinds: set[str]) -> str:
    """One kind when every level agrees; PDF and image kinds together give pdf_or_image."""
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds <= {"pdf", "image", "pdf_or_image"}:
        return "pdf_or_image"
    return "/".join(sorted(kinds))


def _read(name: str) -> str:
    resource = files("forms").joinpath("library").joinpath(name)
    if not resource.is_file():
        raise ValueError(f"no IID data file {name} (unknown edition?)")
    return resource.read_text(encoding="utf-8")
