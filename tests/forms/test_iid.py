"""Which evidence the simulated IID score counts, on records whose score is worked out by hand
in the comments (2023 catalogue: ind16 bobot 3, ind17 bobot 2, ind18 bobot 2, ind33 bobot 3,
ind35 bobot 4; the value of parameter level L is L)."""

from __future__ import annotations

import pytest

from forms.catalogue import parse_method
from forms.iid import EvidenceDoc, InvalidInputs, Profile, VisitMark, build_report, check_inputs

SIGAP, POSYANDU, SEKOLAH = (
    "aaaaaaaa-0000-4000-8000-000000000001",
    "aaaaaaaa-0000-4000-8000-000000000002",
    "aaaaaaaa-0000-4000-8000-000000000003",
)
REGISTERED = [
    Profile("dinkes", "SIGAP Bumil", "penerapan", entity=SIGAP, registered=True),
    Profile("dinkes", "Posyandu Digital", "uji_coba", entity=POSYANDU, registered=True),
    Profile("disdik", "Sekolah Ceria", "inisiatif", entity=SEKOLAH, registered=True),
]


def doc(entity, indicator, parameter, state, when, *, file=None, link="", photos=0, name=""):
    return EvidenceDoc(
        "dinkes" if entity != SEKOLAH else "disdik",
        name,
        indicator,
        parameter,
        file_name=file,
        file_bytes=1000 if file else None,
        file_type="application/pdf" if file else None,
        link=link,
        photos=photos,
        submitted=f"{when}T09:00:00+00:00",
        entity=entity,
        review_state=state,
        instance_id=f"uuid:{indicator}-{parameter}-{when}",
    )


DOCS = [
    # SIGAP Bumil, ind16: P1 and P2 approved with their SKs; a later P3 claim, approved, but
    # with no file, link or photo: it cannot stand, and does not borrow the P1/P2 files.
    doc(SIGAP, "ind16", "ind16_p1", "approved", "2026-01-05", file="sk-kadis.pdf"),
    doc(SIGAP, "ind16", "ind16_p2", "approved", "2026-02-05", file="sk-walikota.pdf"),
    doc(SIGAP, "ind16", "ind16_p3", "approved", "2026-03-05"),
    # ind17: P2 rejected (never counts), P1 with a photo not reviewed yet (draft only).
    doc(SIGAP, "ind17", "ind17_p2", "rejected", "2026-03-01", photos=1),
    doc(SIGAP, "ind17", "ind17_p1", None, "2026-03-02", photos=1),
    # ind18: typed "SIGAP-Bumil" with no entity: the same innovation by its normalised name.
    doc(None, "ind18", "ind18_p1", "approved", "2026-03-03", file="dpa.pdf", name="SIGAP-Bumil"),
    # Posyandu Digital, ind35: a P1 video link sent before the 20 November visit that asked to
    # complete it (set aside), and a P2 link sent after it (stands).
    doc(POSYANDU, "ind35", "ind35_p1", "approved", "2026-11-10", link="https://youtu.be/a"),
    doc(POSYANDU, "ind35", "ind35_p2", "approved", "2026-11-25", link="https://youtu.be/b"),
    # Sekolah Ceria, ind33: P3 with a file, but the supervisor found issues: never counts.
    doc(SEKOLAH, "ind33", "ind33_p3", "hasIssues", "2026-04-01", file="penerima.pdf"),
    # A typed name no entity has: listed, warned, not scored, not counted in n.
    EvidenceDoc(
        "disdik",
        "Inovasi Hantu",
        "ind16",
        "ind16_p3",
        file_name="perda.pdf",
        submitted="2026-05-01T09:00:00+00:00",
        review_state="approved",
    ),
]
MARKS = [VisitMark("dinkes", "Posyandu Digital", "ind35", "kurang", date="2026-11-20")]


def _scores(report):
    return {i.name: i.score for i in report.innovations}


