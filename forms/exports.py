"""Export writers: records in, `bytes` chunks of about 64 KiB out, never a whole file in memory.

Each writer takes an iterable of records (anything shaped like `Record`: a submission's
`RowMeta`, its values and its attachments) and yields chunks as it goes, so the first bytes
leave while later records are still being read:

- `write_csv`: the root table as one CSV;
- `write_csv_zip`: Central's Briefcase layout: `{formId}.csv`, `{formId}-{repeat}.csv`,
  `media/{file}` (a file whose name cannot be used as it is goes elsewhere, listed in
  `renamed-files.txt`: see `write_csv_zip`). The root table is zipped as its rows arrive;
  repeat tables and the list of media are spooled to anonymous temporary files meanwhile,
  then zipped after it;
- `write_xlsx`: one sheet per table, streamed by `forms.xlsx` (the root sheet as its rows
  arrive, repeat sheets spooled to temporary files meanwhile, as for the CSV zip);
- `write_geojson`: a FeatureCollection of the submissions that have a point;
- `write_media_zip`: photos named `{OPD}/{date}_{instanceName or short id}_{question}_{n}.{ext}`
  (the OPD question and the folder for none are the caller's: see forms.instruments),
  each streamed from the blob store into the zip (stored without compression).

A file the blob store has lost is left out of a zip and listed in its `missing-files.txt`;
any other failure raises, which drops the connection (never an error text in a 200 body).

Zips are made by stream-zip. Every entry name in one archive is unique, also when case is
ignored (Windows and macOS unzip `a.jpg` and `A.jpg` to one file). Names already used are
remembered in a temporary on-disk SQLite table (`UsedNames`), not in a Python set, so memory
does not grow with the number of files either (stream-zip itself keeps about 150 bytes per
file for the zip's central directory, which can only be written at the end).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import mimetypes
import re
import sqlite3
import stat
import tempfile
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import msgspec
from stream_zip import ZIP_64, ZIP_AUTO, stream_zip

from . import tabular, xlsx
from .instance import attachment_name, parse_geopoint, value_at
from .tabular import Layout, RowMeta, Table, geopoint_field, iter_values, typed
from .xform import Field, Schema

CHUNK = 64 * 1024
CSV_LEVEL = 3  # zlib level for CSV members: ~2x faster than the default 6, ~10% larger
FILE_MODE = stat.S_IFREG | 0o644
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9-]+")
_SANITIZE = re.compile(r'[/\?<>\\:\*\|"\x00-\x1f\x80-\x9f]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_SHEET_UNSAFE = re.compile(r"[\[\]:\*\?/\\]")

OpenBlob = Callable[[str], Iterable[bytes]]  # sha256 -> the blob's bytes, in chunks


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One stored attachment of a submission's current version."""

    name: str
    sha256: str
    size: int
    content_type: str | None = None


class Record(Protocol):
    """What the writers read from each submission (storage.odata.SubmissionRow is one)."""

    @property
    def meta(self) -> RowMeta: ...

    @property
    def values(self) -> dict[str, Any]: ...

    @property
    def attachments(self) -> Sequence[MediaRef]: ...

    @property
    def instance_id(self) -> str: ...

    @property
    def instance_name(self) -> str | None: ...

    @property
    def created_at(self) -> datetime: ...


# ---- CSV -------------------------------------------------------------------------------------


def csv_line(row: Sequence[str]) -> str:
    """One CSV record as Central's csv-stringify writes it: `,` between fields, `\n` after,
    a field quoted only when it holds a comma, a quote or a line break. (The plain join is
    the common case; the csv module quotes the rest.)"""
    line = ",".join(row)
    if '"' in line or "\n" in line or "\r" in line or line.count(",") != len(row) - 1:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(row)
        return buffer.getvalue()
    return line + "\n"


