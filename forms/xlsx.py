"""A streamed XLSX (SpreadsheetML) writer: sheets of rows in, zip bytes out as rows arrive.

XlsxWriter and openpyxl both write the package's zip only when the workbook is closed, so an
export made with them sends its first byte after its last row. An XLSX package is a zip of
XML parts whose order does not matter to readers (they go by the zip's central directory),
so here the parts are written in the order they become known:

1. `[Content_Types].xml`, `_rels/.rels`, `xl/styles.xml`: fixed;
2. each worksheet, its rows encoded as they come (inline strings: no shared-string table
   to keep in memory);
3. `xl/workbook.xml` and its relationships last, when the sheets' names are all known.

Only what the exports need: text, numbers, dates and date-times, a bold header row frozen at
the top. Text is always a string cell (never a formula); characters XML 1.0 forbids are
dropped and a cell keeps at most Excel's 32,767 characters.
"""

from __future__ import annotations

import math
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from stream_zip import ZIP_64, stream_zip

CHUNK = 64 * 1024
MAX_ROWS = 1_048_576  # rows in one worksheet, the header's included
MAX_CHARS = 32_767
FILE_MODE = stat.S_IFREG | 0o644
BOLD, DATE, DATETIME = 1, 2, 3  # indexes into styles.xml's cellXfs

_EPOCH = datetime(1899, 12, 30)
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# Characters `text` must change; a string without them or spaces at its ends (nearly every
# answer) goes in as it is.
_CAREFUL = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

