"""Reading XForms into a schema: fields, types, labels, choices, media."""

import pytest

from forms.compile import compile_xlsform
from forms.errors import XFormInvalid, XLSFormInvalid
from forms.xform import Schema, read_xform
from tests.factories import DATA


def _schema(name: str) -> Schema:
    return read_xform(compile_xlsform((DATA / f"{name}.md").read_bytes(), f"{name}.md").xml)


def test_fields_types_labels_and_repeats():
    schema = _schema("foto_sederhana")
    assert (schema.form_id, schema.version, schema.title) == (
        "foto_sederhana",
        "1",
        "Foto sederhana",
    )
    types = {f.path: f.type for f in schema.fields}
    assert types["/nama"] == "string" and types["/lokasi"] == "geopoint"
    assert types["/bukti"] == "repeat" and types["/bukti/bukti_foto"] == "binary"
    assert schema.binary_paths == {"/foto_utama", "/bukti/bukti_foto"}
    assert schema.field("/nama").labels == {"Indonesian (id)": "Nama", "English (en)": "Name"}
    assert schema.languages == ["Indonesian (id)", "English (en)"]


def test_media_references_are_expected_attachments():
    assert [(m.name, m.kind) for m in _schema("foto_sederhana").media] == [("logo.png", "image")]
    assert _schema("tanpa_media").media == []


def test_choices_come_from_secondary_instances_with_labels():
    library = DATA.parent.parent / "forms" / "library" / "jebol_sipera_kunjungan.xlsx"
    schema = read_xform(compile_xlsform(library.read_bytes(), library.name).xml)
    opd = schema.field("/g_kunjungan/opd")
    assert opd.type == "select1" and len(opd.choices) == 28
    assert opd.choices[0].value == "setda"
    assert opd.choices[0].labels["Indonesian (id)"] == "Sekretariat Daerah"
    officers = schema.field("/g_kunjungan/petugas")
    assert (officers.type, officers.itemset_file) == ("select", "petugas.csv")
    assert schema.field("/inovasi/inv_tl_petugas").itemset_file == "petugas.csv"
    assert schema.field("/g_kunjungan/petugas_nama").type == "string"


def test_schema_round_trips_through_json():
    schema = _schema("foto_sederhana")
    assert Schema.from_json(schema.to_json()) == schema


@pytest.mark.parametrize(
    "xml, message",
    [
        (b"<html/>", "root element must be h:html"),
        (b'<h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:head/></h:html>', "no h:head/model"),
        (b"<!DOCTYPE x><h:html/>", "DOCTYPE"),
    ],
)
def test_bad_xforms_are_refused(xml, message):
    with pytest.raises(XFormInvalid, match=message):
        read_xform(xml)


def test_xlsform_errors_carry_pyxforms_message():
    with pytest.raises(XLSFormInvalid, match="choices sheet"):
        compile_xlsform((DATA / "rusak.md").read_bytes(), "rusak.md")


def test_non_spreadsheet_bytes_are_refused():
    with pytest.raises(XLSFormInvalid, match="not a spreadsheet"):
        compile_xlsform(b"\x89PNG\r\n", "form.xlsx")