class _CsvChunks:
    """CSV records handed out as UTF-8 chunks of about CHUNK bytes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.size = 0

    def add(self, row: Sequence[Any]) -> bytes | None:
        line = csv_line(row)
        self.lines.append(line)
        self.size += len(line)
        return self.take() if self.size >= CHUNK else None

    def take(self) -> bytes:
        data = "".join(self.lines).encode("utf-8")
        self.lines.clear()
        self.size = 0
        return data


def write_csv(layout: Layout, records: Iterable[Record]) -> Iterator[bytes]:
    """The root table alone (`submissions.csv`)."""
    out = _CsvChunks()
    out.add(layout.root.header)
    for record in records:
        chunk = out.add(layout.rows(record.meta, record.values)[0][1])
        if chunk:
            yield chunk
    yield out.take()


class _Spool:
    """Repeat tables and media references (with their submission's KEY) set aside on disk
    while the root table streams: in anonymous temporary files, or (`into`, for another
    process to read) in named files `table-{n}.csv` and `media.tsv` of a folder, without
    headers."""

    def __init__(self, layout: Layout, tmp_dir: str | None, into: Path | None = None) -> None:
        def part(name: str) -> IO[bytes]:
            return open(into / name, "w+b") if into else tempfile.TemporaryFile(dir=tmp_dir)

        self.files: dict[int, IO[bytes]] = {}
        self.pending: dict[int, _CsvChunks] = {}
        for index, table in enumerate(layout.tables[1:], 1):
            self.files[index] = part(f"table-{index}.csv")
            self.pending[index] = _CsvChunks()
            if into is None:
                self.pending[index].add(table.header)
        self.media = part("media.tsv")
        self.more: Path | None = None  # another process' part, read after this one

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

    def flush(self) -> None:
        for index, raw in self.files.items():
            raw.write(self.pending[index].take())
        self.media.flush()

    def table_chunks(self, index: int) -> Iterator[bytes]:
        raw = self.files[index]
        raw.write(self.pending[index].take())
        yield from _file_chunks(raw)
        if self.more is not None:
            with open(self.more / f"table-{index}.csv", "rb") as extra:
                yield from _file_chunks(extra)

    def media_refs(self) -> Iterator[tuple[str, MediaRef]]:
        yield from _read_refs(self.media)
        if self.more is not None:
            with open(self.more / "media.tsv", "rb") as extra:
                yield from _read_refs(extra)

    def close(self) -> None:
        for raw in self.files.values():
            raw.close()
        self.media.close()


def _file_chunks(raw: IO[bytes]) -> Iterator[bytes]:
    raw.seek(0)
    while chunk := raw.read(CHUNK):
        yield chunk


def _read_refs(raw: IO[bytes]) -> Iterator[tuple[str, MediaRef]]:
    raw.seek(0)
    for line in raw:
        sha256, size, content_type, key, name = line.decode("utf-8").rstrip("\n").split("\t", 4)
        yield key, MediaRef(name, sha256, int(size), content_type or None)


def _csv_rows(
    layout: Layout, records: Iterable[Record], spool: _Spool, media: bool
) -> Iterator[bytes]:
    """The root table's rows as CSV chunks; repeat rows and (`media`) attachments go to the
    spool meanwhile."""
    out = _CsvChunks()
    for record in records:
        for index, row in layout.rows(record.meta, record.values):
            if index:
                spool.add_row(index, row)
            elif chunk := out.add(row):
                yield chunk
        if media:
            for ref in record.attachments:
                spool.add_media(record.meta.instance_id, ref)
    yield out.take()


def write_csv_part(layout: Layout, records: Iterable[Record], into: Path, *, media: bool) -> None:
    """Some records' share of a CSV zip, written into the folder `into` (`root.csv`,
    `table-{n}.csv`, `media.tsv`, no headers) for `write_csv_zip(more=…)` in another process
    to append to its own."""
    spool = _Spool(layout, None, into=into)
    try:
        with open(into / "root.csv", "wb") as root:
            for chunk in _csv_rows(layout, records, spool, media):
                root.write(chunk)
        spool.flush()
    finally:
        spool.close()


def write_csv_zip(
    layout: Layout,
    records: Iterable[Record],
    *,
    open_blob: OpenBlob | None = None,
    tmp_dir: str | None = None,
    more: Callable[[], Path] | None = None,
) -> Iterator[bytes]:
    """Central's `submissions.csv.zip`; `open_blob=None` leaves the media out
    (`attachments=false`). `more`: called once `records` are written, it gives the folder of
    a `write_csv_part` of the records that come after them (made meanwhile by another
    process), whose rows follow in each table.

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
    their order, so the two-process zip equals the one-process one."""
    now = datetime.now(UTC)
    spool = _Spool(layout, tmp_dir)
    used = UsedNames() if open_blob is not None else None
    missing = _Missing(open_blob) if open_blob is not None else None
    renamed = tempfile.TemporaryFile(dir=tmp_dir) if open_blob is not None else None

    def root_chunks() -> Iterator[bytes]:
        header = _CsvChunks()
        header.add(layout.root.header)
        yield header.take()
        yield from _csv_rows(layout, records, spool, open_blob is not None)
        if more is not None:
            spool.more = more()
            with open(spool.more / "root.csv", "rb") as extra:
                yield from _file_chunks(extra)

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
                itertools.chain([b"KEY\tname\tfile\n"], _file_chunks(renamed)),
            )
        yield from missing.members(now)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-zlib")
    try:
        yield from stream_zip(
            members(), chunk_size=CHUNK, get_compressobj=lambda: _Deflater(pool, CSV_LEVEL)
        )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        spool.close()
        if used is not None:
            used.close()
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


class _Deflater:
    """A deflate stream that compresses each chunk in a helper thread while the caller makes
    the next one (zlib lets go of the GIL): `compress` hands back the previous chunk's output,
    `flush` the rest. Same bytes as zlib's, one chunk in flight."""

    def __init__(self, pool: ThreadPoolExecutor, level: int) -> None:
        self.pool = pool
        self.deflate = zlib.compressobj(level=level, memLevel=9, wbits=-zlib.MAX_WBITS)
        self.pending: Future[bytes] | None = None

    def compress(self, data: bytes) -> bytes:
        done = self.pending.result() if self.pending is not None else b""
        self.pending = self.pool.submit(self.deflate.compress, data)
        return done

    def flush(self) -> bytes:
        done = self.pending.result() if self.pending is not None else b""
        self.pending = None
        return done + self.deflate.flush()