def test_approved_evidence_of_its_own_level_scores():
    report = build_report(REGISTERED, MARKS, DOCS, spd=40.0)
    # SIGAP Bumil: ind16 P2 (3 x 2 = 6) + ind17 nothing approved (0) + ind18 P1 (2 x 1 = 2) = 8
    # Posyandu Digital: ind35 P2 sent after the visit (4 x 2 = 8); the P1 before it set aside
    # Sekolah Ceria: ind33 has issues: 0
    # n = 3 registered (the phantom is not counted): SID = (8 + 8 + 0) / MAX(10, 3) = 1.6
    # index = (40 + 1.6) / 250 x 100 = 16.64 -> Kurang Inovatif
    assert _scores(report) == {
        "SIGAP Bumil": 8,
        "Posyandu Digital": 8,
        "Sekolah Ceria": 0,
        "Inovasi Hantu": 0,
    }
    assert report.divisor == 10 and report.sid == 1.6
    assert report.index == 16.64 and report.band == "Kurang Inovatif"
    rows = {(i.name, r.indicator.code): r for i in report.innovations for r in i.indicators}
    ind16 = rows[("SIGAP Bumil", "ind16")]
    assert (ind16.level, [d.file_name for d in ind16.used]) == (2, ["sk-walikota.pdf"])
    assert rows[("SIGAP Bumil", "ind17")].status == "needs completion"
    assert rows[("Posyandu Digital", "ind35")].level == 2
    phantom = next(i for i in report.innovations if i.name == "Inovasi Hantu")
    assert not phantom.registered
    assert any("Inovasi Hantu" in w and "tidak cocok" in w for w in report.warnings)


def test_draft_mode_adds_unreviewed_never_rejected_or_with_issues():
    report = build_report(REGISTERED, MARKS, DOCS, spd=40.0, mode="draft")
    # SIGAP Bumil gains ind17 P1 (2 x 1 = 2): 6 + 2 + 2 = 10; the rejected P2 stays out.
    # Sekolah Ceria's has-issues P3 stays out: 0. SID = (10 + 8) / 10 = 1.8
    assert _scores(report)["SIGAP Bumil"] == 10
    assert _scores(report)["Sekolah Ceria"] == 0
    assert report.sid == 1.8 and report.mode == "draft"


def test_a_registry_of_more_innovations_raises_the_divisor():
    many = REGISTERED + [
        Profile("bpbd", f"Inovasi {i}", entity=f"bbbbbbbb-0000-4000-8000-{i:012d}", registered=True)
        for i in range(12)
    ]
    report = build_report(many, MARKS, DOCS)
    # 15 registered innovations: SID = 16 / MAX(10, 15) = 1.0666…
    assert report.divisor == 15 and report.sid == round(16 / 15, 4)


@pytest.mark.parametrize("spd", [-20, 63.5, 200, float("nan")])
def test_spd_out_of_range_is_refused(spd):
    with pytest.raises(InvalidInputs, match="SPD"):
        check_inputs(spd, "approved")
    with pytest.raises(InvalidInputs):
        build_report(REGISTERED, MARKS, DOCS, spd=spd)


def test_spd_bounds_and_mode_are_checked():
    check_inputs(0, "approved")
    check_inputs(63, "draft")
    with pytest.raises(InvalidInputs, match="Mode"):
        check_inputs(10, "everything")


def test_the_count_term_is_an_input_added_to_sid():
    # 2023 gives no rule for the skor jumlah inovasi: entered, 0 to 76 (250 - 63 - 111).
    report = build_report(REGISTERED, MARKS, DOCS, spd=40.0, count=30.4)
    # SID = 16 / MAX(10, 3) + 30.4 = 1.6 + 30.4 = 32.0
    # index = (40 + 32.0) / 250 x 100 = 28.8 -> Kurang Inovatif
    assert (report.sid, report.index, report.band) == (32.0, 28.8, "Kurang Inovatif")
    assert (report.count, report.count_source) == (30.4, "given")
    # Not entered: 0, and the report says where it came from.
    report = build_report(REGISTERED, MARKS, DOCS, spd=40.0)
    assert (report.count, report.count_source, report.sid) == (0, "not given", 1.6)


