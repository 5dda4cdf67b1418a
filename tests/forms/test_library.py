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
    "jebol_sipera_kunjungan": "2026120503",
    "jebol_sipera_profil_inovasi": "2026120503",
    "jebol_sipera_data_dukung": "2026120503",
}
XF = "{http://www.w3.org/2002/xforms}"
H = "{http://www.w3.org/1999/xhtml}"
ENTITIES = "{http://www.opendatakit.org/xforms/entities}"
#: The `inovasi` entity list's properties, exactly these names (the IID report, the exports
#: and the entity pages read them); the profile saves each from the field of the same name.
INOVASI_PROPERTIES = {
    "opd",
    "opd_lain",
    "tahapan",
    "inisiator",
    "jenis",
    "bentuk",
    "tematik",
    "urusan_utama",
    "waktu_uji_coba",
    "waktu_penerapan",
}
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
    assert sheets["settings"][1][2] == "2026120503"
    assert all(
        isinstance(v, str)
        for rows_ in sheets.values()
        for row in rows_
        for v in row
        if v is not None
    )


# --- the `inovasi` entity list ----------------------------------------------------------


def _xform(compiled, form_id: str) -> ET.Element:
    return ET.fromstring(compiled[form_id].xml)


def _model(root: ET.Element) -> ET.Element:
    model = root.find(f"{H}head/{XF}model")
    assert model is not None
    return model


def _binds(root: ET.Element) -> dict[str, dict[str, str]]:
    return {b.get("nodeset"): dict(b.attrib) for b in _model(root).iter(f"{XF}bind")}


def _saveto(root: ET.Element) -> dict[str, str]:
    """Bind nodeset -> entity property, for every field with `save_to`."""
    return {
        nodeset: attrs[f"{ENTITIES}saveto"]
        for nodeset, attrs in _binds(root).items()
        if f"{ENTITIES}saveto" in attrs
    }


def _entities(root: ET.Element) -> dict[str, ET.Element]:
    """Path of each `entity` element of the primary instance -> the element."""
    primary = _model(root).find(f"{XF}instance")
    assert primary is not None
    found = {}

    def walk(node: ET.Element, path: str) -> None:
        for child in node:
            name = child.tag.removeprefix(XF)
            if name == "entity":
                found[f"{path}/{name}"] = child
            walk(child, f"{path}/{name}")

    data = primary[0]
    walk(data, f"/{data.tag.removeprefix(XF)}")
    return found


def _inovasi_csv_instance(root: ET.Element) -> ET.Element | None:
    return next(
        (i for i in _model(root).findall(f"{XF}instance") if i.get("id") == "inovasi"), None
    )


def _control(root: ET.Element, ref: str) -> ET.Element:
    control = next(
        (
            c
            for c in root.find(f"{H}body").iter()
            if c.get("ref") == ref and c.tag != f"{XF}setvalue"
        ),
        None,
    )
    assert control is not None, f"no control for {ref}"
    return control


def _setvalues(root: ET.Element, ref: str) -> list[str]:
    """The `value` of each xforms-value-changed setvalue writing `ref` (a trigger column)."""
    return [
        s.get("value")
        for s in root.find(f"{H}body").iter(f"{XF}setvalue")
        if s.get("ref") == ref and s.get("event") == "xforms-value-changed"
    ]


def _squash(expression: str | None) -> str:
    return "".join((expression or "").split())


def test_profile_creates_or_updates_an_inovasi_entity(compiled):
    root = _xform(compiled, "jebol_sipera_profil_inovasi")
    assert _model(root).get(f"{ENTITIES}entities-version")
    entities = _entities(root)
    assert list(entities) == ["/data/meta/entity"]
    entity = entities["/data/meta/entity"]
    assert entity.get("dataset") == "inovasi"
    assert entity.get("create") is not None and entity.get("update") is not None
    binds = _binds(root)
    create = _squash(binds["/data/meta/entity/@create"]["calculate"])
    update = _squash(binds["/data/meta/entity/@update"]["calculate"])
    assert create == "/data/mode_profil='baru'" and update == "/data/mode_profil='ubah'"
    # An update names the chosen innovation, a create a fresh uuid.
    entity_id = _squash(binds["/data/meta/entity/@id"]["calculate"])
    assert entity_id == "if(/data/mode_profil='ubah',/data/inovasi,/data/inovasi_baru_id)"
    assert _squash(binds["/data/inovasi_baru_id"]["calculate"]) == "once(uuid())"
    assert _squash(binds["/data/meta/entity/label"]["calculate"]) == "/data/nama_inovasi"
    # Every property is saved from the top-level field of the same name.
    saved = _saveto(root)
    assert sorted(saved.values()) == sorted(INOVASI_PROPERTIES)
    assert saved == {f"/data/{name}": name for name in INOVASI_PROPERTIES}
    assert "relevant" in binds["/data/opd_lain"]
    # The innovation to update comes from the list, filtered by the OPD.
    csv = _inovasi_csv_instance(root)
    assert csv is not None and csv.get("src") == "jr://file-csv/inovasi.csv"
    itemset = _control(root, "/data/inovasi").find(f"{XF}itemset")
    assert _squash(itemset.get("nodeset")) == "instance('inovasi')/root/item[opd=/data/opd]"
    assert "relevant" in binds["/data/inovasi"]
    label = "instance('inovasi')/root/item[name=/data/inovasi]/label"
    assert [_squash(v) for v in _setvalues(root, "/data/nama_inovasi")] == [label]


