"""Read the three shipped instruments into the records `forms.iid.build_report` takes.

Innovations are the entities of the `inovasi` list. Each record names its innovation by the
entity its submission is linked to (created, updated, chosen, or matched and resolved from a
typed name: storage.entity_links), a visit row by the entity it chose or the linked entity of
its name; a record linked to none keeps its typed name, which the report matches by name or
lists as unregistered. Every current submission is read with its review state: the report
decides what counts (forms.iid).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from forms.entities import normalize_name
from forms.iid import EvidenceDoc, Profile, VisitMark
from forms.instance import value_at
from forms.instruments import SIPERA, Instruments

from .db import Database
from .entity_links import Registered, linked_entities, registered
from .errors import NotFound
from .forms import locate_form
from .models import Submission
from .odata import BATCH, BatchReader, SubmissionRow

# The visit row's question holding the innovation it chose from the list (instruments 2026+).
VISIT_ENTITY = "inv_entity"


def read_inputs(
    db: Database,
    project_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    instruments: Instruments = SIPERA,
) -> tuple[list[Profile], list[VisitMark], list[EvidenceDoc]]:
    """The innovations (the list's, then profiles no entity matches), visit marks and evidence
    documents of the project's current submissions of the three instruments; visits and
    evidence received in [`since`, `until`) when given (innovations whenever registered)."""
    profile, visit, evidence = instruments.profile, instruments.visit, instruments.evidence
    registry = registered(db, project_id)
    labels = {r.uuid: r for r in registry}
    profiles = [_registered_profile(r) for r in registry]
    rows = {
        profile.form_id: _current(db, project_id, profile.form_id),
        visit.form_id: _current(db, project_id, visit.form_id, since, until),
        evidence.form_id: _current(db, project_id, evidence.form_id, since, until),
    }
    links = linked_entities(db, [row.id for form_rows in rows.values() for row in form_rows])

    def one_entity(row: SubmissionRow) -> str | None:
        linked = [u for u in links.get(row.id, []) if u in labels]
        return linked[0] if len(set(linked)) == 1 else None

    for row in rows[profile.form_id]:
        values = row.values
        opd, name = value_at(values, profile.opd), value_at(values, profile.name)
        entity = one_entity(row)
        if opd and name and entity is None:
            profiles.append(
                Profile(
                    opd,
                    name,
                    value_at(values, profile.stage),
                    value_at(values, profile.kind),
                    value_at(values, profile.shape),
                )
            )
    marks: list[VisitMark] = []
    for row in rows[visit.form_id]:
        values, files = row.values, {ref.name for ref in row.attachments}
        opd = value_at(values, visit.opd) or ""
        day = value_at(values, visit.date) or row.created_at.date().isoformat()
        linked = [labels[u] for u in links.get(row.id, []) if u in labels]
        for innovation in _rows(value_at(values, visit.innovations)):
            name = innovation.get(visit.innovation_name) or ""
            entity = _visit_entity(innovation.get(VISIT_ENTITY), name, linked, labels)
            if not (opd and (name or entity)):
                continue
            for code, status, photos in _visit_marks(innovation, visit, files):
                marks.append(VisitMark(opd, name, code, status, photos, day, entity))
    docs: list[EvidenceDoc] = []
    for row in rows[evidence.form_id]:
        values, files = row.values, {ref.name: ref for ref in row.attachments}
        opd, name = value_at(values, evidence.opd), value_at(values, evidence.innovation)
        indicator = value_at(values, evidence.indicator)
        entity = one_entity(row)
        if not (opd and (name or entity) and indicator):
            continue
        berkas = value_at(values, evidence.file) or None
        blob = files.get(berkas) if berkas else None
        photo_names = [
            photo_row.get(evidence.photo)
            for photo_row in _rows(value_at(values, evidence.photos))
            if photo_row.get(evidence.photo) in files
        ]
        photos = len(photo_names)
        docs.append(
            EvidenceDoc(
                opd,
                labels[entity].label if entity else name or "",
                indicator,
                value_at(values, evidence.parameter),
                nomor=value_at(values, evidence.number) or "",
                tanggal=value_at(values, evidence.date) or "",
                tentang=value_at(values, evidence.subject) or "",
                file_name=berkas if blob else None,
                file_bytes=blob.size if blob else None,
                file_type=blob.content_type if blob else None,
                link=value_at(values, evidence.link) or "",
                photos=photos,
                submitted=row.created_at.isoformat(),
                entity=entity,
                review_state=row.meta.review_state,
                instance_id=row.instance_id,
                files=tuple(
                    files[name] for name in [berkas, *photo_names] if name and name in files
                ),
            )
        )
    return profiles, marks, docs


def _registered_profile(innovation: Registered) -> Profile:
    data = innovation.data
    return Profile(
        str(data.get("opd") or ""),
        innovation.label,
        data.get("tahapan") or None,
        data.get("jenis") or None,
        data.get("bentuk") or None,
        entity=innovation.uuid,
        registered=True,
        data=dict(data),
    )


def _visit_entity(
    chosen: Any, name: str, linked: list[Registered], labels: dict[str, Registered]
) -> str | None:
    """A visit row's innovation: the one it chose, else the submission's linked innovation
    bearing its name."""
    if isinstance(chosen, str) and chosen in labels:
        return chosen
    wanted = normalize_name(name)
    named = {r.uuid for r in linked if normalize_name(r.label) == wanted}
    return named.pop() if len(named) == 1 else None


def _visit_marks(
    innovation: dict[str, Any], visit: Any, files: set[str]
) -> Iterator[tuple[str, str, int]]:
    """(indicator, status, photos) of what a visit row recorded."""
    for code in (innovation.get(visit.docs_present) or "").split():
        yield code, "ada", 0
    for code in (innovation.get(visit.docs_lacking) or "").split():
        yield code, "kurang", 0
    for proof in _rows(innovation.get(visit.proofs)):
        if proof.get(visit.proof_indicator):
            photo = proof.get(visit.proof_photo)
            status = proof.get(visit.proof_status) or "ada"
            yield proof[visit.proof_indicator], status, 1 if photo and photo in files else 0


def _rows(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [row for row in value if isinstance(row, dict)]
    return [value] if isinstance(value, dict) else []


def _current(
    db: Database,
    project_id: int,
    xml_form_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[SubmissionRow]:
    """The form's current (not deleted) submissions received in [since, until), oldest first,
    with their stored files, read by `BatchReader`; none when the project has no such form."""
    with db.read() as tx:
        try:
            form_id = locate_form(tx, project_id, xml_form_id).id
        except NotFound:
            return []
    where = [col(Submission.deleted_at).is_(None)]
    if since is not None:
        where.append(col(Submission.created_at) >= since)
    if until is not None:
        where.append(col(Submission.created_at) < until)
    reader = BatchReader(db, form_id, sa.and_(*where), batch=BATCH, files=True)
    return sorted(reader.each(), key=lambda row: (row.created_at, row.id))
