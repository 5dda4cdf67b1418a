"""The portal package: per innovation and indicator, exactly the documents and photos the
simulated score stands on, laid out for uploading to the IID portal one indicator at a time.

    {OPD}/{innovation}/{NN}_{indicator name}/{parameter}_{n}.{ext}
    daftar.csv     every file: OPD, innovation, indicator, level, file, size, whether the
                   portal takes it (a PDF over the edition's limit is flagged, not dropped)

Names are made safe and unique as in the media ZIP (forms.exports.naming). Only registered
innovations with a score are packed; a blob the store has lost is listed in
`missing-files.txt` (forms.exports.zips.Missing).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stream_zip import ZIP_AUTO, stream_zip

from .catalogue import load_method
from .exports.naming import UsedNames, extension, safe_part
from .exports.records import CHUNK, MediaRef, OpenBlob
from .exports.zips import FILE_MODE, Missing
from .iid import EvidenceDoc, IndicatorRow, InnovationReport, Report

LIST_NAME = "daftar.csv"
LIST_COLUMNS = [
    "opd",
    "inovasi",
    "indikator",
    "level",
    "file",
    "ukuran (byte)",
    "diterima portal",
    "id kiriman",
]


@dataclass(frozen=True)
class PortalFile:
    """One file of the portal package: where it goes, and what it is."""

    path: str  # inside the zip: {OPD}/{innovation}/{NN_indicator}/{parameter}_{n}.{ext}
    innovation: InnovationReport
    row: IndicatorRow
    doc: EvidenceDoc
    ref: MediaRef
    too_big: bool  # a PDF over the portal's limit


def portal_files(report: Report) -> list[PortalFile]:
    """The files the score stands on, named as the package holds them (the workbook's
    data_dukung sheet names them the same way): registered innovations that score, each
    indicator's documents of the level scored, their document and photos."""
    limit = (report.method or load_method(report.edition)).portal_limits.pdf_max_bytes
    used = UsedNames()
    found = []
    for innovation in report.innovations:
        if not innovation.registered or not innovation.score:
            continue
        opd = safe_part(innovation.opd_name or innovation.opd, 60) or "opd"
        name = safe_part(innovation.name, 60) or "inovasi"
        for row in innovation.indicators:
            folder = f"{row.indicator.number:02d}_{safe_part(row.indicator.name, 50)}"
            n = 0
            for doc in row.used:
                for ref in doc.files:
                    n += 1
                    stem = f"{opd}/{name}/{folder}/{safe_part(doc.parameter or '', 20)}_{n}"
                    path = used.unique(stem, extension(ref.name, ref.content_type))
                    too_big = (ref.content_type or "").endswith("pdf") and ref.size > limit
                    found.append(PortalFile(path, innovation, row, doc, ref, too_big))
    return found


def write_portal_zip(report: Report, *, open_blob: OpenBlob) -> Iterator[bytes]:
    missing = Missing(open_blob)
    listed: list[list[Any]] = []

    def members() -> Iterator[tuple[Any, ...]]:
        for item in portal_files(report):
            chunks = missing.open(item.ref, item.path)
            if chunks is None:
                continue
            listed.append(
                [
                    item.innovation.opd_name or item.innovation.opd,
                    item.innovation.name,
                    item.row.indicator.code,
                    item.row.level or "",
                    item.path,
                    item.ref.size,
                    "tidak: PDF melebihi batas ukuran" if item.too_big else "ya",
                    item.doc.instance_id,
                ]
            )
            yield (item.path, _now(), FILE_MODE, ZIP_AUTO(item.ref.size, level=0), chunks)
        data = _csv(listed)
        yield (LIST_NAME, _now(), FILE_MODE, ZIP_AUTO(len(data)), iter([data]))
        yield from missing.members(_now())

    yield from stream_zip(members(), chunk_size=CHUNK)


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(LIST_COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _now() -> datetime:
    return datetime.now(UTC)
