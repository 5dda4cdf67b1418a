"""Reading submission XML: ids, values by path, attachments, and refusal of hostile XML."""

import pytest

from forms.errors import SubmissionInvalid
from forms.instance import (
    GeoPoint,
    is_safe_attachment_name,
    parse_geopoint,
    read_instance,
    value_at,
    values_at,
)
from tests.collect import instance_xml

BODY = (
    "<nama>Budi</nama><foto_utama>a.jpg</foto_utama>"
    "<bukti><bukti_foto>b.jpg</bukti_foto></bukti><bukti><bukti_foto>c.jpg</bukti_foto></bukti>"
    "<bukti><bukti_foto/></bukti>"
)


def test_reads_ids_name_and_values_with_repeats_as_lists():
    instance = read_instance(
        instance_xml("f", "3", "uuid:1", BODY, deprecated_id="uuid:0", instance_name="Budi")
    )
    assert (instance.form_id, instance.version, instance.instance_id) == ("f", "3", "uuid:1")
    assert (instance.deprecated_id, instance.instance_name) == ("uuid:0", "Budi")
    assert instance.values["nama"] == "Budi"
    assert [row["bukti_foto"] for row in instance.values["bukti"]] == ["b.jpg", "c.jpg", ""]


def test_attachment_names_follow_binary_paths_into_repeats():
    instance = read_instance(instance_xml("f", "1", "uuid:1", BODY))
    names = instance.attachment_names(frozenset({"/foto_utama", "/bukti/bukti_foto"}))
    assert sorted(names) == ["a.jpg", "b.jpg", "c.jpg"]
    assert instance.attachment_names(frozenset()) == []


def test_orx_meta_namespace_is_read():
    xml = (
        b'<data xmlns:orx="http://openrosa.org/xforms" id="f"><orx:meta>'
        b"<orx:instanceID>uuid:9</orx:instanceID></orx:meta></data>"
    )
    assert read_instance(xml).instance_id == "uuid:9"


@pytest.mark.parametrize(
    "xml, message",
    [
        (b"", "empty"),
        (b"<data id='f'><a></data>", "not well-formed"),
        (b"<data><meta><instanceID>uuid:1</instanceID></meta></data>", "no id attribute"),
        (b"<data id='f'><meta/></data>", "no meta/instanceID"),
        (b'<!DOCTYPE data [<!ENTITY e "x">]><data id="f"/>', "DOCTYPE"),
        (b"<data id='f'>" + b"<a>" * 100 + b"</a>" * 100 + b"</data>", "nested deeper"),
        ("<data id='f'><n>\u00e9</n></data>".encode("latin-1"), "not well-formed"),
    ],
)
def test_bad_xml_is_refused_with_a_reason(xml, message):
    with pytest.raises(SubmissionInvalid, match=message):
        read_instance(xml)


def test_size_limit_is_checked_before_parsing():
    with pytest.raises(SubmissionInvalid, match="larger than"):
        read_instance(instance_xml("f", "1", "uuid:1", "<a>x</a>" * 1000), max_bytes=1000)


@pytest.mark.parametrize(
    "name, safe",
    [
        ("foto.jpg", True),
        ("1712345678901.jpg", True),
        ("a/b.jpg", False),
        ("..", False),
        ("a\\b", False),
        ("a\x00b", False),
        ("", False),
        ("x" * 300, False),
    ],
)
def test_safe_attachment_names(name, safe):
    assert is_safe_attachment_name(name) is safe


def test_parse_geopoint():
    # moved from tests/storage/test_photos.py (photos.parse_geopoint is now this one parser)
    assert parse_geopoint("-0.68 100.78 250 5") == GeoPoint(-0.68, 100.78, 250.0, 5.0)
    assert parse_geopoint(" -0.68  100.78 ")[:2] == (-0.68, 100.78)
    assert parse_geopoint("-0.68 100.78 tinggi") == GeoPoint(-0.68, 100.78)
    assert parse_geopoint("-0.68 100.78 inf 5") == GeoPoint(-0.68, 100.78, None, 5.0)
    for bad in ("", None, ["1 2"], "1", "abc def", "91 0", "-91 0", "0 180.5", "0 -181", "nan 0"):
        assert parse_geopoint(bad) is None, bad
    assert parse_geopoint("90 -180") == GeoPoint(90.0, -180.0)


def test_value_at_is_the_first_of_values_at():
    values = {"g": {"a": "1"}, "r": [{"b": "x"}, {"b": "y"}]}
    assert value_at(values, ("g", "a")) == "1"
    assert value_at(values, ("r", "b")) == "x" and list(values_at(values, ("r", "b"))) == ["x", "y"]
    assert value_at(values, ("g", "missing")) is None
    assert value_at(values, ("g", "a", "deeper")) is None


def test_a_bare_ampersand_is_text_as_central_reads_it():
    # pyodk's end-to-end suite submits an instanceID holding a bare "&"; Central takes it.
    xml = (
        '<data id="f" version="1"><meta><instanceID>scna+~!@#$%^&*()_+=-✅</instanceID>'
        "</meta><a>x &lt; y &amp; z &#65; &nope; w</a></data>"
    ).encode()
    instance = read_instance(xml)
    assert instance.instance_id == "scna+~!@#$%^&*()_+=-✅"
    assert instance.values["a"] == "x < y & z A &nope; w"
    with pytest.raises(SubmissionInvalid, match="not well-formed"):
        read_instance(b'<data id="f"><meta><instanceID>a&b</instanceID></meta><b></data>')
