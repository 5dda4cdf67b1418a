"""Build the shipped XLSForm workbooks from their markdown sources.

    python forms/library/build_xlsx.py

The editable source of each instrument is `forms/library/src/<name>.md`: XLSForm sheets
written as markdown tables, the format pyxform itself reads (`file_type=".md"`):

    | survey |                          <- a row whose first cell is filled starts a sheet
    | | type | name | label |          <- the sheet's header row (first cell empty)
    | | text | nama | Nama  |          <- data rows (first cell empty)

Each sheet becomes one worksheet of `forms/library/<form_id>.xlsx`. Every cell is written
as a string exactly as it appears in the markdown (trimmed), `\\|` becomes `|`, and empty
cells stay empty. The output is deterministic: same markdown, same bytes.

Edit the markdown, run this script, commit both; tests/forms/test_library.py checks that
the two agree.
"""

from __future__ import annotations

import datetime
import re
import sys
from pathlib import Path

import xlsxwriter

LIBRARY_DIR = Path(__file__).resolve().parent
SOURCE_DIR = LIBRARY_DIR / "src"

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_SEPARATOR = re.compile(r"^[\s|:\-]+$")  # |---|:--| alignment rows
# Fixed document timestamp, so that rebuilding an unchanged source gives identical bytes.
_FIXED_CREATED = datetime.datetime(2025, 1, 1, 0, 0, 0)

Row = list[str | None]


def parse_markdown(text: str) -> dict[str, list[Row]]:
    """Markdown tables -> {sheet name: rows}; rows[0] is the header row.

    Cells are trimmed strings, or None when empty. The first (sheet-name) column is dropped.
    Lines that are not table rows, `#` comment lines and separator rows are ignored, and so
    are rows with every cell empty.
    """
    sheets: dict[str, list[Row]] = {}
    current: list[Row] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("|") or _SEPARATOR.match(stripped):
            continue
        if not stripped.endswith("|") or stripped.endswith("\\|"):
            raise ValueError(f"line {number}: a table row must end with an unescaped '|'")
        cells = [_cell(c) for c in _UNESCAPED_PIPE.split(stripped[1:-1])]
        first, rest = cells[0], cells[1:]
        if first is not None:  # a sheet title row: `| survey |`
            if first in sheets:
                raise ValueError(f"line {number}: sheet {first!r} appears twice")
            current = sheets[first] = []
            continue
        if current is None:
            raise ValueError(f"line {number}: table row before any sheet title row")
        if any(c is not None for c in rest):
            current.append(_trim_trailing_empty(rest))
    return sheets


def _cell(raw: str) -> str | None:
    value = raw.strip().replace("\\|", "|")
    return value or None


def _trim_trailing_empty(row: Row) -> Row:
    end = len(row)
    while end and row[end - 1] is None:
        end -= 1
    return row[:end]


def form_id(sheets: dict[str, list[Row]]) -> str:
    """The `form_id` from the settings sheet (header row + one row)."""
    settings = sheets.get("settings") or []
    if len(settings) < 2 or "form_id" not in settings[0]:
        raise ValueError("the settings sheet has no form_id")
    column = settings[0].index("form_id")
    row = settings[1]
    value = row[column] if column < len(row) else None
    if not value:
        raise ValueError("the settings sheet has an empty form_id")
    return value


def write_xlsx(sheets: dict[str, list[Row]], path: Path) -> None:
    """One worksheet per sheet, every non-empty cell written as a string."""
    workbook = xlsxwriter.Workbook(
        str(path),
        {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False},
    )
    workbook.set_properties({"created": _FIXED_CREATED})
    for name, rows in sheets.items():
        worksheet = workbook.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    worksheet.write_string(r, c, value)
    workbook.close()


def build(source_dir: Path = SOURCE_DIR, out_dir: Path = LIBRARY_DIR) -> list[Path]:
    """Write `<out_dir>/<form_id>.xlsx` for every `<source_dir>/*.md`; return the paths."""
    written = []
    for source in sorted(source_dir.glob("*.md")):
        sheets = parse_markdown(source.read_text(encoding="utf-8"))
        missing = {"survey", "choices", "settings"} - sheets.keys()
        if missing:
            raise ValueError(f"{source.name}: missing sheet(s) {sorted(missing)}")
        target = out_dir / f"{form_id(sheets)}.xlsx"
        write_xlsx(sheets, target)
        written.append(target)
    return written


def main() -> int:
    for path in build():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
