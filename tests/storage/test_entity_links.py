"""Linking typed innovation names of older submissions to the `inovasi` entities, and the reads
behind the Inovasi pages, on a small project whose expected links are written out by hand."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import col, select

from forms.instruments import SIPERA
from server.bootstrap import library_forms
from storage import datasets, entities, entity_links, submissions
from storage import forms as form_store
from storage.entity_links import link_typed_names, normalize_name
from storage.errors import Conflict, NotFound
from storage.models import Audit, EntityLink
from storage.submissions import Sender
from tests.collect import instance_xml, new_instance_id
from tests.factories import make_project

PROFILE, VISIT, EVIDENCE = (
    SIPERA.profile.form_id,
    SIPERA.visit.form_id,
    SIPERA.evidence.form_id,
)
VISIT_DAY = "2026-11-20"


def nest(path: tuple[str, ...], text: str) -> str:
    """`<a><b>text</b></a>` for the path ("a", "b")."""
    return "".join(f"<{p}>" for p in path) + text + "".join(f"</{p}>" for p in reversed(path))


def profile_body(opd: str, name: str) -> str:
    return nest(SIPERA.profile.opd, opd) + nest(SIPERA.profile.name, name)


def evidence_body(opd: str, name: str) -> str:
    return nest(SIPERA.evidence.opd, opd) + nest(SIPERA.evidence.innovation, name)


def visit_body(opd: str, *names: str, day: str = VISIT_DAY) -> str:
    """The visit's date and OPD (in the same group when the form keeps them in one) and an
    innovation row per name."""
    head = {SIPERA.visit.opd: opd, SIPERA.visit.date: day}
    groups: dict[tuple[str, ...], str] = {}
    for path, text in head.items():
        groups[path[:-1]] = groups.get(path[:-1], "") + nest(path[-1:], text)
    body = "".join(nest(group, inner) if group else inner for group, inner in groups.items())
    row = SIPERA.visit.innovation_name
    return body + "".join(
        nest(SIPERA.visit.innovations, f"<{row}>{name}</{row}>") for name in names
    )


@dataclass
class World:
    project_id: int
    versions: dict[str, str]
    uuids: dict[str, str]  # innovation key -> uuid
    subs: dict[str, int]  # submission key -> id


def publish_library(services, project_id: int) -> dict[str, str]:
    """The three shipped forms, and the `inovasi` list with the properties used here (made by
    hand when the profile form does not declare it)."""
    versions = {}
    for path in library_forms():
        published = form_store.publish_xlsform(
            services.db, services.blobs, project_id, path.read_bytes(), path.name
        )
        versions[published.form.xml_form_id] = published.version.version
    try:
        found = datasets.get_list(services.db, project_id, "inovasi")
        names = {p.name for p in found.properties}
    except NotFound:
        datasets.create_list(services.db, project_id, "inovasi")
        names = set()
    for prop in ("opd", "tahapan"):
        if prop not in names:
            datasets.add_property(services.db, project_id, "inovasi", prop)
    return versions


def add_innovation(services, project_id: int, label: str, opd: str, stage: str = "uji_coba"):
    return entities.create(
        services.db,
        project_id,
        "inovasi",
        {"label": label, "data": {"opd": opd, "tahapan": stage}},
    ).entity.uuid


def send(services, project_id: int, versions: dict[str, str], form_id: str, body: str) -> int:
    return submissions.ingest(
        services.db,
        services.blobs,
        project_id,
        instance_xml(form_id, versions[form_id], new_instance_id(), body),
        sender=Sender(actor_id=None),
    ).submission.id


def build_world(services) -> World:
    project_id = make_project(services).id
    versions = publish_library(services, project_id)
    uuids = {
        "sigap": add_innovation(services, project_id, "SIGAP-Bumil", "dinkes", "penerapan"),
        "posyandu": add_innovation(services, project_id, "Posyandu Digital", "dinkes"),
        "rumah1": add_innovation(services, project_id, "Rumah Sehat", "dinkes"),
        "rumah2": add_innovation(services, project_id, "rumah-sehat", "dinkes"),
        "ceria": add_innovation(services, project_id, "Sekolah Ceria", "disdik", "inisiatif"),
        "lama": add_innovation(services, project_id, "Inovasi Lama", "dinkes"),
    }
    entities.delete(services.db, project_id, "inovasi", uuids["lama"])

    def s(form_id: str, body: str) -> int:
        return send(services, project_id, versions, form_id, body)

    subs = {
        "profile_sigap": s(PROFILE, profile_body("dinkes", "sigap bumil")),
        "evidence_sigap": s(EVIDENCE, evidence_body("dinkes", " Sigap  Bumil ")),
        "evidence_sigap2": s(EVIDENCE, evidence_body("dinkes", "SIGAP_BUMIL.")),
        "visit": s(VISIT, visit_body("dinkes", "Posyandu Digital", "Rumah Sehat", "SIGAP-bumil")),
        "profile_other_opd": s(PROFILE, profile_body("disdik", "Posyandu Digital")),
        "evidence_ceria": s(EVIDENCE, evidence_body("disdik", "Sekolah  ceria")),
        "profile_deleted": s(PROFILE, profile_body("dinkes", "Inovasi Lama")),
    }
    return World(project_id, versions, uuids, subs)


@pytest.fixture
def world(services) -> World:
    return build_world(services)


def links(services, world: World) -> set[tuple[int, str, str]]:
    """(submission id, innovation key, how) of every link of the world's submissions."""
    by_id = {}
    with services.db.read() as tx:
        from storage.models import Entity

        for entity_id, uuid in tx.exec(select(Entity.id, Entity.uuid)).all():
            by_id[entity_id] = uuid
        rows = tx.exec(
            select(EntityLink.submission_id, EntityLink.entity_id, EntityLink.how).where(
                col(EntityLink.submission_id).in_(list(world.subs.values()))
            )
        ).all()
    keys = {uuid: key for key, uuid in world.uuids.items()}
    return {(s, keys[by_id[e]], how) for s, e, how in rows}