class _Missing:
    """Opens each blob as the zip reaches it. A blob the store no longer has is left out and
    listed in `missing-files.txt` at the end of the zip (the rest of a large export is still
    worth having); a store that fails outright raises, which drops the connection."""

    LIMIT = 10_000

    def __init__(self, open_blob: OpenBlob) -> None:
        self.open_blob = open_blob
        self.lines: list[str] = []
        self.count = 0

    def open(self, ref: MediaRef, shown: str | None = None) -> Iterable[bytes] | None:
        try:
            return self.open_blob(ref.sha256)
        except KeyError:
            self.count += 1
            if len(self.lines) < self.LIMIT:
                self.lines.append(f"{shown or ref.name}\t{ref.sha256}\n")
            return None

    def members(self, now: datetime) -> Iterator[tuple[Any, ...]]:
        if not self.count:
            return
        text = "".join(self.lines)
        if self.count > len(self.lines):
            text += f"... and {self.count - len(self.lines)} more\n"
        data = text.encode("utf-8")
        yield ("missing-files.txt", now, FILE_MODE, ZIP_AUTO(len(data)), iter([data]))


# ---- XLSX ------------------------------------------------------------------------------------


class _SheetSpool:
    """A repeat table's worksheet rows, encoded as they come and set aside in temporary files
    (one per worksheet: a table past Excel's row limit goes on in another) until the root
    sheet is done."""

    def __init__(self, width: int, max_rows: int, tmp_dir: str | None) -> None:
        self.width, self.max_rows, self.tmp_dir = width, max_rows, tmp_dir
        self.parts: list[IO[bytes]] = []
        self._next()

    def _next(self) -> None:
        self.parts.append(tempfile.TemporaryFile(dir=self.tmp_dir))
        self.rows = xlsx.Rows(self.width, first=2)

    def add(self, cells: Sequence[Any]) -> None:
        if self.rows.number >= self.max_rows:
            self.parts[-1].write(self.rows.take())
            self._next()
        if chunk := self.rows.add(cells):
            self.parts[-1].write(chunk)

    def bodies(self) -> Iterator[Iterator[bytes]]:
        self.parts[-1].write(self.rows.take())
        for raw in self.parts:
            yield _file_chunks(raw)

    def close(self) -> None:
        for raw in self.parts:
            raw.close()


