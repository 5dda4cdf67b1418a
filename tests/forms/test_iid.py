"""Which evidence the simulated IID score counts, on records whose score is worked out by hand
in the comments (2023 catalogue: ind16 bobot 3, ind17 bobot 2, ind18 bobot 2, ind33 bobot 3,
ind35 bobot 4; the value of parameter level L is L)."""

from __future__ import annotations

import pytest

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
