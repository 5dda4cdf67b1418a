"""The IID report: an XLSX workbook, or inovasi.csv + data_dukung.csv in a zip.

One code path for HTTP and the CLI (`jebol export … --format iid`): read the three shipped
instruments (storage.iid), build the report (forms.iid, pure), write it here.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import msgspec
from litestar import Response, get
from litestar.response import Stream
from xlsxwriter import Workbook

from forms.iid import (
    COUNT_BY_RULE,
    COUNT_GIVEN,
    COUNT_NOT_GIVEN,
    Profile,
    Report,
    build_report,
    check_inputs,
    standing_by_opd,
)
from forms.iid_portal import portal_files, write_portal_zip
from forms.instruments import SIPERA
from storage import browse
from storage import iid as iid_store
from storage.exports import ExportFilters, blob_opener

from .auth import REVIEW, UI_LINKED
from .deps import DB, Blobs, Config, ProjectId, QueryParameter
from .files import content_disposition
from .guards import requires
from .ui import i18n
from .ui.inovasi import Choices

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INDICATOR_COLUMNS = [
    "inovasi",
    "indikator",
    "nama indikator",
    "status data dukung",
    "level",
    "parameter",
    "bobot",
    "nilai",
    "skor",
    "foto",
    "dokumen",
]
DOC_COLUMNS = [
    "opd",
    "inovasi",
    "indikator",
    "parameter",
    "nomor",
    "tanggal",
    "tentang",
    "file",
    "link",
    "status review",
    "dipakai untuk skor",
    "file di paket portal",
    "id kiriman",
]
REVIEW_ID = {
    None: "belum direview",
    "approved": "diterima",
    "hasIssues": "ada masalah",
    "rejected": "ditolak",
    "edited": "diedit",
}
MODE_ID = {"approved": "hanya bukti yang diterima", "draft": "DRAF: termasuk yang belum direview"}
COUNT_ID = {
    COUNT_GIVEN: "diisi",
    COUNT_BY_RULE: "dihitung dengan rumus edisi",
    COUNT_NOT_GIVEN: "tidak diisi (0)",
}
STATUS_ID = {
    "available": "tersedia",
    "needs completion": "perlu dilengkapi",
    "missing": "belum ada",
}


# Properties the OPD columns already show.
_OPD_PROPERTIES = ("opd", "opd_lain")


def report_for(
    db: Any,
    project_id: int,
    *,
    mode: str = "approved",
    spd: float = 0.0,
    count: float | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Report:
    """`count`: the skor jumlah inovasi (None: the edition's rule, or 0).
    `since`/`until`: whole days (both inclusive) of the visits and evidence read."""
    check_inputs(spd, mode, count)
    days = ExportFilters.of_days(since, until)
    profiles, marks, docs = iid_store.read_inputs(
        db, project_id, since=days.since, until=days.until, instruments=SIPERA
    )
    choices = Choices.of(db, project_id)

    def opd_name(opd: str, profile: Profile | None) -> str:
        """By the profile form's label; an OPD entered as "lainnya" by its typed name."""
        typed = str((profile.data if profile else {}).get("opd_lain") or "").strip()
        return typed if opd == SIPERA.opd_other and typed else choices.opd(opd)

    report = build_report(profiles, marks, docs, spd=spd, count=count, mode=mode, opd_name=opd_name)
    for innovation in report.innovations:
        data = innovation.profile.data if innovation.profile else {}
        innovation.details = {
            choices.name(prop): choices.value(prop, value)
            for prop, value in data.items()
            if prop not in _OPD_PROPERTIES and value not in (None, "")
        }
    return report


def _summary_lines(report: Report) -> list[tuple[str, Any]]:
    return [
        ("Edisi", report.edition),
        ("Bukti yang dihitung", MODE_ID[report.mode]),
        ("Skor SPD (diisi Pemda)", report.spd),
        ("Skor jumlah inovasi", report.count),
        ("Skor jumlah inovasi: sumber", COUNT_ID[report.count_source]),
        ("SID (simulasi)", report.sid),
        ("Indeks (simulasi)", report.index),
        ("Predikat", report.band),
        ("Jumlah inovasi terdaftar", sum(1 for i in report.innovations if i.registered)),
        ("Pembagi SID", report.divisor),
    ]


def xlsx_bytes(report: Report) -> bytes:
    out = io.BytesIO()
    book = Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True})
    summary = book.add_worksheet("Ringkasan")
    lines = _summary_lines(report)
    for row, (label, value) in enumerate(lines):
        summary.write(row, 0, label, bold)
        summary.write(row, 1, value)
    summary.write_row(len(lines) + 1, 0, ["OPD", "inovasi", "jumlah skor"], bold)
    for row, (opd, items) in enumerate(sorted(report.by_opd().items()), len(lines) + 2):
        summary.write_row(row, 0, [opd, len(items), sum(i.score for i in items)])
    used: set[str] = {"Ringkasan", "data_dukung", "peringatan"}
    for opd, items in sorted(report.by_opd().items()):
        sheet = book.add_worksheet(_sheet_name(opd, used))
        sheet.write_row(0, 0, INDICATOR_COLUMNS, bold)
        row = 1
        for innovation in items:
            for line in innovation.indicators:
                level = line.indicator.level(line.level) if line.level else None
                sheet.write_row(
                    row,
                    0,
                    [
                        innovation.name,
                        line.indicator.code,
                        line.indicator.name,
                        STATUS_ID[line.status],
                        line.level or "",
                        level.parameter if level else "",
                        line.indicator.bobot,
                        level.nilai if level else "",
                        line.score,
                        line.photos,
                        line.documents,
                    ],
                )
                row += 1
    docs = book.add_worksheet("data_dukung")
    docs.write_row(0, 0, DOC_COLUMNS, bold)
    for row, values in enumerate(_doc_rows(report), 1):
        docs.write_row(row, 0, values)
    if report.warnings:
        warn = book.add_worksheet("peringatan")
        for row, text in enumerate(report.warnings):
            warn.write(row, 0, text)
    book.close()
    return out.getvalue()


