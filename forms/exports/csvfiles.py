"""CSV: `write_csv` (the root table alone) and `write_csv_zip` (Central's Briefcase layout).

Both write Central's CSV (`,` between fields, UTF-8 without a BOM) unless `excel` is set:
then `;` between fields and a UTF-8 byte-order mark, which is what Excel with Indonesian
(and most European) regional settings opens into columns, accents intact."""

from __future__ import annotations

import csv
import io
import itertools
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from stream_zip import ZIP_64, ZIP_AUTO, stream_zip

from ..tabular import Layout
from .naming import UsedNames, extension, sanitize_filename
from .records import CHUNK, MediaRef, OpenBlob, Record
from .zips import FILE_MODE, Missing, deflater, file_chunks

BOM = "\ufeff"


def csv_line(row: Sequence[str], separator: str = ",") -> str:
    """One CSV record as Central's csv-stringify writes it: `,` between fields, `\n` after,
    a field quoted only when it holds the separator, a quote or a line break. (The plain join
    is the common case; the csv module quotes the rest.)"""
    line = separator.join(row)
    if '"' in line or "\n" in line or "\r" in line or line.count(separator) != len(row) - 1:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n", delimiter=separator).writerow(row)
        return buffer.getvalue()
    return line + "\n"


class _CsvChunks:
    """CSV records handed out as UTF-8 chunks of about CHUNK bytes (Excel's dialect when
    `excel`: `;` and a BOM first)."""

    def __init__(self, excel: bool = False) -> None:
        self.separator = ";" if excel else ","
        self.lines: list[str] = [BOM] if excel else []
        self.size = 0

    def add(self, row: Sequence[Any]) -> bytes | None:
        line = csv_line(row, self.separator)
        self.lines.append(line)
        self.size += len(line)
        return self.take() if self.size >= CHUNK else None

    def take(self) -> bytes:
        data = "".join(self.lines).encode("utf-8")
        self.lines.clear()
        self.size = 0
        return data


def write_csv(layout: Layout, records: Iterable[Record], *, excel: bool = False) -> Iterator[bytes]:
    """The root table alone (`submissions.csv`)."""
    out = _CsvChunks(excel)
    out.add(layout.root.header)
    for record in records:
        chunk = out.add(layout.rows(record.meta, record.values)[0][1])
        if chunk:
            yield chunk
    yield out.take()


class _Spool:
    """Repeat tables and media references (with their submission's KEY) set aside in
    anonymous temporary files while the root table streams."""

    def __init__(self, layout: Layout, tmp_dir: str | None, excel: bool = False) -> None:
        self.files: dict[int, IO[bytes]] = {}
        self.pending: dict[int, _CsvChunks] = {}
        for index, table in enumerate(layout.tables[1:], 1):
            self.files[index] = tempfile.TemporaryFile(dir=tmp_dir)
            self.pending[index] = _CsvChunks(excel)
            self.pending[index].add(table.header)
        self.media = tempfile.TemporaryFile(dir=tmp_dir)

    def add_row(self, index: int, row: Sequence[Any]) -> None:
        chunk = self.pending[index].add(row)
        if chunk:
            self.files[index].write(chunk)

    def add_media(self, key: str, ref: MediaRef) -> None:
        # Neither instanceIDs nor attachment names hold control characters (forms.instance),
        # so tabs are safe around them; a content type (client text) is made so.
        content_type = " ".join((ref.content_type or "").split())
        line = f"{ref.sha256}\t{ref.size}\t{content_type}\t{key}\t{ref.name}\n"
        self.media.write(line.encode("utf-8"))

    def table_chunks(self, index: int) -> Iterator[bytes]:
        raw = self.files[index]
        raw.write(self.pending[index].take())
        yield from file_chunks(raw)

    def media_refs(self) -> Iterator[tuple[str, MediaRef]]:
        self.media.seek(0)
        for line in self.media:
            sha256, size, content_type, key, name = line.decode("utf-8").rstrip("\n").split("\t", 4)
            yield key, MediaRef(name, sha256, int(size), content_type or None)

    def close(self) -> None:
        for raw in self.files.values():
            raw.close()
        self.media.close()


