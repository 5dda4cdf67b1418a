"""The IID view of the visit instruments: OPD -> innovation -> indicator, with a simulated score.

Pure: it takes plain records read from the three shipped forms and the versioned catalogue
(`forms/library/iid_*_<edition>`), and returns the report. The 2023 method (BSKDN):
  indicator score  = bobot x nilai of the highest parameter level backed by its own evidence
  innovation score = the sum of its indicator scores (at most 111)
  SID              = (sum of innovation scores) / MAX(10, n registered innovations)
                     + skor jumlah inovasi
  IID (simulated)  = (SPD + SID) / max_total x 100, banded by the edition's predicates.
The divisor's minimum, the maxima, the bands and the count term are the edition's data
(forms.catalogue.Method), so a newer edition (MAX(12, n), other bands, a count rule) is a
new method file, not new code.

Which evidence counts (what a submission to the portal can stand on):
- only evidence a supervisor approved (`mode="approved"`, the default); the labelled draft
  mode also counts evidence not reviewed yet, never rejected or has-issues evidence;
- a parameter level scores only with a document of that level that carries a file, a link
  or a photo: a P3 claim with no file does not borrow an older P1 PDF;
- a visit's "perlu dilengkapi" for an indicator sets aside the evidence sent on or before the
  visit day; evidence sent after it stands;
- innovations are entities of the `inovasi` list (their uuid), or, for a name no entity
  matches, the typed name: such names are listed as unregistered, not scored and not counted.
SPD (indicators 1-15) is filled once per Pemda (0 to the edition's `spd_max`), so the caller
gives it. The 'skor jumlah inovasi' is given too (0 to the edition's maximum: the 2023 sources
give no rule for it); an edition with a count rule computes it when none is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .catalogue import CountRule, Indicator, Method, load_indicators, load_method
from .entities import normalize_name
from .errors import FormsError
from .exports.records import MediaRef

AVAILABLE, NEEDS_COMPLETION, MISSING = "available", "needs completion", "missing"
# Where the skor jumlah inovasi came from.
COUNT_GIVEN, COUNT_BY_RULE, COUNT_NOT_GIVEN = "given", "rule", "not given"
MODES = ("approved", "draft")
# Review states that never score, in any mode.
REFUSED = ("rejected", "hasIssues")


class InvalidInputs(FormsError):
    """A report input out of its range (SPD, count, mode): the message says which and why."""


@dataclass(frozen=True)
class Profile:
    """An innovation: an entity of the list (`entity` its uuid, `registered`), or a profile
    submission whose name no entity matches."""

    opd: str
    name: str
    stage: str | None = None  # tahapan
    kind: str | None = None  # jenis
    form: str | None = None  # bentuk
    entity: str | None = None
    registered: bool = False
    data: dict[str, Any] = field(default_factory=dict)  # the entity's properties


@dataclass(frozen=True)
class VisitMark:
    """What a visit recorded about one innovation's indicator: ada / kurang / an evidence row."""

    opd: str
    innovation: str
    indicator: str
    status: str  # lengkap | kurang | belum (bukti_status), or 'ada' / 'kurang' from the lists
    photos: int = 0
    date: str = ""  # the visit date (YYYY-MM-DD)
    entity: str | None = None


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
    submitted: str = ""  # ISO timestamp of the submission
    entity: str | None = None
    review_state: str | None = None
    instance_id: str = ""
    files: tuple[MediaRef, ...] = ()  # its stored document and photos, for the portal package

    @property
    def level(self) -> int | None:
        return _level_of(self.parameter) if self.parameter else None

    @property
    def documented(self) -> bool:
        return bool(self.file_name or self.link or self.photos)


@dataclass
class IndicatorRow:
    indicator: Indicator
    status: str = MISSING
    level: int | None = None  # the level scored, else the level last claimed
    score: float = 0.0
    photos: int = 0
    documents: int = 0
    docs: list[EvidenceDoc] = field(default_factory=list)
    used: list[EvidenceDoc] = field(default_factory=list)  # the documents the score stands on
    flagged: bool = False  # a visit asked to complete it, and nothing counted came after


@dataclass
class InnovationReport:
    opd: str
    name: str
    profile: Profile | None
    indicators: list[IndicatorRow]
    registered: bool = True
    opd_name: str = ""  # the OPD as people read it (set by the caller that knows the labels)
    details: dict[str, str] = field(default_factory=dict)  # property label -> value label

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
    mode: str = "approved"
    divisor: int = 0
    count: float = 0.0  # skor jumlah inovasi, part of SID
    count_source: str = COUNT_NOT_GIVEN
    method: Method | None = None

    def by_opd(self) -> dict[str, list[InnovationReport]]:
        """Innovations by their OPD's name (its code when no name was set)."""
        grouped: dict[str, list[InnovationReport]] = {}
        for innovation in self.innovations:
            grouped.setdefault(innovation.opd_name or innovation.opd, []).append(innovation)
        return grouped