@pytest.mark.parametrize("count", [-1, 76.01, float("nan"), float("inf")])
def test_a_count_term_out_of_range_is_refused(count):
    with pytest.raises(InvalidInputs, match="jumlah inovasi"):
        check_inputs(10, "approved", count)


# A newer edition as its method file would give it (the reported 2026 rules): divisor
# MAX(12, n), bands Sangat Inovatif > 65, Inovatif 40.01-65, Kurang Inovatif 0.01-40, and
# the count term MIN(n, 200) x 0.38 when the innovations cover 5 of the 6 urusan wajib
# pelayanan dasar (u01-u06 in the instruments).
NEWER = """{
  "edition": 2026, "sid_divisor_min": 12, "max_total": 250, "spd_max": 63, "sid_max": 111,
  "count_term": {"max": 76, "rule": {"per_innovation": 0.38, "max_innovations": 200,
    "urusan_property": "urusan_utama", "urusan_wajib": ["u01", "u02", "u03", "u04", "u05", "u06"],
    "urusan_min": 5}},
  "bands": [
    {"label": "Sangat Inovatif", "min": 65.01, "max": 100},
    {"label": "Inovatif", "min": 40.01, "max": 65},
    {"label": "Kurang Inovatif", "min": 0.01, "max": 40},
    {"label": "Tidak Dapat Dinilai", "min": 0, "max": 0}
  ],
  "portal_limits": {"pdf_max_bytes": 2097152, "video_max_minutes": 5}
}"""


def _with_urusan(*codes):
    return [
        Profile(p.opd, p.name, entity=p.entity, registered=True, data={"urusan_utama": code})
        for p, code in zip(REGISTERED, codes, strict=True)
    ]


def test_a_newer_editions_divisor_bands_and_count_rule_come_from_its_file():
    method = parse_method(NEWER)
    # Three innovations cover u01, u02, u03: 3 of the 6 urusan wajib, fewer than 5 -> count 0.
    report = build_report(_with_urusan("u01", "u02", "u03"), MARKS, DOCS, method=method, spd=63)
    # SID = 16 / MAX(12, 3) + 0 = 1.3333; index = (63 + 1.3333) / 250 x 100 = 25.7333
    assert report.divisor == 12 and report.count == 0 and report.count_source == "rule"
    assert report.sid == round(16 / 12, 4) and report.index == round((63 + 16 / 12) / 2.5, 4)
    assert report.band == "Kurang Inovatif" and report.edition == 2026
    # Five urusan wajib over 15 innovations (12 more, with u04/u05 among them):
    more = _with_urusan("u01", "u02", "u03") + [
        Profile(
            "bpbd",
            f"Inovasi {i}",
            entity=f"bbbbbbbb-0000-4000-8000-{i:012d}",
            registered=True,
            data={"urusan_utama": "u04" if i % 2 else "u05"},
        )
        for i in range(12)
    ]
    report = build_report(more, MARKS, DOCS, method=method, spd=63)
    # count = MIN(15, 200) x 0.38 = 5.7; SID = 16 / MAX(12, 15) + 5.7 = 1.0667 + 5.7 = 6.7667
    # index = (63 + 6.7667) / 250 x 100 = 27.9067 -> Kurang Inovatif (<= 40 in this edition)
    assert report.count == 5.7 and report.divisor == 15
    assert report.sid == round(16 / 15 + 5.7, 4)
    assert report.index == round((63 + 16 / 15 + 5.7) / 2.5, 4)
    # The same index 38.0 is Inovatif in 2023 (35-60) and Kurang Inovatif here (<= 40).
    assert method.band(38.0) == "Kurang Inovatif"
    assert build_report([], [], [], spd=63, count=32).band == "Inovatif"  # (63 + 32) / 2.5 = 38
    # An entered count wins over the rule.
    assert build_report(more, MARKS, DOCS, method=method, spd=63, count=10).count == 10