def test_names_are_compared_normalised():
    assert normalize_name("SIGAP-Bumil") == normalize_name("sigap bumil") == "sigap bumil"
    assert normalize_name(" Sigap  Bumil ") == normalize_name("SIGAP_BUMIL.") == "sigap bumil"
    assert normalize_name("Ｓｉｇａｐ\u00a0Bumil") == "sigap bumil"  # NFKC: full-width, nbsp
    assert normalize_name("Posyandu Digital") != normalize_name("Posyandu Digitalku")


def test_dry_run_reports_and_links_nothing(services, world):
    report = link_typed_names(services.db, world.project_id, dry_run=True)
    assert (report.scanned, report.names, report.matched, report.settled) == (7, 9, 6, 0)
    assert links(services, world) == set()


def test_typed_names_link_to_the_one_innovation_of_their_opd(services, world):
    report = link_typed_names(services.db, world.project_id)
    subs = world.subs
    # By hand: the three spellings of SIGAP-Bumil and two names of the visit match; the
    # other OPD's Posyandu Digital, the twice-named Rumah Sehat and the deleted one do not.
    assert links(services, world) == {
        (subs["profile_sigap"], "sigap", "matched"),
        (subs["evidence_sigap"], "sigap", "matched"),
        (subs["evidence_sigap2"], "sigap", "matched"),
        (subs["visit"], "posyandu", "matched"),
        (subs["visit"], "sigap", "matched"),
        (subs["evidence_ceria"], "ceria", "matched"),
    }
    assert (report.scanned, report.names, report.matched, report.settled) == (7, 9, 6, 0)
    rows = {(u.submission_id, u.opd, u.name): u for u in report.unmatched}
    assert set(rows) == {
        (subs["visit"], "dinkes", "Rumah Sehat"),
        (subs["profile_other_opd"], "disdik", "Posyandu Digital"),
        (subs["profile_deleted"], "dinkes", "Inovasi Lama"),
    }
    twice = rows[(subs["visit"], "dinkes", "Rumah Sehat")]
    assert {c.uuid for c in twice.candidates} == {world.uuids["rumah1"], world.uuids["rumah2"]}
    assert twice.xml_form_id == VISIT
    assert rows[(subs["profile_other_opd"], "disdik", "Posyandu Digital")].candidates == ()


def test_a_second_run_links_nothing_twice(services, world):
    link_typed_names(services.db, world.project_id)
    before = links(services, world)
    again = link_typed_names(services.db, world.project_id)
    assert links(services, world) == before
    # Read again: the visit (its two linked names settled) and the two unmatched profiles.
    assert (again.scanned, again.names, again.matched, again.settled) == (3, 5, 0, 2)
    assert len(again.unmatched) == 3
    assert entity_links.unmatched(services.db, world.project_id) == again.unmatched


