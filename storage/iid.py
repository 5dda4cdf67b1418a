"""Read the three shipped instruments into the records `forms.iid.build_report` takes."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from forms.iid import EvidenceDoc, Profile, VisitMark

from .db import Database
from .models import Blob, Form, Submission, SubmissionAttachment, SubmissionVersion

VISIT, PROFILE, EVIDENCE = (
    "jebol_sipera_kunjungan",
    "jebol_sipera_profil_inovasi",
    "jebol_sipera_data_dukung",
)


def read_inputs(
    db: Database, project_id: int, *, approved_only: bool = False
) -> tuple[list[Profile], list[VisitMark], list[EvidenceDoc]]:
    profiles: list[Profile] = []
    marks: list[VisitMark] = []
    docs: list[EvidenceDoc] = []
    for values, _files, _created in _current(db, project_id, PROFILE, approved_only):
        if values.get("opd") and values.get("nama_inovasi"):
            profiles.append(
                Profile(
                    values["opd"],
                    values["nama_inovasi"],
                    values.get("tahapan"),
                    values.get("jenis"),
                    values.get("bentuk"),
                )
            )
    for values, files, created in _current(db, project_id, VISIT, approved_only):
        visit = values.get("g_kunjungan") or {}
        opd, day = visit.get("opd") or "", visit.get("tgl_kunjungan") or created[:10]
        for innovation in _rows(values.get("inovasi")):
            name = innovation.get("inv_nama") or ""
            if not (opd and name):
                continue
            for code in (innovation.get("inv_dd_ada") or "").split():
                marks.append(VisitMark(opd, name, code, "ada", date=day))
            for code in (innovation.get("inv_dd_kurang") or "").split():
                marks.append(VisitMark(opd, name, code, "kurang", date=day))
            for proof in _rows(innovation.get("bukti")):
                if proof.get("bukti_indikator"):
                    photo = proof.get("bukti_foto")
                    marks.append(
                        VisitMark(
                            opd,
                            name,
                            proof["bukti_indikator"],
                            proof.get("bukti_status") or "ada",
                            photos=1 if photo and photo in files else 0,
                            date=day,
                        )
                    )
    for values, files, created in _current(db, project_id, EVIDENCE, approved_only):
        if not (values.get("opd") and values.get("nama_inovasi") and values.get("indikator")):
            continue
        berkas = values.get("berkas") or None
        blob = files.get(berkas) if berkas else None
        photos = sum(
            1 for row in _rows(values.get("foto_bukti")) if row.get("foto_bukti_file") in files
        )
        docs.append(
            EvidenceDoc(
                values["opd"],
                values["nama_inovasi"],
                values["indikator"],
                values.get("parameter"),
                nomor=values.get("nomor_dokumen") or "",
                tanggal=values.get("tanggal_dokumen") or "",
                tentang=values.get("tentang") or "",
                file_name=berkas if blob else None,
                file_bytes=blob[0] if blob else None,
                file_type=blob[1] if blob else None,
                link=values.get("tautan") or "",
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
