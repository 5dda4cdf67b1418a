"""The IID indicator catalogue and scoring method, read from versioned data files.

The data lives beside the instruments, one file per edition, because it changes yearly:
`forms/library/iid_indicators_<edition>.csv` (one row per indicator x parameter level) and
`forms/library/iid_method_<edition>.json`. Pure code: no database, network or environment.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import msgspec

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


class Band(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A predicate: the index from `min` to `max`, both included, at two decimals."""

    label: str
    min: float
    max: float


class CountRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a newer edition computes the 'skor jumlah inovasi' from the registered innovations:
    MIN(n, max_innovations) x per_innovation, only when their `urusan_property` covers at least
    `urusan_min` of the `urusan_wajib` (the instruments' choice names of the urusan wajib
    pelayanan dasar); otherwise 0."""

    per_innovation: float
    max_innovations: int
    urusan_property: str
    urusan_wajib: tuple[str, ...]
    urusan_min: int


class CountTerm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The 'skor jumlah inovasi' added to SID: entered (0 to `max`), or by `rule` when the
    edition has one and none is entered."""

    max: float
    rule: CountRule | None = None


class PortalLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pdf_max_bytes: int
    video_max_minutes: int


class Method(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An edition's scoring method (forms/library/iid_method_<edition>.json):
    SID = sum of innovation scores / MAX(sid_divisor_min, n) + skor jumlah inovasi;
    index = (SPD + SID) / max_total x 100, named by the first band that holds it."""

    edition: int
    spd_max: float
    sid_max: float
    sid_divisor_min: int
    max_total: float
    count_term: CountTerm
    bands: tuple[Band, ...]
    portal_limits: PortalLimits

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError(f"method {self.edition}: no bands")
        if self.max_total <= 0 or self.sid_divisor_min < 1:
            raise ValueError(f"method {self.edition}: max_total and sid_divisor_min must be > 0")

    def divisor(self, innovations: int) -> int:
        return max(self.sid_divisor_min, innovations)

    def band(self, index: float) -> str:
        rounded = round(index, 2)
        for entry in self.bands:
            if entry.min <= rounded <= entry.max:
                return entry.label
        return self.bands[-1].label


def parse_method(text: str | bytes) -> Method:
    """A method file's text, checked: unknown keys, wrong types and missing keys are refused."""
    try:
        return msgspec.json.decode(text, type=Method)
    except msgspec.ValidationError as problem:
        raise ValueError(f"IID method file: {problem}") from None


def load_method(edition: int = 2023) -> Method:
    """The scoring method of a shipped edition (divisor, maxima, count term, bands, limits)."""
    method = _method(int(edition))
    if method.edition != int(edition):
        raise ValueError(f"iid_method_{edition}.json declares edition {method.edition!r}")
    return method


@cache
def _method(edition: int) -> Method:
    return parse_method(_read(f"iid_method_{edition}.json"))


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