def test_submissions_linked_at_ingest_are_not_read(services, world):
    with services.db.transaction() as tx:
        from storage.models import Entity

        posyandu = tx.exec(select(Entity.id).where(Entity.uuid == world.uuids["posyandu"])).one()
        entities.link(tx, world.subs["profile_other_opd"], posyandu, "chosen")
    report = link_typed_names(services.db, world.project_id, dry_run=True)
    assert report.scanned == 6
    assert world.subs["profile_other_opd"] not in {u.submission_id for u in report.unmatched}


def test_resolve_links_a_name_and_settles_it(services, world):
    link_typed_names(services.db, world.project_id)
    visit = world.subs["visit"]
    made = entity_links.resolve(
        services.db, world.project_id, visit, world.uuids["rumah2"], None, name="Rumah Sehat"
    )
    assert made is True
    assert (visit, "rumah2", "resolved") in links(services, world)
    left = entity_links.unmatched(services.db, world.project_id)
    assert {u.name for u in left} == {"Posyandu Digital", "Inovasi Lama"}
    with services.db.read() as tx:
        entry = tx.exec(
            select(Audit).where(Audit.action == "entity.link", Audit.subject_id == visit)
        ).one()
    assert entry.details["entity"]["uuid"] == world.uuids["rumah2"]
    assert entry.details["name"] == "Rumah Sehat"


def test_resolve_refuses_a_deleted_or_foreign_innovation(services, world):
    other = build_world(services)
    with pytest.raises(NotFound):
        entity_links.resolve(
            services.db, world.project_id, world.subs["visit"], other.uuids["sigap"], None
        )
    with pytest.raises(NotFound):  # a submission of another project
        entity_links.resolve(
            services.db, world.project_id, other.subs["visit"], world.uuids["sigap"], None
        )
    with pytest.raises(Conflict):
        entity_links.resolve(
            services.db, world.project_id, world.subs["profile_deleted"], world.uuids["lama"], None
        )
    assert links(services, world) == set()


def test_innovations_by_opd_with_their_counts(services, world):
    link_typed_names(services.db, world.project_id)
    groups = entity_links.innovations(services.db, world.project_id)
    seen = {
        g.opd: {i.label: (i.stage, i.last_visit, i.evidence, i.submissions) for i in g.innovations}
        for g in groups
    }
    # By hand: SIGAP-Bumil has a profile, two evidence documents and the visit; Posyandu
    # Digital the visit; Sekolah Ceria one evidence document; the deleted one is not listed.
    assert seen == {
        "dinkes": {
            "SIGAP-Bumil": ("penerapan", VISIT_DAY, 2, 4),
            "Posyandu Digital": ("uji_coba", VISIT_DAY, 0, 1),
            "Rumah Sehat": ("uji_coba", None, 0, 0),
            "rumah-sehat": ("uji_coba", None, 0, 0),
        },
        "disdik": {"Sekolah Ceria": ("inisiatif", None, 1, 1)},
    }


def test_one_innovation_with_versions_and_submissions(services, world):
    link_typed_names(services.db, world.project_id)
    entities.update(
        services.db,
        world.project_id,
        "inovasi",
        world.uuids["sigap"],
        {"data": {"tahapan": "uji_coba"}},
        base_version="1",
        force=False,
    )
    view = entity_links.innovation(services.db, world.project_id, world.uuids["sigap"])
    assert view.current.version == 2
    assert [v.number for v in view.versions] == [1, 2]
    first, second = view.versions
    assert first.source.kind == "rest" and second.source.kind == "rest"
    assert [(c.name, c.before, c.after) for c in second.changes] == [
        ("tahapan", "penerapan", "uji_coba")
    ]
    assert ("label", "", "SIGAP-Bumil") in [(c.name, c.before, c.after) for c in first.changes]
    linked = {(s.submission_id, s.xml_form_id, s.how) for s in view.submissions}
    assert linked == {
        (world.subs["profile_sigap"], PROFILE, "matched"),
        (world.subs["evidence_sigap"], EVIDENCE, "matched"),
        (world.subs["evidence_sigap2"], EVIDENCE, "matched"),
        (world.subs["visit"], VISIT, "matched"),
    }
    visit = next(s for s in view.submissions if s.xml_form_id == VISIT)
    assert visit.visit_date == VISIT_DAY
    with pytest.raises(NotFound):
        entity_links.innovation(services.db, world.project_id, world.uuids["lama"])
