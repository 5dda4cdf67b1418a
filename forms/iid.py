"""The IID view of the visit instruments: OPD -> innovation -> indicator, with a simulated score.

Pure: it takes plain records read from the three shipped forms and the versioned catalogue
(`forms/library/iid_*_<edition>`), and returns the report. The 2023 method (BSKDN):
  indicator score  = bobot x nilai of the chosen parameter level, counted when its evidence is
                     available (what the portal would accept today)
  innovation score = the sum of its indicator scores (at most 111)
  SID              = (sum of innovation scores) / MAX(10, n innovations)
  IID (simulated)  = (SPD + SID) / max_total x 100, banded by the edition's predicates.
SPD (indicators 1-15) is filled once per Pemda, not per OPD, so the caller gives it (default 0);
the 'skor jumlah inovasi' term is not defined for 2023 and is left out (documented in README).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalogue import Indicator, load_indicators, load_method

AVAILABLE, NEEDS_COMPLETION, MISSING = "available", "needs completion", "missing"


@dataclass(frozen=True)
class Profile:
    """An innovation as its profile submission (or a visit) names it."""

    opd: str
    name: str
    stage: str | None = None  # tahapan
    kind: str | None = None  # jenis
    form: str | None = None  # bentuk


@dataclass(frozen=True)
class VisitMark:
    """What a visit recorded about one innovation's indicator: ada / kurang / an evidence row."""

    opd: str
    innovation: str
    indicator: str
    status: str  # lengkap | kurang | belum (bukti_status), or 'ada' / 'kurang' from the lists
    photos: int = 0
    date: str = ""  # the visit date, to take the latest mark


@dataclass(frozen=True)
class EvidenceDoc:
    """A data_dukung submission: one indicator's chosen parameter and its documents."""

    opd: str
    innovation: str
    indicator: str
    parameter: str | None  # e.g. "ind16_p3"
    nomor: str = ""
    tanggal: str = ""
    tentang: str = ""
    file_name: str | None = None
    file_bytes: int | None = None
    file_type: str | None = None
    link: str = ""
    photos: int = 0
    submitted: str = ""  # ISO timestamp, to take the latest parameter


@dataclass
class IndicatorRow:
    indicator: Indicator
    status: str = MISSING
    level: int | None = None
    score: float = 0.0
    photos: int = 0
    documents: int = 0
    docs: list[EvidenceDoc] = field(default_factory=list)


@dataclass
class InnovationReport:
    opd: str
    name: str
    profile: Profile | None
    indicators: list[IndicatorRow]

    @property
    def score(self) -> float:
        return sum(row.score for row in self.indicators)


@dataclass
class Report:
    edition: int
    innovations: list[InnovationReport]
    spd: float
    sid: float
    index: float
    band: str
    warnings: list[str]

    def by_opd(self) -> dict[str, list[InnovationReport]]:
        grouped: dict[str, list[InnovationReport]] = {}
        for innovation in self.innovations:
            grouped.setdefault(innovation.opd, []).append(innovation)
        return grouped


def key(opd: str, name: str) -> tuple[str, str]:
    """Innovations are matched by OPD and name, ignoring case and spacing."""
    return opd.strip().lower(), " ".join(name.lower().split())


def build_report(
    profiles: list[Profile],
    marks: list[VisitMark],
    docs: list[EvidenceDoc],
    *,
    edition: int = 2023,
    spd: float = 0.0,
) -> Report:
    indicators = load_indicators(edition)
    method = load_method(edition)
    names: dict[tuple[str, str], tuple[str, str, Profile | None]] = {}
    for profile in profiles:
        names[key(profile.opd, profile.name)] = (profile.opd, profile.name.strip(), profile)
    for item in [*marks, *docs]:
        names.setdefault(key(item.opd, item.innovation), (item.opd, item.innovation.strip(), None))
    warnings: list[str] = []
    limit = method["portal_limits"]["pdf_max_bytes"]
    innovations = []
    for inv_key, (opd, name, profile) in sorted(names.items()):
        rows = []
        for indicator in indicators:
            row = IndicatorRow(indicator)
            own_docs = sorted(
                (
                    d
                    for d in docs
                    if key(d.opd, d.innovation) == inv_key and d.indicator == indicator.code
                ),
                key=lambda d: d.submitted,
            )
            own_marks = sorted(
                (
                    m
                    for m in marks
                    if key(m.opd, m.innovation) == inv_key and m.indicator == indicator.code
                ),
                key=lambda m: m.date,
            )
            row.docs = own_docs
            row.documents = sum(1 for d in own_docs if d.file_name or d.link)
            row.photos = sum(d.photos for d in own_docs) + sum(m.photos for m in own_marks)
            chosen = next((d.parameter for d in reversed(own_docs) if d.parameter), None)
            if chosen:
                row.level = _level_of(chosen)
            row.status = _status(row, own_marks)
            if row.level is not None and row.status == AVAILABLE:
                row.score = indicator.bobot * indicator.level(row.level).nilai
            for doc in own_docs:
                if (
                    doc.file_bytes
                    and doc.file_bytes > limit
                    and (doc.file_type or "").endswith("pdf")
                ):
                    warnings.append(
                        f"{opd} / {name} / {indicator.code}: {doc.file_name} is "
                        f"{doc.file_bytes / 2**20:.1f} MB; the portal takes PDFs "
                        f"up to {limit / 2**20:.0f} MB."
                    )
            rows.append(row)
        innovations.append(InnovationReport(opd, name, profile, rows))
    total = sum(innovation.score for innovation in innovations)
    sid = total / max(method["sid_divisor_min"], len(innovations))
    index = (spd + sid) / method["max_total"] * 100
    return Report(
        edition, innovations, spd, round(sid, 4), round(index, 4), band(index, method), warnings
    )


def band(index: float, method: dict) -> str:
    rounded = round(index, 2)
    for entry in method["bands"]:
        if entry["min"] <= rounded <= entry["max"]:
            return entry["label"]
    return method["bands"][-1]["label"]


def _level_of(parameter: str) -> int | None:
    tail = parameter.rsplit("_p", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None


def _status(row: IndicatorRow, marks: list[VisitMark]) -> str:
    """Available: documented (a file, a link or photos) and the latest visit did not ask for
    more; needs completion: the latest visit says incomplete, or a parameter with nothing
    behind it; missing otherwise."""
    latest = marks[-1].status if marks else None
    has_evidence = row.documents > 0 or row.photos > 0
    if latest in ("kurang",) and (has_evidence or row.level is not None):
        return NEEDS_COMPLETION
    if has_evidence:
        return AVAILABLE if latest not in ("belum",) or row.documents else NEEDS_COMPLETION
    if row.level is not None or latest in ("ada", "lengkap", "kurang"):
        return NEEDS_COMPLETION
    return MISSING