def zip_bytes(report: Report) -> bytes:
    out = io.BytesIO()
    details = sorted({label for i in report.innovations for label in i.details})
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ringkasan.csv", _csv(["butir", "nilai"], _summary_lines(report)))
        archive.writestr(
            "inovasi.csv",
            _csv(
                ["opd", "inovasi", "terdaftar", *details, "skor"],
                [
                    [
                        i.opd_name or i.opd,
                        i.name,
                        "ya" if i.registered else "tidak",
                        *(i.details.get(label, "") for label in details),
                        i.score,
                    ]
                    for i in report.innovations
                ],
            ),
        )
        archive.writestr(
            "indikator.csv",
            _csv(
                ["opd", "inovasi", "indikator", "status data dukung", "level", "skor"],
                [
                    [
                        i.opd_name or i.opd,
                        i.name,
                        line.indicator.code,
                        STATUS_ID[line.status],
                        line.level or "",
                        line.score,
                    ]
                    for i in report.innovations
                    for line in i.indicators
                ],
            ),
        )
        archive.writestr("data_dukung.csv", _csv(DOC_COLUMNS, _doc_rows(report)))
        if report.warnings:
            archive.writestr("peringatan.txt", "\n".join(report.warnings) + "\n")
    return out.getvalue()


def write_iid(
    services: Any,
    project_id: int,
    out_path: Path,
    *,
    mode: str = "approved",
    spd: float = 0.0,
    count: float | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Report:
    """The CLI's entry: `.xlsx` writes the workbook, anything else the CSV zip."""
    report = report_for(
        services.db, project_id, mode=mode, spd=spd, count=count, since=since, until=until
    )
    data = xlsx_bytes(report) if str(out_path).endswith(".xlsx") else zip_bytes(report)
    Path(out_path).write_bytes(data)
    return report


def _doc_rows(report: Report) -> list[list[Any]]:
    """Every evidence document with its review state, whether it scores, its files (the
    document and each photo, as the phone named them) and where the portal package holds
    them."""
    packed: dict[tuple[str, str], list[str]] = {}
    for item in portal_files(report):
        packed.setdefault((item.doc.instance_id, item.doc.indicator), []).append(item.path)
    rows = []
    for innovation in report.innovations:
        for line in innovation.indicators:
            for doc in line.docs:
                rows.append(
                    [
                        innovation.opd_name or innovation.opd,
                        innovation.name,
                        line.indicator.code,
                        doc.parameter or "",
                        doc.nomor,
                        doc.tanggal,
                        doc.tentang,
                        "; ".join(ref.name for ref in doc.files) or doc.file_name or "",
                        doc.link,
                        REVIEW_ID.get(doc.review_state, doc.review_state or ""),
                        "ya" if doc in line.used else "tidak",
                        "; ".join(packed.get((doc.instance_id, doc.indicator), [])),
                        doc.instance_id,
                    ]
                )
    return rows


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _sheet_name(opd: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", opd)[:28] or "opd"
    name, n = base, 2
    while name.lower() in {u.lower() for u in used}:
        name, n = f"{base}_{n}", n + 1
    used.add(name)
    return name


# The SPD score the Pemda enters: 0 to the method's maximum (`spd_max` in
# forms/library/iid_method_2023.json); nan, inf and negatives are a 400, not a 500.
Spd = Annotated[float, QueryParameter(name="spd", ge=0, le=63)]
# The skor jumlah inovasi: 0 to the method's count maximum (76 in 2023, which gives no rule
# for it); left out, the edition's rule computes it, or it is 0.
Count = Annotated[float | None, QueryParameter(name="jumlah", ge=0, le=76)]
# approved: only evidence a supervisor accepted (what can be sent to the portal); draft: also
# evidence not reviewed yet, never rejected or has-issues evidence.
Mode = Annotated[Literal["approved", "draft"], QueryParameter(name="mode")]
# The days (both included, YYYY-MM-DD) of the visits and evidence that count.
Since = Annotated[date | None, QueryParameter(name="since")]
Until = Annotated[date | None, QueryParameter(name="until")]


@get(
    "/projects/{project_id:int}/iid-report.xlsx",
    sync_to_thread=True,
    tags=["Exports"],
    opt=UI_LINKED,
    guards=[requires(REVIEW)],
    summary="IID report workbook (summary, one sheet per OPD, data_dukung)",
)
def iid_xlsx(
    project_id: ProjectId,
    db: DB,
    spd: Spd = 0.0,
    jumlah: Count = None,
    mode: Mode = "approved",
    since: Since = None,
    until: Until = None,
) -> Response[bytes]:
    report = report_for(db, project_id, mode=mode, spd=spd, count=jumlah, since=since, until=until)
    return Response(
        xlsx_bytes(report),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": content_disposition("iid-report.xlsx")},
    )


@get(
    "/projects/{project_id:int}/iid-report.zip",
    sync_to_thread=True,
    tags=["Exports"],
    opt=UI_LINKED,
    guards=[requires(REVIEW)],
    summary="IID report as inovasi.csv + data_dukung.csv",
)
def iid_zip(
    project_id: ProjectId,
    db: DB,
    spd: Spd = 0.0,
    jumlah: Count = None,
    mode: Mode = "approved",
    since: Since = None,
    until: Until = None,
) -> Response[bytes]:
    report = report_for(db, project_id, mode=mode, spd=spd, count=jumlah, since=since, until=until)
    return Response(
        zip_bytes(report),
        media_type="application/zip",
        headers={"Content-Disposition": content_disposition("iid-report.zip")},
    )


@get(
    "/projects/{project_id:int}/iid-portal.zip",
    sync_to_thread=True,
    tags=["Exports"],
    opt=UI_LINKED,
    guards=[requires(REVIEW)],
    summary="The portal package: per innovation and indicator, the files the score stands on",
)
def iid_portal(
    project_id: ProjectId,
    db: DB,
    blobs: Blobs,
    mode: Mode = "approved",
    since: Since = None,
    until: Until = None,
) -> Stream:
    report = report_for(db, project_id, mode=mode, since=since, until=until)
    return Stream(
        write_portal_zip(report, open_blob=blob_opener(blobs)),
        media_type="application/zip",
        headers={
            "Content-Disposition": content_disposition("iid-portal.zip"),
            "Cache-Control": "no-store",
        },
    )


class OpdStatus(msgspec.Struct, rename="camel"):
    """One OPD on the coverage page and in its JSON: the visits (from the visit form), and
    from the IID report (approved evidence only) its score and what to chase."""

    opd: str  # the visit form's choice name ("lainnya" holds every OPD typed in)
    name: str
    visits: int
    last_visit: str | None  # YYYY-MM-DD
    follow_up: str | None  # the latest planned follow-up date
    overdue: bool  # that date has passed with no visit since
    innovations: int  # distinct innovations its visits discussed
    registered: int  # its innovations in the list
    score: float  # the sum of their simulated scores
    flagged: list[str]  # "innovation: indicator": a visit asked to complete, nothing since
    to_complete: list[str]  # claimed or discussed, no approved evidence
    visits_url: str


def coverage_for(db: Any, project_id: int, today: date) -> list[OpdStatus]:
    """Every OPD of the visit form, least recently visited first."""
    visited = browse.opd_coverage(
        db, project_id, i18n.label, today, visit=SIPERA.visit, other=SIPERA.opd_other
    )
    standing = standing_by_opd(report_for(db, project_id))
    base = f"/p/{project_id}/f/{SIPERA.visit.form_id}?opd="
    found = []
    for entry in visited:
        chase = standing.get(entry.opd)
        found.append(
            OpdStatus(
                opd=entry.opd,
                name=entry.label,
                visits=entry.visits,
                last_visit=entry.last_visit,
                follow_up=entry.follow_up,
                overdue=entry.overdue,
                innovations=entry.innovations,
                registered=chase.registered if chase else 0,
                score=chase.score if chase else 0.0,
                flagged=[f"{name}: {code}" for name, code in (chase.flagged if chase else [])],
                to_complete=[
                    f"{name}: {code}" for name, code in (chase.to_complete if chase else [])
                ],
                visits_url=base + quote(entry.opd),
            )
        )
    return found


@get(
    "/projects/{project_id:int}/opd-coverage",
    sync_to_thread=True,
    tags=["Exports"],
    opt=UI_LINKED,
    guards=[requires(REVIEW)],
    summary="Per OPD: visits, follow-up, innovations, simulated score and what to chase",
)
def opd_coverage(project_id: ProjectId, db: DB, settings: Config) -> list[OpdStatus]:
    return coverage_for(db, project_id, settings.clock.today())


HANDLERS = [iid_xlsx, iid_zip, iid_portal, opd_coverage]