def write_xlsx(
    layout: Layout,
    records: Iterable[Record],
    *,
    labels: bool = False,
    choice_labels: bool = False,
    lang: str | None = None,
    tmp_dir: str | None = None,
    max_rows: int = xlsx.MAX_ROWS,
) -> Iterator[bytes]:
    """One sheet per table (root first, then each repeat, joined by KEY/PARENT_KEY); headers
    as field labels or names, select answers as choice labels or values. Numbers, geopoint
    parts and dates are typed cells; text is always written as text (never a formula).

    Streamed by forms.xlsx: the root sheet's rows are zipped as the records arrive, the
    repeat sheets' rows spooled to temporary files meanwhile and zipped after it. A table
    past `max_rows` rows (Excel's limit) continues on a sheet named `… (2)`."""
    names = _sheet_names(layout)
    headers = [
        [c.label(lang) if labels else c.name for c in table.columns] for table in layout.tables
    ]
    cells = [_cell_converters(table, choice_labels, lang) for table in layout.tables]
    spools = {
        index: _SheetSpool(len(table.columns), max_rows, tmp_dir)
        for index, table in enumerate(layout.tables[1:], 1)
    }
    state_col = len(layout.root.columns) - 4  # ReviewState
    source = iter(records)
    finished = False

    def convert(index: int, row: list[Any]) -> list[Any]:
        for col, to_cell in cells[index]:
            if row[col]:
                row[col] = to_cell(row[col])
        return row

    def root_body() -> Iterator[bytes]:
        nonlocal finished, source
        rows = xlsx.Rows(len(layout.root.columns), first=2)
        for record in source:
            for index, row in layout.rows(record.meta, record.values):
                if index:
                    spools[index].add(convert(index, row))
                    continue
                convert(0, row)
                row[0] = record.meta.created_at
                if not row[state_col]:
                    row[state_col] = "received"
                if chunk := rows.add(row):
                    yield chunk
            if rows.number >= max_rows:
                break
        yield rows.take()
        upcoming = next(source, None)  # a full sheet: is there more for the next one?
        if upcoming is None:
            finished = True
        else:
            source = itertools.chain([upcoming], source)

    def sheets() -> Iterator[tuple[str, Iterable[bytes]]]:
        part = 1
        while True:
            yield (
                _part_name(names[0], part),
                xlsx.worksheet(headers[0], root_body(), selected=part == 1),
            )
            if finished:
                break
            part += 1
        for index, spool in spools.items():
            for part, body in enumerate(spool.bodies(), 1):
                yield _part_name(names[index], part), xlsx.worksheet(headers[index], body)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-zlib")
    try:
        yield from xlsx.workbook(sheets(), get_compressobj=lambda: _Deflater(pool, CSV_LEVEL))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for spool in spools.values():
            spool.close()


def _part_name(base: str, part: int) -> str:
    return base if part == 1 else f"{base[:26]} ({part})"


_NUMBERS = ("int", "count", "flag", "decimal", "geopoint", "date")


def _cell_converters(
    table: Table, use_labels: bool, lang: str | None
) -> list[tuple[int, Callable[[str], Any]]]:
    """How each column's text becomes a cell, decided once per column: choice labels, typed
    numbers and dates (text when they do not parse), or the text as it is (left out)."""
    converters: list[tuple[int, Callable[[str], Any]]] = []
    for col, column in enumerate(table.columns):
        labels = tabular.choice_labels(column, lang) if use_labels else None
        if labels is not None:
            converters.append((col, functools.partial(tabular.with_labels, column, labels)))
        elif column.kind in _NUMBERS:
            converters.append((col, functools.partial(typed, column)))
    return converters


def _sheet_names(layout: Layout) -> list[str]:
    names: list[str] = []
    for table in layout.tables:
        base = table.repeat.name if table.repeat is not None else layout.schema.form_id
        base = _SHEET_UNSAFE.sub("_", base).strip("'")[:31] or "data"
        name, n = base, 1
        while name.lower() in (x.lower() for x in names):
            n += 1
            name = f"{base[:27]}~{n}"
        names.append(name)
    return names


# ---- GeoJSON ---------------------------------------------------------------------------------


