"""Read the three shipped instruments into the records `forms.iid.build_report` takes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from forms.exports import MediaRef
from forms.iid import EvidenceDoc, Profile, VisitMark
from forms.instance import value_at
from forms.instruments import SIPERA, Instruments

from .db import Database
from .errors import NotFound
from .forms import locate_form
from .models import Submission
from .odata import BATCH, BatchReader


def read_inputs(
    db: Database,
    project_id: int,
    *,
    approved_only: bool = False,
    instruments: Instruments = SIPERA,
) -> tuple[list[Profile], list[VisitMark], list[EvidenceDoc]]:
    """The profiles, visit marks and evidence documents of the project's current submissions
    of the three instruments (their form and field names: `instruments`)."""
    profile, visit, evidence = instruments.profile, instruments.visit, instruments.evidence
    profiles: list[Profile] = []
    marks: list[VisitMark] = []
    docs: list[EvidenceDoc] = []
    for values, _files, _created in _current(db, project_id, profile.form_id, approved_only):
        opd, name = value_at(values, profile.opd), value_at(values, profile.name)
        if opd and name:
            profiles.append(
                Profile(
                    opd,
                    name,
                    value_at(values, profile.stage),
                    value_at(values, profile.kind),
                    value_at(values, profile.shape),
                )
            )
    for values, files, created in _current(db, project_id, visit.form_id, approved_only):
        opd, day = value_at(values, visit.opd) or "", value_at(values, visit.date) or created[:10]
        for innovation in _rows(value_at(values, visit.innovations)):
            name = innovation.get(visit.innovation_name) or ""
            if not (opd and name):
                continue
            for code in (innovation.get(visit.docs_present) or "").split():
                marks.append(VisitMark(opd, name, code, "ada", date=day))
            for code in (innovation.get(visit.docs_lacking) or "").split():
                marks.append(VisitMark(opd, name, code, "kurang", date=day))
            for proof in _rows(innovation.get(visit.proofs)):
                if proof.get(visit.proof_indicator):
                    photo = proof.get(visit.proof_photo)
                    marks.append(
                        VisitMark(
                            opd,
                            name,
                            proof[visit.proof_indicator],
                            proof.get(visit.proof_status) or "ada",
                            photos=1 if photo and photo in files else 0,
                            date=day,
                        )
                    )
    for values, files, created in _current(db, project_id, evidence.form_id, approved_only):
        opd, name = value_at(values, evidence.opd), value_at(values, evidence.innovation)
        indicator = value_at(values, evidence.indicator)
        if not (opd and name and indicator):
            continue
        berkas = value_at(values, evidence.file) or None
        blob = files.get(berkas) if berkas else None
        photos = sum(
            1
            for row in _rows(value_at(values, evidence.photos))
            if row.get(evidence.photo) in files
        )
        docs.append(
            EvidenceDoc(
                opd,
                name,
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
                submitted=created,
            )
        )
    return profiles, marks, docs


def _rows(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [row for row in value if isinstance(row, dict)]
    return [value] if isinstance(value, dict) else []


def _current(
    db: Database, project_id: int, xml_form_id: str, approved_only: bool
) -> list[tuple[dict[str, Any], dict[str, MediaRef], str]]:
    """(values, {attachment name: its stored file}, created ISO) of the form's current
    submissions, oldest first (by submission date, then id), read by `BatchReader`; none when
    the project has no such form."""
    with db.read() as tx:
        try:
            form_id = locate_form(tx, project_id, xml_form_id).id
        except NotFound:
            return []
    where = Submission.deleted_at.is_(None)
    if approved_only:
        where = sa.and_(where, Submission.review_state == "approved")
    rows = sorted(
        BatchReader(db, form_id, where, batch=BATCH, files=True).each(),
        key=lambda row: (row.created_at, row.id),
    )
    return [
        (row.values, {ref.name: ref for ref in row.attachments}, row.created_at.isoformat())
        for row in rows
    ]
