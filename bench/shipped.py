"""The shipped instruments' versions, read from forms/library/ (the forms `make run` publishes),
so that benchmarks submit to the version the server holds."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook

LIBRARY = Path(__file__).resolve().parents[1] / "forms" / "library"


def version_of(form_id: str) -> str:
    sheet = load_workbook(LIBRARY / f"{form_id}.xlsx", read_only=True)["settings"]
    header, values = list(sheet.iter_rows(min_row=1, max_row=2, values_only=True))
    return str(dict(zip(header, values, strict=False))["version"])