def test_visit_registers_unknown_innovations_in_its_repeat(compiled):
    root = _xform(compiled, "jebol_sipera_kunjungan")
    assert _model(root).get(f"{ENTITIES}entities-version") == "2025.1.0"
    entities = _entities(root)
    assert list(entities) == ["/data/inovasi/meta/entity"]
    entity = entities["/data/inovasi/meta/entity"]
    assert entity.get("dataset") == "inovasi"
    assert entity.get("create") is not None and entity.get("update") is None
    binds = _binds(root)
    create = _squash(binds["/data/inovasi/meta/entity/@create"]["calculate"])
    assert create == "../../../inv_terdaftar='tidak'"
    assert _squash(binds["/data/inovasi/meta/entity/label"]["calculate"]) == "../../../inv_nama"
    assert _saveto(root) == {
        "/data/inovasi/inv_opd": "opd",
        "/data/inovasi/inv_opd_lain": "opd_lain",
        "/data/inovasi/inv_tahapan": "tahapan",
        "/data/inovasi/inv_jenis": "jenis",
        "/data/inovasi/inv_bentuk": "bentuk",
        "/data/inovasi/inv_urusan": "urusan_utama",
        "/data/inovasi/inv_uji_coba": "waktu_uji_coba",
        "/data/inovasi/inv_penerapan": "waktu_penerapan",
    }
    assert set(_saveto(root).values()) <= INOVASI_PROPERTIES
    assert _squash(binds["/data/inovasi/inv_opd"]["calculate"]) == "/data/g_kunjungan/opd"
    # A known innovation is chosen from the list, filtered by the OPD visited.
    csv = _inovasi_csv_instance(root)
    assert csv is not None and csv.get("src") == "jr://file-csv/inovasi.csv"
    control = _control(root, "/data/inovasi/inv_entity")
    assert control.tag == f"{XF}select1"
    itemset = control.find(f"{XF}itemset").get("nodeset")
    assert _squash(itemset) == "instance('inovasi')/root/item[opd=/data/g_kunjungan/opd]"
    # inv_nama stays the innovation's name: typed, or the chosen entity's label.
    assert _control(root, "/data/inovasi/inv_nama").tag == f"{XF}input"
    label = "instance('inovasi')/root/item[name=current()/../inv_entity]/label"
    named = [_squash(v) for v in _setvalues(root, "/data/inovasi/inv_nama")]
    assert named and all(label in v for v in named)
    assert "readonly" in binds["/data/inovasi/inv_nama"]


def test_evidence_chooses_the_innovation_from_the_list(compiled):
    root = _xform(compiled, "jebol_sipera_data_dukung")
    assert _entities(root) == {}
    csv = _inovasi_csv_instance(root)
    assert csv is not None and csv.get("src") == "jr://file-csv/inovasi.csv"
    itemset = _control(root, "/data/inovasi").find(f"{XF}itemset").get("nodeset")
    assert _squash(itemset) == "instance('inovasi')/root/item[opd=/data/opd]"
    binds = _binds(root)
    assert "relevant" in binds["/data/inovasi"]
    # The escape: a typed name when the innovation is not listed yet.
    assert _control(root, "/data/nama_inovasi").tag == f"{XF}input"
    assert binds["/data/nama_inovasi"]["required"] == "true()"
    label = "instance('inovasi')/root/item[name=/data/inovasi]/label"
    named = [_squash(v) for v in _setvalues(root, "/data/nama_inovasi")]
    assert named and all(label in v for v in named)


def test_evidence_needs_a_file_a_photo_or_a_link(compiled):
    binds = _binds(_xform(compiled, "jebol_sipera_data_dukung"))
    # The link is required exactly when there is no file and no photo.
    assert _squash(binds["/data/tautan"]["required"]) == (
        "/data/berkas=''andcount(/data/foto_bukti)=0"
    )


