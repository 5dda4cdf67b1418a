"""XLSX: `write_xlsx`, one worksheet per table, streamed by forms.xlsx."""

from __future__ import annotations

import functools
import itertools
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, tzinfo
from typing import IO, Any

from .. import tabular, xlsx
from ..tabular import Layout, Table, typed
from .records import Record
from .zips import deflater, file_chunks

_SHEET_UNSAFE = re.compile(r"[\[\]:\*\?/\\]")


class _SheetSpool:
    """A repeat table's worksheet rows, encoded as they come and set aside in temporary files
    (one per worksheet: a table past Excel's row limit goes on in another) until the root
    sheet is done."""

    def __init__(self, width: int, max_rows: int, tmp_dir: str | None, zone: tzinfo) -> None:
        self.width, self.max_rows, self.tmp_dir, self.zone = width, max_rows, tmp_dir, zone
        self.parts: list[IO[bytes]] = []
        self._next()

    def _next(self) -> None:
        self.parts.append(tempfile.TemporaryFile(dir=self.tmp_dir))
        self.rows = xlsx.Rows(self.width, first=2, zone=self.zone)

    def add(self, cells: Sequence[Any]) -> None:
        if self.rows.number >= self.max_rows:
            self.parts[-1].write(self.rows.take())
            self._next()
        if chunk := self.rows.add(cells):
            self.parts[-1].write(chunk)

    def bodies(self) -> Iterator[Iterator[bytes]]:
        self.parts[-1].write(self.rows.take())
        for raw in self.parts:
            yield file_chunks(raw)

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
    zone: tzinfo = UTC,
) -> Iterator[bytes]:
    """One sheet per table (root first, then each repeat, joined by KEY/PARENT_KEY); headers
    as field labels or names, select answers as choice labels or values. Numbers, geopoint
    parts and dates are typed cells; text is always written as text (never a formula).

    Streamed by forms.xlsx: the root sheet's rows are zipped as the records arrive, the
    repeat sheets' rows spooled to temporary files meanwhile and zipped after it. A table
    past `max_rows` rows (Excel's limit) continues on a sheet named `… (2)`. Date-times are
    written as the wall clock of `zone` (the server's JEBOL_TIMEZONE for people)."""
    names = _sheet_names(layout)
    headers = [
        [c.label(lang) if labels else c.name for c in table.columns] for table in layout.tables
    ]
    cells = [_cell_converters(table, choice_labels, lang) for table in layout.tables]
    spools = {
        index: _SheetSpool(len(table.columns), max_rows, tmp_dir, zone)
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
        rows = xlsx.Rows(len(layout.root.columns), first=2, zone=zone)
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

    try:
        yield from xlsx.workbook(sheets(), get_compressobj=deflater)
    finally:
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
        elif column.kind in _NUMBERS or (column.field is not None and column.field.calculated):
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
