"""Read the three shipped instruments into the records `forms.iid.build_report` takes."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from forms.iid import EvidenceDoc, Profile, VisitMark
from forms.instance import value_at
from forms.instruments import SIPERA, Instruments

from .db import Database
from .models import Blob, Form, Submission, SubmissionAttachment, SubmissionVersion


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
                file_bytes=blob[0] if blob else None,
                file_type=blob[1] if blob else None,
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
) -> list[tuple[dict[str, Any], dict[str, tuple[int, str]], str]]:
    """(values, {attachment name: (size, content type)}, created ISO) of current versions."""
    with db.read() as tx:
        query = (
            select(SubmissionVersion.id, SubmissionVersion.values, Submission.created_at)
            .join(Submission, Submission.id == SubmissionVersion.submission_id)
            .join(Form, Form.id == Submission.form_id)
            .where(
                Form.project_id == project_id,
                Form.xml_form_id == xml_form_id,
                Form.deleted_at.is_(None),
                Submission.deleted_at.is_(None),
                SubmissionVersion.is_current,
            )
            .order_by(Submission.created_at, Submission.id)
        )
        if approved_only:
            query = query.where(Submission.review_state == "approved")
        rows = tx.exec(query).all()
        files: dict[int, dict[str, tuple[int, str]]] = {}
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), 500):
            for version_id, name, size, kind in tx.exec(
                select(
                    SubmissionAttachment.submission_version_id,
                    SubmissionAttachment.name,
                    Blob.size,
                    Blob.content_type,
                )
                .join(Blob, Blob.sha256 == SubmissionAttachment.blob_sha256)
                .where(SubmissionAttachment.submission_version_id.in_(ids[start : start + 500]))
            ):
                files.setdefault(version_id, {})[name] = (size, kind)
    return [
        (values or {}, files.get(version_id, {}), created.isoformat())
        for version_id, values, created in rows
    ]
