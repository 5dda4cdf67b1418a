"""The shipped XLSForm instruments and the IID indicator catalogue.

- every forms/library/*.xlsx compiles with pyxform and passes ODK Validate;
- form ids and versions are the expected ones;
- each .xlsx is exactly what build_xlsx.py makes of its markdown source;
- the catalogue (CSV + method JSON) agrees with the IID 2023 structure and with the forms.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import openpyxl
import pytest
import pyxform

import forms
from forms import catalogue
from forms.compile import compile_xlsform
from forms.library import build_xlsx

LIBRARY = Path(forms.__file__).resolve().parent / "library"
SOURCES = LIBRARY / "src"
EXPECTED = {  # form_id -> version
    "jebol_sipera_kunjungan": "2025010101",
    "jebol_sipera_profil_inovasi": "2025010101",
    "jebol_sipera_data_dukung": "2025010101",
}
XF = "{http://www.w3.org/2002/xforms}"
ODK_VALIDATE_JAR = (
    Path(pyxform.__file__).parent / "validators" / "odk_validate" / "bin" / "ODK_Validate.jar"
)


def _rows(workbook_path: Path) -> dict[str, list[tuple]]:
    """Sheet name -> non-empty rows, trailing empty cells dropped."""
    book = openpyxl.load_workbook(workbook_path, read_only=True)
    try:
        sheets = {}
        for sheet in book.worksheets:
            rows = []
            for row in sheet.iter_rows(values_only=True):
                row = list(row)
                while row and row[-1] is None:
                    row.pop()
                if row:
                    rows.append(tuple(row))
            sheets[sheet.title] = rows
        return sheets
    finally:
        book.close()


def _choices(form_id: str, list_name: str) -> list[dict]:
    header, *rows = _rows(LIBRARY / f"{form_id}.xlsx")["choices"]
    items = [dict(zip(header, row)) for row in rows]
    return [item for item in items if item["list_name"] == list_name]


@pytest.fixture(scope="module")
def compiled():
    return {
        path.stem: compile_xlsform(path.read_bytes(), path.name)
        for path in sorted(LIBRARY.glob("*.xlsx"))
    }


# --- the instruments ---------------------------------------------------------------------


def test_library_holds_exactly_the_expected_forms():
    assert {p.stem for p in LIBRARY.glob("*.xlsx")} == set(EXPECTED)
    assert {p.stem for p in SOURCES.glob("*.md")} == set(EXPECTED)


@pytest.mark.parametrize("form_id", sorted(EXPECTED))
def test_form_id_and_version(compiled, form_id):
    root = ET.fromstring(compiled[form_id].xml)
    instance = root.find(f".//{XF}model/{XF}instance")
    assert instance is not None
    data = instance[0]
    assert data.get("id") == form_id
    assert data.get("version") == EXPECTED[form_id]


@pytest.mark.parametrize("form_id", sorted(EXPECTED))
def test_xlsx_compiles_like_its_markdown(compiled, form_id):
    """pyxform's own markdown reader and our workbook give the same XForm."""
    source = SOURCES / f"{form_id}.md"
    assert compile_xlsform(source.read_bytes(), source.name).xml == compiled[form_id].xml