def test_a_visit_photo_is_required_unless_the_evidence_is_missing(compiled):
    binds = _binds(_xform(compiled, "jebol_sipera_kunjungan"))
    required = [b["required"] for path, b in binds.items() if path.endswith("/bukti_foto")]
    assert [_squash(r) for r in required] == ["../bukti_status!='belum'"]


def test_instance_names_show_opd_names(compiled):
    for form_id in EXPECTED:
        root = _xform(compiled, form_id)
        name = next(
            b["calculate"] for path, b in _binds(root).items() if path.endswith("/instanceName")
        )
        assert "jr:choice-name(" in name, form_id


# --- the `petugas` entity list (kept by managers, read by the visit form) -----------------------


def test_visit_chooses_officers_from_the_petugas_list(compiled):
    """Who came and who follows up each innovation are chosen from `petugas.csv` (the list);
    their names are stored beside their ids. No form carries placeholder officers any more."""
    root = _xform(compiled, "jebol_sipera_kunjungan")
    csv = next(i for i in _model(root).findall(f"{XF}instance") if i.get("id") == "petugas")
    assert csv.get("src") == "jr://file-csv/petugas.csv"
    binds = _binds(root)
    came = _control(root, "/data/g_kunjungan/petugas")
    assert came.tag == f"{XF}select"
    assert _squash(came.find(f"{XF}itemset").get("nodeset")) == "instance('petugas')/root/item"
    # Required unless the officers present are typed (a list not filled yet blocks no visit).
    assert _squash(binds["/data/g_kunjungan/petugas"]["required"]) == (
        "/data/g_kunjungan/petugas_lain=''"
    )
    assert _squash(binds["/data/g_kunjungan/petugas_nama"]["calculate"]) == (
        "join(',',instance('petugas')/root/item[selected(/data/g_kunjungan/petugas,name)]/label)"
    )
    # The follow-up of each innovation: its owner at the OPD, the officer, the date.
    follows = _control(root, "/data/inovasi/inv_tl_petugas")
    assert follows.tag == f"{XF}select1"
    assert _squash(follows.find(f"{XF}itemset").get("nodeset")) == "instance('petugas')/root/item"
    assert _squash(binds["/data/inovasi/inv_tl_petugas_nama"]["calculate"]) == (
        "instance('petugas')/root/item[name=current()/../inv_tl_petugas]/label"
    )
    given = "../inv_rekomendasi!=''"
    assert _squash(binds["/data/inovasi/inv_tl_pj"]["required"]) == given
    tl_date = binds["/data/inovasi/inv_tl_tanggal"]
    assert (tl_date["type"], _squash(tl_date["required"])) == ("date", given)
    assert _squash(tl_date["constraint"]) == ".>/data/g_kunjungan/tgl_kunjungan"
    assert binds["/data/g_penutup/tgl_tindak_lanjut"]["required"] == "true()"  # kept
    for form_id in EXPECTED:
        assert _choices(form_id, "petugas") == [], form_id
        assert "Petugas 1" not in compiled[form_id].xml.decode(), form_id


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
    assert catalogue.load_method().sid_max == 111


def test_score_is_bobot_times_nilai():
    by_code = {i.code: i for i in catalogue.load_indicators()}
    assert catalogue.score(by_code["ind16"], 2) == 6.0
    assert catalogue.score(by_code["ind35"], 3) == 12.0
    assert catalogue.score(by_code["ind20"], 1) == 1.0
    with pytest.raises(ValueError):
        catalogue.score(by_code["ind16"], 4)


def test_method_2023():
    method = catalogue.load_method(2023)
    assert method.edition == 2023
    assert method.sid_divisor_min == 10
    assert (method.spd_max, method.max_total) == (63, 250)
    # 250 = SPD 63 + SID 111 + skor jumlah inovasi 76; 2023 gives no rule for the count term.
    assert method.spd_max + method.sid_max + method.count_term.max == method.max_total
    assert method.count_term.rule is None
    assert [b.label for b in method.bands] == [
        "Sangat Inovatif",
        "Inovatif",
        "Kurang Inovatif",
        "Tidak Dapat Dinilai",
    ]
    assert (method.portal_limits.pdf_max_bytes, method.portal_limits.video_max_minutes) == (
        2 * 1024 * 1024,
        5,
    )


def test_a_method_file_with_a_wrong_key_or_type_is_refused():
    good = catalogue.files("forms").joinpath("library/iid_method_2023.json").read_text()
    assert catalogue.parse_method(good).edition == 2023
    with pytest.raises(ValueError, match="divisor_min"):
        catalogue.parse_method(good.replace('"sid_divisor_min": 10', '"sid_divisor_min": "10"'))
    with pytest.raises(ValueError, match="sid_divisr"):
        catalogue.parse_method(good.replace('"sid_divisor_min"', '"sid_divisr"'))


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