CONTENT_TYPES = (
    _HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    # Every other .xml part is a worksheet; the two that are not say so.
    '<Default Extension="xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    _HEAD + f'<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
    f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
STYLES = (
    _HEAD + f'<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    "</cellStyles></styleSheet>"
)


def column_letters(count: int) -> list[str]:
    """`A`, `B`, … `Z`, `AA`, … for the first `count` columns."""
    letters = []
    for index in range(count):
        name, n = "", index + 1
        while n:
            n, rest = divmod(n - 1, 26)
            name = chr(65 + rest) + name
        letters.append(name)
    return letters


def text(value: str) -> str:
    """A string as the body of an inline-string cell: escaped, XML-legal, at most 32,767
    characters, spaces at either end kept."""
    if _ILLEGAL.search(value):
        value = _ILLEGAL.sub("", value)
    if len(value) > MAX_CHARS:
        value = value[:MAX_CHARS]
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if value[:1].isspace() or value[-1:].isspace():
        return f'<is><t xml:space="preserve">{value}</t></is>'
    return f"<is><t>{value}</t></is>"


def serial(moment: date, zone: tzinfo = UTC) -> float:
    """An Excel date serial (days since 1899-12-30; time as a fraction); an aware date-time
    as the wall clock of `zone` (Excel cells have no zone: people read them as local time)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    elif moment.tzinfo is not None:
        moment = moment.astimezone(zone).replace(tzinfo=None)
    return (moment - _EPOCH).total_seconds() / 86400


class Rows:
    """Rows encoded as worksheet XML, numbered from `first`, handed out in chunks of about
    CHUNK bytes. A cell is `None` or `""` (left out), `str`, `int`/`float`, `date` or
    `datetime`."""

    def __init__(self, width: int, first: int = 1, zone: tzinfo = UTC) -> None:
        self.letters = column_letters(width)
        self.zone = zone
        self.number = first - 1  # the last row written
        self.parts: list[str] = []
        self.size = 0

    def add(self, cells: Sequence[Any], style: int = 0) -> bytes | None:
        self.number += 1
        r = self.number
        parts = [f'<row r="{r}">']
        s = f' s="{style}"' if style else ""
        for letter, value in zip(self.letters, cells):
            if value is None or value == "":
                continue
            kind = type(value)
            if kind is str:
                if (
                    value.strip() == value
                    and len(value) <= MAX_CHARS
                    and _CAREFUL.search(value) is None
                ):
                    parts.append(f'<c r="{letter}{r}"{s} t="inlineStr"><is><t>{value}</t></is></c>')
                else:
                    parts.append(f'<c r="{letter}{r}"{s} t="inlineStr">{text(value)}</c>')
            elif kind is int or (kind is float and math.isfinite(value)):
                parts.append(f'<c r="{letter}{r}"{s}><v>{value!r}</v></c>')
            elif kind is datetime:
                stamp = serial(value, self.zone)
                parts.append(f'<c r="{letter}{r}" s="{DATETIME}"><v>{stamp!r}</v></c>')
            elif kind is date:
                parts.append(f'<c r="{letter}{r}" s="{DATE}"><v>{serial(value)!r}</v></c>')
            else:  # bool, NaN, anything else: as text
                parts.append(f'<c r="{letter}{r}"{s} t="inlineStr">{text(str(value))}</c>')
        parts.append("</row>")
        line = "".join(parts)
        self.parts.append(line)
        self.size += len(line)
        return self.take() if self.size >= CHUNK else None

    def take(self) -> bytes:
        data = "".join(self.parts).encode("utf-8")
        self.parts.clear()
        self.size = 0
        return data


def worksheet(
    header: Sequence[str], body: Iterable[bytes], *, selected: bool = False
) -> Iterator[bytes]:
    """One worksheet part: the header (bold, frozen) as row 1, then `body`, rows already
    encoded by `Rows(width, first=2)`."""
    head = Rows(len(header))
    head.add(header, style=BOLD)
    view = ' tabSelected="1"' if selected else ""
    yield (
        f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><sheetViews>'
        f'<sheetView workbookViewId="0"{view}><pane ySplit="1" topLeftCell="A2" '
        f'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/>'
        f"</sheetView></sheetViews><sheetData>"
    ).encode() + head.take()
    yield from body
    yield b"</sheetData></worksheet>"


def workbook(
    sheets: Iterable[tuple[str, Iterable[bytes]]],
    *,
    get_compressobj: Callable[[], Any] | None = None,
    modified: datetime | None = None,
) -> Iterator[bytes]:
    """The XLSX package of `sheets` ((name, worksheet part chunks) pairs, read lazily: a
    sheet's name may depend on the rows before it). Names must be valid and unique (at most
    31 characters, none of `[]:*?/\\`)."""
    now = modified or datetime.now(UTC)
    names: list[str] = []

    def member(path: str, body: str | Iterable[bytes]) -> tuple[Any, ...]:
        chunks = iter([body.encode("utf-8")]) if isinstance(body, str) else body
        return (path, now, FILE_MODE, ZIP_64, chunks)

    def members() -> Iterator[tuple[Any, ...]]:
        yield member("[Content_Types].xml", CONTENT_TYPES)
        yield member("_rels/.rels", ROOT_RELS)
        yield member("xl/styles.xml", STYLES)
        for name, chunks in sheets:
            names.append(name)
            yield member(f"xl/worksheets/sheet{len(names)}.xml", chunks)
        listed = "".join(
            f'<sheet name="{_attribute(name)}" sheetId="{n}" r:id="rId{n}"/>'
            for n, name in enumerate(names, 1)
        )
        yield member(
            "xl/workbook.xml",
            f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><bookViews>'
            f"<workbookView/></bookViews><sheets>{listed}</sheets></workbook>",
        )
        targets = "".join(
            f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
            for n in range(1, len(names) + 1)
        )
        yield member(
            "xl/_rels/workbook.xml.rels",
            f'{_HEAD}<Relationships xmlns="{_PKG_REL}">{targets}'
            f'<Relationship Id="rId{len(names) + 1}" Type="{_REL}/styles" '
            f'Target="styles.xml"/></Relationships>',
        )

    options: dict[str, Any] = {"chunk_size": CHUNK}
    if get_compressobj is not None:
        options["get_compressobj"] = get_compressobj
    yield from stream_zip(members(), **options)


def _attribute(value: str) -> str:
    return (
        _ILLEGAL.sub("", value)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )
