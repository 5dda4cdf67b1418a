"""forms.xlsx: the streamed SpreadsheetML writer, read back by openpyxl."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, timedelta, timezone

import openpyxl

from forms import xlsx


def _book(*sheets: tuple[str, list[str], list[list[object]]]) -> bytes:
    def parts():
        for name, header, rows in sheets:
            encoder = xlsx.Rows(len(header), first=2)
            body = [chunk for row in rows if (chunk := encoder.add(row))] + [encoder.take()]
            yield name, xlsx.worksheet(header, body)

    return b"".join(xlsx.workbook(parts()))


def test_cells_keep_their_types_and_text_stays_text():
    rows = [
        [
            "Budi & <Ani>",
            3,
            2.5,
            date(2026, 1, 5),
            datetime(2026, 1, 5, 7, 30),
            "=SUM(A1:A2)",
            "  spaced  ",
            None,
            "",
        ],
        ["bad\x00\x07chars", float("nan"), True, "x" * 40_000, -7, 0.1, "", "", "end"],
    ]
    book = openpyxl.load_workbook(io.BytesIO(_book(("Data", list("ABCDEFGHI"), rows))))
    sheet = book["Data"]
    first, second = list(sheet.iter_rows(min_row=2, values_only=True))
    assert first == (
        "Budi & <Ani>",
        3,
        2.5,
        datetime(2026, 1, 5),
        datetime(2026, 1, 5, 7, 30),
        "=SUM(A1:A2)",
        "  spaced  ",
        None,
        None,
    )
    assert sheet["F2"].data_type == "s"  # a formula-looking answer is a string
    assert sheet["D2"].number_format == "yyyy-mm-dd"
    assert sheet["E2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert second[:3] == ("badchars", "nan", "True")
    assert len(second[3]) == xlsx.MAX_CHARS and second[4:6] == (-7, 0.1) and second[8] == "end"
    assert sheet["A1"].font.b and sheet.freeze_panes == "A2"


def test_sheet_names_are_escaped_and_ordered_and_the_package_is_complete():
    data = _book(("Satu & <dua>", ["a"], [["1"]]), ("tiga", ["b"], []))
    assert openpyxl.load_workbook(io.BytesIO(data)).sheetnames == ["Satu & <dua>", "tiga"]
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names[0] == "[Content_Types].xml" and names[-2:] == [
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
    ]


def test_aware_datetimes_are_written_in_utc():
    wib = timezone(timedelta(hours=7))
    book = openpyxl.load_workbook(
        io.BytesIO(_book(("s", ["t"], [[datetime(2026, 1, 5, 7, 0, tzinfo=wib)]])))
    )
    assert book["s"]["A2"].value == datetime(2026, 1, 5, 0, 0)


def test_column_letters_follow_excels():
    letters = xlsx.column_letters(800)
    assert letters[:3] == ["A", "B", "C"] and letters[25:28] == ["Z", "AA", "AB"]
    assert letters[701:703] == ["ZZ", "AAA"]