def write_geojson(layout: Layout, records: Iterable[Record]) -> Iterator[bytes]:
    """A FeatureCollection: one Point Feature per submission whose first geopoint outside a
    repeat is answered (`id` = the submission's KEY); properties are the root table's columns,
    numbers typed."""
    point = geopoint_field(layout.schema)
    columns = layout.root.columns
    at = next((i for i, c in enumerate(columns) if c.field is point and c.part == 0), None)
    encoder = msgspec.json.Encoder()
    buffer = bytearray(b'{"type":"FeatureCollection","features":[')
    first = True
    for record in records if at is not None else ():
        row = layout.rows(record.meta, record.values)[0][1]
        coordinates = _coordinates(row[at : at + 3])
        if coordinates is None:
            continue
        feature = {
            "type": "Feature",
            "id": record.meta.instance_id,
            "geometry": {"type": "Point", "coordinates": coordinates},
            "properties": {c.name: typed(c, v) for c, v in zip(columns, row)},
        }
        if not first:
            buffer += b","
        first = False
        buffer += encoder.encode(feature)
        if len(buffer) >= CHUNK:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]}"
    yield bytes(buffer)


def _coordinates(parts: Sequence[Any]) -> list[float] | None:
    """GeoJSON's [lon, lat(, altitude)] of a geopoint's split columns (lat, lon, altitude)."""
    point = parse_geopoint(" ".join(p for p in parts if isinstance(p, str)))
    if point is None:
        return None
    if point.altitude is None:
        return [point.lon, point.lat]
    return [point.lon, point.lat, point.altitude]


# ---- media ZIP -------------------------------------------------------------------------------


def photo_fields(schema: Schema) -> list[Field]:
    """The image questions that hold photos (not signatures or drawings)."""
    return [
        f
        for f in schema.fields
        if f.is_binary
        and (f.media_type or "").startswith("image/")
        and not any(a in (f.appearance or "").split() for a in ("signature", "draw"))
    ]


def find_photo_field(schema: Schema, question: str) -> Field | None:
    """A photo question by name (`bukti_foto`) or path (`/inovasi/bukti/bukti_foto`)."""
    return next(
        (f for f in photo_fields(schema) if question in (f.name, f.path, f.path.lstrip("/"))), None
    )


def write_media_zip(
    schema: Schema,
    records: Iterable[Record],
    *,
    open_blob: OpenBlob,
    questions: Sequence[Field] | None = None,
    opd_path: Sequence[str] | None = None,
    no_opd_folder: str,
) -> Iterator[bytes]:
    """The photos of the records, each named
    `{OPD}/{date}_{instanceName or short id}_{question}_{n}.{ext}` (n counts the question's
    photos in one submission), made safe (ASCII letters, digits, `-`, `_`) and unique
    (`~2` before the extension on a clash). Files are stored uncompressed (photos are).
    The OPD is the answer at `opd_path` (outside repeats); without one, `no_opd_folder`."""
    wanted = list(questions) if questions is not None else photo_fields(schema)
    used = UsedNames()
    missing = _Missing(open_blob)

    def members() -> Iterator[tuple[Any, ...]]:
        for record in records:
            if not record.attachments:  # nothing stored: its answers need not be read
                continue
            places = _photo_places(record.values, wanted)
            if not places:
                continue
            folder = safe_part(_opd_of(record.values, opd_path), 60) or no_opd_folder
            day = record.created_at.astimezone(UTC).date().isoformat()
            who = safe_part(record.instance_name or "", 60) or short_id(record.instance_id)
            for ref in record.attachments:
                place = places.get(attachment_name(ref.name))
                if place is None:
                    continue
                question, n = place
                stem = f"{folder}/{day}_{who}_{safe_part(question.name, 60) or 'foto'}_{n}"
                chunks = missing.open(ref, stem)
                if chunks is None:
                    continue
                name = used.unique(stem, extension(ref.name, ref.content_type))
                yield (name, record.created_at, FILE_MODE, ZIP_AUTO(ref.size, level=0), chunks)
        now = datetime.now(UTC)
        yield from missing.members(now)

    try:
        yield from stream_zip(members(), chunk_size=CHUNK)
    finally:
        used.close()