def key(opd: str, name: str) -> tuple[str, str]:
    """A typed innovation name's identity: its OPD and its name as `normalize_name` reads it."""
    return opd.strip().lower(), normalize_name(name)


def counts(doc: EvidenceDoc, mode: str) -> bool:
    """Whether a document's review lets it score in this mode."""
    if mode == "approved":
        return doc.review_state == "approved"
    return doc.review_state not in REFUSED


def check_inputs(
    spd: float, mode: str, count: float | None = None, method: Method | None = None
) -> None:
    """SPD and the count term within 0 to the edition's maxima, a known mode (InvalidInputs,
    in Indonesian). NaN is out of every range."""
    method = method or load_method()
    if not 0 <= spd <= method.spd_max:
        raise InvalidInputs(
            f"Skor SPD harus antara 0 dan {method.spd_max:g} (edisi {method.edition}); "
            f"diberikan {spd:g}."
        )
    if count is not None and not 0 <= count <= method.count_term.max:
        raise InvalidInputs(
            f"Skor jumlah inovasi harus antara 0 dan {method.count_term.max:g} "
            f"(edisi {method.edition}); diberikan {count:g}."
        )
    if mode not in MODES:
        raise InvalidInputs(f"Mode harus salah satu dari {', '.join(MODES)}; diberikan {mode!r}.")


def build_report(
    profiles: list[Profile],
    marks: list[VisitMark],
    docs: list[EvidenceDoc],
    *,
    edition: int = 2023,
    method: Method | None = None,
    spd: float = 0.0,
    count: float | None = None,
    mode: str = "approved",
    opd_name: Callable[[str, Profile | None], str] | None = None,
) -> Report:
    """`count`: the skor jumlah inovasi, or None for the edition's rule (0 without one).
    `method`: the edition's method unless given (a newer edition's, before it ships).
    `opd_name`: an OPD as people read it, given its code and the innovation's profile
    (the caller knows the forms' labels); the code when not given."""
    method = method or load_method(edition)
    check_inputs(spd, mode, count, method)
    indicators = load_indicators(edition)
    known: dict[object, tuple[str, str, Profile | None]] = {}
    by_name: dict[tuple[str, str], object] = {}

    def identity(opd: str, name: str, entity: str | None) -> object:
        if entity:
            return entity
        return by_name.get(key(opd, name), key(opd, name))

    # Registered innovations first: a profile submission of the same name is the same one.
    for profile in sorted(profiles, key=lambda p: not p.registered):
        ident = identity(profile.opd, profile.name, profile.entity)
        known.setdefault(ident, (profile.opd, profile.name.strip(), profile))
        by_name.setdefault(key(profile.opd, profile.name), ident)

    for item in [*marks, *docs]:
        ident = identity(item.opd, item.innovation, item.entity)
        known.setdefault(ident, (item.opd, item.innovation.strip(), None))
    registry = any(p.registered for p in profiles)
    warnings: list[str] = []
    limit = method.portal_limits.pdf_max_bytes
    innovations = []
    for ident, (opd, name, profile) in sorted(known.items(), key=lambda kv: _order(kv[1])):
        registered = (profile is not None and profile.registered) or not registry
        shown = opd_name(opd, profile) if opd_name else opd
        rows = []
        for indicator in indicators:
            own_docs = sorted(
                (
                    d
                    for d in docs
                    if d.indicator == indicator.code
                    and identity(d.opd, d.innovation, d.entity) == ident
                ),
                key=lambda d: d.submitted,
            )
            own_marks = [
                m
                for m in marks
                if m.indicator == indicator.code
                and identity(m.opd, m.innovation, m.entity) == ident
            ]
            row = _score(indicator, own_docs, own_marks, mode)
            if not registered:
                row.score = 0.0
            for doc in own_docs:
                if (
                    doc.file_bytes
                    and doc.file_bytes > limit
                    and (doc.file_type or "").endswith("pdf")
                ):
                    warnings.append(
                        f"{shown} / {name} / {indicator.code}: {doc.file_name} berukuran "
                        f"{doc.file_bytes / 2**20:.1f} MB; portal menerima PDF "
                        f"sampai {limit / 2**20:.0f} MB."
                    )
            rows.append(row)
        if not registered:
            warnings.append(
                f"{shown} / {name}: nama inovasi ini tidak cocok dengan inovasi terdaftar; "
                "tautkan di halaman Inovasi (tidak dihitung dalam skor)."
            )
        innovations.append(InnovationReport(opd, name, profile, rows, registered, shown))
    counted = [i for i in innovations if i.registered]
    total = sum(innovation.score for innovation in counted)
    divisor = method.divisor(len(counted))
    if count is not None:
        source = COUNT_GIVEN
    elif method.count_term.rule is not None:
        count, source = count_by_rule(method.count_term.rule, counted), COUNT_BY_RULE
    else:
        count, source = 0.0, COUNT_NOT_GIVEN  # the summary says so beside the 0
    sid = total / divisor + count
    index = (spd + sid) / method.max_total * 100
    return Report(
        method.edition,
        innovations,
        spd,
        round(sid, 4),
        round(index, 4),
        method.band(index),
        warnings,
        mode,
        divisor,
        round(count, 4),
        source,
        method,
    )


