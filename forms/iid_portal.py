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
from datetime import UTC, datetime
from typing import Any

from stream_zip import ZIP_AUTO, stream_zip

from .catalogue import load_method
from .exports.naming import UsedNames, extension, safe_part
from .exports.records import CHUNK, OpenBlob
from .exports.zips import FILE_MODE, Missing
from .iid import Report

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


def write_portal_zip(report: Report, *, open_blob: OpenBlob) -> Iterator[bytes]:
    limit = load_method(report.edition)["portal_limits"]["pdf_max_bytes"]
    used = UsedNames()
    missing = Missing(open_blob)
    listed: list[list[Any]] = []

    def members() -> Iterator[tuple[Any, ...]]:
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
                        chunks = missing.open(ref, stem)
                        if chunks is None:
                            continue
                        shown = used.unique(stem, extension(ref.name, ref.content_type))
                        too_big = (ref.content_type or "").endswith("pdf") and ref.size > limit
                        listed.append(
                            [
                                innovation.opd_name or innovation.opd,
                                innovation.name,
                                row.indicator.code,
                                row.level or "",
                                shown,
                                ref.size,
                                "tidak: PDF melebihi batas ukuran" if too_big else "ya",
                                doc.instance_id,
                            ]
                        )
                        yield (shown, _now(), FILE_MODE, ZIP_AUTO(ref.size, level=0), chunks)
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