@pytest.mark.skipif(shutil.which("java") is None, reason="ODK Validate needs java")
def test_odk_validate_accepts_every_form(compiled, tmp_path):
    paths = []
    for form_id, result in sorted(compiled.items()):
        path = tmp_path / f"{form_id}.xml"
        path.write_bytes(result.xml)
        paths.append(str(path))
    # ODK Validate takes several files in one run (one JVM start) and exits 1 if any fails.
    run = subprocess.run(
        ["java", "-Djava.awt.headless=true", "-jar", str(ODK_VALIDATE_JAR), *paths],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"ODK Validate failed:\n{run.stdout}\n{run.stderr}"
    assert run.stdout.count("Xform is valid!") == len(paths), run.stdout
    assert run.stderr.strip() == "", f"ODK Validate warnings:\n{run.stderr}"


def test_shipped_xlsx_match_markdown_sources(tmp_path):
    written = build_xlsx.build(SOURCES, tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{f}.xlsx" for f in EXPECTED)
    for rebuilt in written:
        shipped = LIBRARY / rebuilt.name
        assert _rows(shipped) == _rows(rebuilt), (
            f"{shipped.name} differs from src/{rebuilt.stem}.md: edit the markdown and run "
            "python forms/library/build_xlsx.py"
        )


def test_build_is_deterministic(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    build_xlsx.build(SOURCES, first)
    build_xlsx.build(SOURCES, second)
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes()


def test_markdown_parser_cells():
    sheets = build_xlsx.parse_markdown(
        "| survey |\n"
        "| | type | name | constraint | label |\n"
        "|---|---|---|---|---|\n"
        "| | text | a | regex(., '^(x\\|y)$') |  |\n"
        "| |  |  |  |  |\n"
        "| | 3 | b |  | 2025010101 |\n"
        "| settings |\n| | form_id |\n| | f1 |\n"
    )
    assert sheets["survey"] == [
        ["type", "name", "constraint", "label"],
        ["text", "a", "regex(., '^(x|y)$')"],
        ["3", "b", None, "2025010101"],
    ]
    assert build_xlsx.form_id(sheets) == "f1"


def test_workbook_cells_are_strings():
    """Escaped pipes are unescaped; numbers such as bobot and version stay text."""
    sheets = _rows(LIBRARY / "jebol_sipera_kunjungan.xlsx")
    header, *rows = sheets["survey"]
    cp_hp = next(dict(zip(header, row)) for row in rows if row[1] == "cp_hp")
    assert cp_hp["constraint"] == "regex(., '^(\\+62|0)8[0-9]{8,12}$')"
    assert sheets["settings"][1][2] == "2025010101"
    assert all(
        isinstance(v, str)
        for rows_ in sheets.values()
        for row in rows_
        for v in row
        if v is not None
    )


# --- the IID catalogue -------------------------------------------------------------------


def test_catalogue_has_the_20_sid_indicators():
    indicators = catalogue.load_indicators(2023)
    assert [i.code for i in indicators] == [f"ind{n}" for n in range(16, 36)]
    assert [i.number for i in indicators] == list(range(16, 36))
    assert sum(i.bobot for i in indicators) == 37
    for indicator in indicators:
        assert [lv.level for lv in indicator.levels] == [1, 2, 3], indicator.code
        assert [lv.nilai for lv in indicator.levels] == [1, 2, 3], indicator.code
        assert all(lv.parameter for lv in indicator.levels), indicator.code
        assert indicator.evidence_kind in catalogue.EVIDENCE_KINDS, indicator.code
        assert indicator.evidence_note, indicator.code
        for lv in indicator.levels:
            assert lv.evidence_kind in catalogue.EVIDENCE_KINDS and lv.evidence_note
    assert next(i for i in indicators if i.code == "ind35").evidence_kind == "video"


def test_max_sid_per_innovation_is_111():
    indicators = catalogue.load_indicators()
    assert sum(catalogue.score(i, 3) for i in indicators) == 111
    assert sum(catalogue.score(i, 1) for i in indicators) == 37
    assert catalogue.load_method()["sid_max"] == 111


def test_score_is_bobot_times_nilai():
    by_code = {i.code: i for i in catalogue.load_indicators()}
    assert catalogue.score(by_code["ind16"], 2) == 6.0
    assert catalogue.score(by_code["ind35"], 3) == 12.0
    assert catalogue.score(by_code["ind20"], 1) == 1.0
    with pytest.raises(ValueError):
        catalogue.score(by_code["ind16"], 4)


def test_method_2023():
    method = catalogue.load_method(2023)
    assert method["edition"] == 2023
    assert method["sid_divisor_min"] == 10
    assert (method["spd_max"], method["max_total"]) == (63, 250)
    assert [b["label"] for b in method["bands"]] == [
        "Sangat Inovatif",
        "Inovatif",
        "Kurang Inovatif",
        "Tidak Dapat Dinilai",
    ]
    assert method["portal_limits"] == {"pdf_max_bytes": 2 * 1024 * 1024, "video_max_minutes": 5}


def test_unknown_edition_is_refused():
    with pytest.raises(ValueError):
        catalogue.load_indicators(1999)
    with pytest.raises(ValueError):
        catalogue.load_method(1999)


def test_catalogue_agrees_with_the_forms():
    """Codes, names, weights and parameter labels are those of the `indikator` and
    `parameter` choice lists of the kunjungan form; all forms carry the same lists."""
    indicators = catalogue.load_indicators()
    choices = _choices("jebol_sipera_kunjungan", "indikator")
    assert [c["name"] for c in choices] == [i.code for i in indicators]
    for choice, indicator in zip(choices, indicators):
        assert choice["label::Indonesian (id)"] == f"{indicator.number}. {indicator.name}"
        assert int(choice["bobot"]) == indicator.bobot
    parameters = {
        (c["indikator"], int(c["nilai"])): c["label::Indonesian (id)"]
        for c in _choices("jebol_sipera_kunjungan", "parameter")
    }
    assert parameters == {
        (i.code, lv.level): f"P{lv.level}: {lv.parameter}" for i in indicators for lv in i.levels
    }
    for form_id in EXPECTED:
        for list_name in ("indikator", "parameter"):
            if form_id != "jebol_sipera_kunjungan" and _choices(form_id, list_name):
                assert _choices(form_id, list_name) == _choices(
                    "jebol_sipera_kunjungan", list_name
                ), (form_id, list_name)