def count_by_rule(rule: CountRule, innovations: list[InnovationReport]) -> float:
    """MIN(n, cap) x per innovation when the innovations' urusan cover enough of the urusan
    wajib pelayanan dasar, else 0."""
    covered = {
        str((i.profile.data if i.profile else {}).get(rule.urusan_property) or "")
        for i in innovations
    } & set(rule.urusan_wajib)
    if len(covered) < rule.urusan_min:
        return 0.0
    return min(len(innovations), rule.max_innovations) * rule.per_innovation


@dataclass
class OpdStanding:
    """One OPD in the report: what it scores now and what to chase."""

    opd: str  # its code
    name: str
    registered: int = 0
    score: float = 0.0  # its registered innovations' scores (each out of the edition's sid_max)
    flagged: list[tuple[str, str]] = field(default_factory=list)  # (innovation, indicator)
    to_complete: list[tuple[str, str]] = field(default_factory=list)


def standing_by_opd(report: Report) -> dict[str, OpdStanding]:
    """Per OPD code: its registered innovations, their score, the indicators a visit flagged
    that nothing counted has answered since, and those claimed or discussed with no counted
    evidence (flagged ones included)."""
    found: dict[str, OpdStanding] = {}
    for innovation in report.innovations:
        entry = found.setdefault(
            innovation.opd, OpdStanding(innovation.opd, innovation.opd_name or innovation.opd)
        )
        if not innovation.registered:
            continue
        entry.registered += 1
        entry.score = round(entry.score + innovation.score, 4)
        for row in innovation.indicators:
            if row.flagged:
                entry.flagged.append((innovation.name, row.indicator.code))
            if row.status == NEEDS_COMPLETION:
                entry.to_complete.append((innovation.name, row.indicator.code))
    return found


def _order(entry: tuple[str, str, Profile | None]) -> tuple[str, str]:
    opd, name, _ = entry
    return opd, normalize_name(name)


def _score(
    indicator: Indicator, docs: list[EvidenceDoc], marks: list[VisitMark], mode: str
) -> IndicatorRow:
    """One indicator of one innovation: the highest level whose own, reviewed evidence no
    later visit set aside."""
    row = IndicatorRow(indicator, docs=docs)
    row.documents = sum(1 for d in docs if d.file_name or d.link)
    row.photos = sum(d.photos for d in docs) + sum(m.photos for m in marks)
    flags = [m.date for m in marks if m.status == "kurang" and m.date]
    standing = [
        d
        for d in docs
        if counts(d, mode)
        and d.level is not None
        and d.documented
        and not any(d.submitted[:10] <= flagged for flagged in flags)
    ]
    claimed = next((d.level for d in reversed(docs) if d.level is not None), None)
    row.flagged = bool(flags) and not any(d.submitted[:10] > max(flags) for d in standing)
    if standing:
        best = max(d.level for d in standing if d.level is not None)
        row.level = best
        row.used = [d for d in standing if d.level == best]
        row.score = indicator.bobot * indicator.level(best).nilai
        row.status = AVAILABLE
    elif claimed is not None or any(m.status in ("ada", "lengkap", "kurang") for m in marks):
        row.level = claimed
        row.status = NEEDS_COMPLETION
    elif any(d.documented for d in docs) or row.photos:
        row.status = NEEDS_COMPLETION
    return row


def _level_of(parameter: str) -> int | None:
    tail = parameter.rsplit("_p", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None