def _photo_places(values: Any, fields: Sequence[Field]) -> dict[str, tuple[Field, int]]:
    places: dict[str, tuple[Field, int]] = {}
    for item in fields:
        n = 0
        for value in iter_values(values, item.path):
            name = attachment_name(value) if isinstance(value, str) else ""
            if name:
                n += 1
                places.setdefault(name, (item, n))
    return places


def _opd_of(values: Any, path: Sequence[str] | None) -> str:
    node = value_at(values, path) if path else None
    return node if isinstance(node, str) else ""


# ---- names -----------------------------------------------------------------------------------


def safe_part(text: str, limit: int) -> str:
    """A piece of a file name: ASCII letters, digits and `-`, everything else `_`; never `.`
    or a path; at most `limit` characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE_CHARS.sub("_", ascii_text).strip("_-")[:limit].strip("_-")


def short_id(instance_id: str) -> str:
    plain = instance_id.removeprefix("uuid:")
    return safe_part(plain, 8) or "tanpa_id"


def extension(name: str, content_type: str | None) -> str:
    suffix = name.rsplit(".", 1)[1].lower() if "." in name else ""
    if re.fullmatch(r"[a-z0-9]{1,8}", suffix):
        return suffix
    guessed = mimetypes.guess_extension(content_type or "") or ""
    return guessed.lstrip(".") or "bin"


def sanitize_filename(name: str) -> str:
    """What npm's sanitize-filename (Central's) makes of a name: no path separators, control
    or reserved characters, no `.`/`..`, no Windows device names or trailing dots and spaces,
    at most 255 bytes."""
    clean = _SANITIZE.sub("", name)
    if clean in (".", "..") or _WINDOWS_RESERVED.match(clean):
        return ""
    clean = clean.rstrip(". ")
    while len(clean.encode("utf-8")) > 255:
        clean = clean[:-1]
    return clean


class UsedNames:
    """The names one archive already holds, in a temporary on-disk SQLite table (SQLite's
    `""` database: private, deleted when closed; its page cache is capped at 2 MB).

    Names are compared case aside (`str.lower`): unzipped on Windows or macOS, `a.jpg` and
    `A.jpg` are one file, so one of them would be lost."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA cache_size=-2048")
        self.db.execute(
            "CREATE TABLE used (key TEXT PRIMARY KEY, name TEXT, tag TEXT, "
            "lost INTEGER DEFAULT 0) WITHOUT ROWID"
        )
        self.db.execute("CREATE TABLE taken (name TEXT PRIMARY KEY, count INTEGER) WITHOUT ROWID")
        self.db.execute("BEGIN")

    def claim(self, name: str, tag: str = "") -> tuple[str, str]:
        """The state of `name` for `tag` and the name as first claimed (its case may differ):
        `new` (now taken), `same` (taken with this tag), `lost` (taken with this tag, but its
        bytes were lost: see `lose`) or `other` (taken with another tag)."""
        if self.db.execute(
            "INSERT OR IGNORE INTO used (key, name, tag) VALUES (?, ?, ?)",
            (name.lower(), name, tag),
        ).rowcount:
            return "new", name
        held, held_tag, lost = self.db.execute(
            "SELECT name, tag, lost FROM used WHERE key = ?", (name.lower(),)
        ).fetchone()
        if held_tag != tag:
            return "other", held
        return ("lost" if lost else "same"), held

    def lose(self, name: str) -> None:
        """The file claimed as `name` could not be written (its bytes are lost): the name stays
        taken, and a later claim of it with the same tag is `lost`, not `same`."""
        self.db.execute("UPDATE used SET lost = 1 WHERE key = ?", (name.lower(),))

    def unique(self, stem: str, ext: str) -> str:
        """`stem.ext` the first time, then `stem~2.ext`, `stem~3.ext`... (counted case aside).
        Stems never hold `~` (safe_part), so a numbered name cannot be another stem's first
        one."""
        name = f"{stem}.{ext}"
        count = self.db.execute(
            "INSERT INTO taken VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET count = count + 1 "
            "RETURNING count",
            (name.lower(),),
        ).fetchone()[0]
        return name if count == 1 else f"{stem}~{count}.{ext}"

    def close(self) -> None:
        self.db.close()