def write_csv_zip(
    layout: Layout,
    records: Iterable[Record],
    *,
    open_blob: OpenBlob | None = None,
    tmp_dir: str | None = None,
    excel: bool = False,
) -> Iterator[bytes]:
    """Central's `submissions.csv.zip`; `open_blob=None` leaves the media out
    (`attachments=false`); `excel`: every table in Excel's dialect.

    Media are named as Central names them, `media/{name}`, the CSV cell holding `name`, when
    that can be done safely. The cells always keep the submission's own names (they were
    written before the media are reached), so a file that cannot be `media/{name}` goes to
    `media/{sha256 of its bytes}/{sanitised name}` instead, and `renamed-files.txt` (a header,
    then a line per reference: the submission's KEY, the name in its cell, the file in this
    zip, tab-separated) leads from the cell to it. That happens when:
    - the name is not safe as it is (`m:erge.jpg`, `a.`, `con.jpg`: see `sanitize_filename`;
      a name sanitised to nothing becomes `file.{ext}`): it never takes the plain
      `media/{sanitised}` a file really called so may need;
    - the name, case aside, is already another file's (two submissions' different `1.jpg`,
      or `Foto.jpg` and `foto.jpg`): the first one met keeps `media/{name}`.
    The same bytes under the same name are one entry (a second reference differing only in
    case is listed). Entry names are unique, case aside, and depend only on the records and
    their order."""
    now = datetime.now(UTC)
    spool = _Spool(layout, tmp_dir, excel)
    used = UsedNames() if open_blob is not None else None
    missing = Missing(open_blob) if open_blob is not None else None
    renamed = tempfile.TemporaryFile(dir=tmp_dir) if open_blob is not None else None

    def root_chunks() -> Iterator[bytes]:
        """The root table as its rows come; repeat rows and attachments go to the spool."""
        out = _CsvChunks(excel)
        out.add(layout.root.header)
        yield out.take()
        for record in records:
            for index, row in layout.rows(record.meta, record.values):
                if index:
                    spool.add_row(index, row)
                elif chunk := out.add(row):
                    yield chunk
            if open_blob is not None:
                for ref in record.attachments:
                    spool.add_media(record.meta.instance_id, ref)
        yield out.take()

    def members() -> Iterator[tuple[Any, ...]]:
        tables = _table_files(layout)
        yield (tables[0], now, FILE_MODE, ZIP_64, root_chunks())
        for index in range(1, len(layout.tables)):
            yield (tables[index], now, FILE_MODE, ZIP_64, spool.table_chunks(index))
        if used is None or missing is None or renamed is None:
            return
        for key, ref in spool.media_refs():
            state, entry = _place_media(used, ref)
            if state == "new":
                chunks = missing.open(ref)
                if chunks is None:
                    used.lose(entry)
                    continue
                yield (entry, now, FILE_MODE, ZIP_AUTO(ref.size, level=0), chunks)
            elif state == "lost":
                continue
            if entry != f"media/{ref.name}":
                renamed.write(f"{key}\t{ref.name}\t{entry}\n".encode())
        if renamed.tell():
            yield (
                "renamed-files.txt",
                now,
                FILE_MODE,
                ZIP_64,
                itertools.chain([b"KEY\tname\tfile\n"], file_chunks(renamed)),
            )
        yield from missing.members(now)

    try:
        yield from stream_zip(members(), chunk_size=CHUNK, get_compressobj=deflater)
    finally:
        spool.close()
        if renamed is not None:
            renamed.close()


def _table_files(layout: Layout) -> list[str]:
    """Each table's file in a CSV zip: `{formId}.csv`, `{formId}-{repeat}.csv` (Central's),
    with `~n` before `.csv` should two of them be one name once sanitised or case aside."""
    bases = [sanitize_filename(layout.schema.form_id) or "data"]
    bases += [sanitize_filename(table.name) or "data" for table in layout.tables[1:]]
    files: list[str] = []
    for base in bases:
        name, n = base, 1
        while f"{name}.csv".lower() in (f.lower() for f in files):
            n += 1
            name = f"{base}~{n}"
        files.append(f"{name}.csv")
    return files


def _place_media(used: UsedNames, ref: MediaRef) -> tuple[str, str]:
    """Where a CSV zip puts an attachment (see `write_csv_zip`): the claim's state and the
    entry name."""
    clean = sanitize_filename(ref.name)
    aside = f"media/{ref.sha256}/{clean or 'file.' + extension(ref.name, ref.content_type)}"
    if clean != ref.name:
        return used.claim(aside, ref.sha256)
    state, entry = used.claim(f"media/{clean}", ref.sha256)
    # Another file has the name (case aside); under its own bytes' folder none can.
    return used.claim(aside, ref.sha256) if state == "other" else (state, entry)
