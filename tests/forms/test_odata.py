"""OData, pure: the $filter grammar, the EDMX, entity rows, $select, skiptokens and paging."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from forms import odata
from forms.errors import (
    ExpandUnsupported,
    InvalidSkipToken,
    ODataUnsupported,
    SelectUnsupported,
    SelectWithExpand,
    UnknownProperty,
)
from forms.odata import Cursor, ODataInvalid, Record
from forms.odata_filter import (
    And,
    Call,
    Compare,
    Field,
    FilterInvalid,
    Literal,
    Not,
    Or,
    parse_filter,
)
from forms.tabular import RowMeta
from forms.xform import Field as SchemaField
from forms.xform import Schema

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
SUBMITTED = datetime(2024, 5, 1, 3, 4, 5, 678000, tzinfo=UTC)


def _schema() -> Schema:
    fields = [
        ("/nama", "string"),
        ("/umur", "int"),
        ("/skor", "decimal"),
        ("/lokasi", "geopoint"),
        ("/mulai", "dateTime"),
        ("/g", "structure"),
        ("/g/opd", "select1"),
        ("/g/tgl", "date"),
        ("/g/sub", "structure"),
        ("/g/sub/catatan-lain", "string"),
        ("/inovasi", "repeat"),
        ("/inovasi/inv_nama", "string"),
        ("/inovasi/gi", "structure"),
        ("/inovasi/gi/tahap", "string"),
        ("/inovasi/bukti", "repeat"),
        ("/inovasi/bukti/bukti_foto", "binary"),
        ("/meta", "structure"),
        ("/meta/instanceID", "string"),
    ]
    return Schema(
        form_id="odata_uji",
        version="1",
        title="Uji",
        root="data",
        languages=[],
        fields=[SchemaField(p, p.rsplit("/", 1)[1], t) for p, t in fields],
        media=[],
    )


MODEL = odata.model_of(_schema())
VALUES = {
    "nama": "Budi",
    "umur": "42",
    "skor": "3.5",
    "lokasi": "-0.68 100.78 250 5",
    "mulai": "2024-05-01T10:00:00.000+07",
    "g": {"opd": "dinkes", "tgl": "", "sub": ""},
    "inovasi": [
        {
            "inv_nama": "A",
            "gi": {"tahap": "uji"},
            "bukti": [{"bukti_foto": "a1.jpg"}, {"bukti_foto": "a2.jpg"}],
        },
        {"inv_nama": "B", "bukti": {"bukti_foto": "b1.jpg"}},
    ],
    "meta": {"instanceID": "uuid:2"},
}
RECORD = Record(
    7,
    "uuid:1",
    VALUES,
    RowMeta(
        "uuid:1",
        SUBMITTED,
        submitter_id=3,
        submitter_name="Petugas 1",
        attachments_expected=3,
        attachments_present=1,
        edits=1,
        form_version="1",
    ),
)


def sha1(*parts: str) -> str:
    return hashlib.sha1("%%".join(parts).encode()).hexdigest()


def options(table: str = "Submissions", **query: str) -> odata.Options:
    return odata.parse_options(MODEL, MODEL.tables[table], query)


# ---- $filter -------------------------------------------------------------------------------


def test_filter_precedence_not_and_or():
    expr = parse_filter("__id eq 'a' or not __id eq 'b' and __system/submitterId ne 3")
    assert isinstance(expr, Or) and isinstance(expr.right, And)
    assert isinstance(expr.right.left, Not) and isinstance(expr.right.left.operand, Compare)
    grouped = parse_filter("(__id eq 'a' or __id eq 'b') and __system/reviewState eq null")
    assert isinstance(grouped, And) and isinstance(grouped.left, Or)
    assert grouped.right == Compare(
        "eq", Field("__system/reviewState", "string"), Literal(None, "null")
    )


def test_filter_literals_take_the_type_of_their_field():
    day = parse_filter("__system/submissionDate ge 2024-01-31")
    assert day.right == Literal(datetime(2024, 1, 31, tzinfo=UTC), "datetime")
    moment = parse_filter("__system/updatedAt lt 2024-01-31T10:00:00.5+07:00")
    assert moment.right.value == datetime(2024, 1, 31, 3, 0, 0, 500000, tzinfo=UTC)
    assert parse_filter("__system/submitterId eq '5'").right == Literal(5, "int")
    assert parse_filter("__id eq 'it''s'").right == Literal("it's", "string")
    year = parse_filter("year(__system/submissionDate) eq 2024 and month(now()) le 12")
    assert year.left.left == Call("year", (Field("__system/submissionDate", "datetime"),))
    assert parse_filter("day(2024-02-03) eq 3").left.args[0].kind == "datetime"


def test_filter_on_a_repeat_table_names_the_submission_from_root():
    expr = parse_filter("$root/Submissions/__system/reviewState eq 'approved'", subtable=True)
    assert expr.left == Field("__system/reviewState", "string")
    with pytest.raises(FilterInvalid, match=r"\$root/Submissions/__id"):
        parse_filter("__id eq 'x'", subtable=True)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("hello my dear", "field 'hello' at 0"),
        ("3 add 4", "operator 'add' at 2"),
        ("__id EQ 'a'", "operator 'EQ' at 5"),
        ("__id eq 'open", "no closing quote"),
        ("trim(__id) eq 'a'", "function 'trim'"),
        ("year() eq 1", "takes 1 argument"),
        ("year(__id) eq 1", "needs a date"),
        ("__system/submissionDate gt 5", "cannot compare a date and time with 5"),
        ("__system/submissionDate gt 'soon'", "not a valid date"),
        ("__system/reviewState gt null", "null can only be compared"),
        ("__id", "not a condition"),
        ("(__id eq 'a'", "expected ')'"),
        ("__id eq 'a' __id", "unexpected '__id' at 12"),
        ("2024-13-01 eq __system/submissionDate", "not a valid date"),
        ("__id eq 'a' and ~", "unexpected character '~' at 16"),
    ],
)
def test_filter_problems_say_what_and_where(text, reason):
    with pytest.raises(FilterInvalid) as caught:
        parse_filter(text)
    assert reason in str(caught.value)


# ---- documents -----------------------------------------------------------------------------


def test_tables_and_service_document():
    assert list(MODEL.tables) == ["Submissions", "Submissions.inovasi", "Submissions.inovasi.bukti"]
    assert MODEL.tables["Submissions.inovasi"].parent_key == "__Submissions-id"
    assert MODEL.tables["Submissions.inovasi.bukti"].parent_key == "__Submissions-inovasi-id"
    doc = odata.service_document(MODEL, "http://x/v1/projects/1/forms/odata_uji.svc")
    assert doc["@odata.context"] == "http://x/v1/projects/1/forms/odata_uji.svc/$metadata"
    assert doc["value"][1] == {
        "name": "Submissions.inovasi",
        "kind": "EntitySet",
        "url": "Submissions.inovasi",
    }


def test_edmx_types_groups_and_repeats():
    root = ElementTree.fromstring(odata.edmx(MODEL).encode())
    schemas = root.findall(f".//{EDM}Schema")
    assert [c.get("Name") for c in schemas[0].findall(f"{EDM}ComplexType/{EDM}Property")] == list(
        odata.SYSTEM_FIELDS
    )
    user = schemas[1]
    assert user.get("Namespace") == "org.opendatakit.user.odata_uji"
    entity = {e.get("Name"): e for e in user.findall(f"{EDM}EntityType")}
    props = {p.get("Name"): p.get("Type") for p in entity["Submissions"].findall(f"{EDM}Property")}
    assert props["__id"] == "Edm.String"
    assert props["__system"] == "org.opendatakit.submission.metadata"
    assert (props["umur"], props["skor"], props["lokasi"], props["mulai"]) == (
        "Edm.Int64",
        "Edm.Decimal",
        "Edm.GeographyPoint",
        "Edm.DateTimeOffset",
    )
    assert props["g"] == "org.opendatakit.user.odata_uji.g"
    nav = entity["Submissions"].find(f"{EDM}NavigationProperty")
    assert (nav.get("Name"), nav.get("Type")) == (
        "inovasi",
        "Collection(org.opendatakit.user.odata_uji.Submissions.inovasi)",
    )
    bukti = [p.get("Name") for p in entity["Submissions.inovasi.bukti"].findall(f"{EDM}Property")]
    assert bukti == ["__id", "__Submissions-inovasi-id", "bukti_foto"]
    complex_types = {c.get("Name"): c for c in user.findall(f"{EDM}ComplexType")}
    assert set(complex_types) == {"g", "g.sub", "inovasi.gi", "meta"}
    assert complex_types["g.sub"].find(f"{EDM}Property").get("Name") == "catatan_lain"
    assert complex_types["g"].findall(f"{EDM}Property")[1].get("Type") == "Edm.Date"
    sets = [s.get("Name") for s in user.findall(f"{EDM}EntityContainer/{EDM}EntitySet")]
    assert sets == list(MODEL.tables)


# ---- rows ----------------------------------------------------------------------------------


def test_submission_row_is_typed_with_system_and_links():
    [row] = odata.entity_rows(MODEL, MODEL.tables["Submissions"], RECORD, options())
    assert row["__id"] == "uuid:1"
    assert row["__system"]["submissionDate"] == "2024-05-01T03:04:05.678Z"
    assert row["__system"]["submitterId"] == "3" and row["__system"]["edits"] == 1
    assert (row["__system"]["attachmentsPresent"], row["__system"]["attachmentsExpected"]) == (1, 3)
    assert (row["nama"], row["umur"], row["skor"]) == ("Budi", 42, 3.5)
    assert row["lokasi"] == {
        "type": "Point",
        "coordinates": [100.78, -0.68, 250.0],
        "properties": {"accuracy": 5.0},
    }
    assert row["mulai"] == "2024-05-01T10:00:00.000+07:00"
    assert row["g"] == {"opd": "dinkes", "tgl": None, "sub": {"catatan_lain": None}}
    assert row["inovasi@odata.navigationLink"] == "Submissions('uuid%3A1')/inovasi"
    assert "inovasi" not in row and row["meta"] == {"instanceID": "uuid:2"}


def test_wkt_and_expand():
    [row] = odata.entity_rows(
        MODEL, MODEL.tables["Submissions"], RECORD, options(**{"$wkt": "true", "$expand": "*"})
    )
    assert row["lokasi"] == "POINT (100.78 -0.68 250)"
    first, second = row["inovasi"]
    assert first["__id"] == sha1("Submissions#uuid:1", "inovasi#0")
    assert first["gi"] == {"tahap": "uji"}
    assert [b["bukti_foto"] for b in first["bukti"]] == ["a1.jpg", "a2.jpg"]
    assert (
        first["bukti@odata.navigationLink"]
        == f"Submissions('uuid%3A1')/inovasi('{first['__id']}')/bukti"
    )
    assert second["bukti"][0]["__id"] == sha1("Submissions#uuid:1", "inovasi#1", "bukti#0")


def test_repeat_rows_carry_central_ids_and_their_parents():
    rows = odata.entity_rows(
        MODEL, MODEL.tables["Submissions.inovasi"], RECORD, options("Submissions.inovasi")
    )
    assert [(r["__id"], r["__Submissions-id"], r["inv_nama"]) for r in rows] == [
        (sha1("Submissions#uuid:1", "inovasi#0"), "uuid:1", "A"),
        (sha1("Submissions#uuid:1", "inovasi#1"), "uuid:1", "B"),
    ]
    bukti = odata.entity_rows(
        MODEL,
        MODEL.tables["Submissions.inovasi.bukti"],
        RECORD,
        options("Submissions.inovasi.bukti"),
    )
    assert [(r["__Submissions-inovasi-id"], r["bukti_foto"]) for r in bukti] == [
        (rows[0]["__id"], "a1.jpg"),
        (rows[0]["__id"], "a2.jpg"),
        (rows[1]["__id"], "b1.jpg"),
    ]
    assert bukti[2]["__id"] == sha1("Submissions#uuid:1", "inovasi#1", "bukti#0")
    tables = MODEL.tables
    assert odata.count_rows(MODEL, tables["Submissions.inovasi.bukti"], "uuid:1", VALUES) == 3
    assert odata.count_rows(MODEL, tables["Submissions.inovasi"], "uuid:1", {"nama": "x"}) == 0


def test_navigation_links_resolve_to_the_rows_they_name():
    assert odata.resolve(MODEL, "Submissions.inovasi").table.name == "Submissions.inovasi"
    assert odata.resolve(MODEL, "Submissions('uuid:1')") == odata.Target(
        MODEL.tables["Submissions"], "uuid:1"
    )
    assert odata.resolve(MODEL, "Submissions.nope") is None
    inovasi = odata.entity_rows(
        MODEL, MODEL.tables["Submissions.inovasi"], RECORD, options("Submissions.inovasi")
    )
    second = inovasi[1]["__id"]
    [row] = odata.entity_rows(
        MODEL, MODEL.tables["Submissions"], RECORD, options(**{"$expand": "*"})
    )
    link = row["inovasi"][1]["bukti@odata.navigationLink"]  # …/inovasi('<id>')/bukti
    target = odata.resolve(MODEL, link.replace("%3A", ":"))
    assert (target.table.name, target.instance_id, target.match) == (
        "Submissions.inovasi.bukti",
        "uuid:1",
        ("__Submissions-inovasi-id", second),
    )
    bukti = odata.entity_rows(MODEL, target.table, RECORD, options(target.table.name), target.match)
    assert [b["bukti_foto"] for b in bukti] == ["b1.jpg"]
    assert odata.count_rows(MODEL, target.table, "uuid:1", VALUES, target.match) == 1
    one = odata.resolve(MODEL, f"Submissions('uuid:1')/inovasi('{second}')")
    assert one.match == ("__id", second)


def test_select_fields_groups_and_metadata():
    table = MODEL.tables["Submissions"]
    [row] = odata.entity_rows(
        MODEL, table, RECORD, options(**{"$select": "nama, g/opd,__system/reviewState"})
    )
    assert row == {"__system": {"reviewState": None}, "nama": "Budi", "g": {"opd": "dinkes"}}
    [row] = odata.entity_rows(MODEL, table, RECORD, options(**{"$select": "__id,g"}))
    assert row == {
        "__id": "uuid:1",
        "g": {"opd": "dinkes", "tgl": None, "sub": {"catatan_lain": None}},
    }
    rows = odata.entity_rows(
        MODEL,
        MODEL.tables["Submissions.inovasi"],
        RECORD,
        options("Submissions.inovasi", **{"$select": "gi/tahap"}),
    )
    assert rows[0] == {"gi": {"tahap": "uji"}}
    with pytest.raises(ODataInvalid) as unknown:
        options(**{"$select": "nope"})
    assert type(unknown.value) is UnknownProperty
    with pytest.raises(ODataInvalid) as nested:
        options(**{"$select": "inovasi/inv_nama"})
    assert type(nested.value) is SelectUnsupported


@pytest.mark.parametrize(
    "query, error",
    [
        ({"$top": "-1"}, ODataInvalid),
        ({"$count": "maybe"}, ODataInvalid),
        ({"$orderby": "__id"}, ODataUnsupported),
        ({"$expand": "inovasi"}, ExpandUnsupported),
        ({"$expand": "*", "$select": "nama"}, SelectWithExpand),
        ({"$skiptoken": "01!!"}, InvalidSkipToken),
        ({"$skiptoken": "zz"}, InvalidSkipToken),
    ],
)
def test_unusable_options_are_refused_with_central_codes(query, error):
    """Each is its own class; server.errors.TABLE gives it Central's status and code."""
    with pytest.raises(ODataInvalid) as caught:
        options(**query)
    assert type(caught.value) is error


def test_skiptoken_round_trip():
    token = odata.encode_skiptoken(Cursor(123, 4))
    assert token.startswith("01") and odata.decode_skiptoken(token) == Cursor(123, 4)
    counted = odata.encode_skiptoken(Cursor(5, 1, count=40))
    assert odata.decode_skiptoken(counted) == Cursor(5, 1, 40)
    parsed = options(**{"$top": "5", "$count": "True", "$skiptoken": token})
    assert (parsed.top, parsed.count, parsed.cursor) == (5, True, Cursor(123, 4))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


DEEP = b"[" * 100_000 + b"]" * 100_000
BAD_SKIPTOKENS = {
    "empty": "",
    "version-only": "01",
    "other-version": "02" + _b64(b'{"id":1,"rows":0}'),
    "nested-arrays": "01" + _b64(DEEP),
    "nested-in-a-field": "01" + _b64(b'{"id":' + DEEP + b',"rows":0}'),
    "nested-unknown-field": "01" + _b64(b'{"id":1,"rows":0,"x":' + DEEP + b"}"),
    "unknown-field": "01" + _b64(b'{"id":1,"rows":0,"x":1}'),
    "missing-rows": "01" + _b64(b'{"id":1}'),
    "array": "01" + _b64(b"[1,0]"),
    "id-string": "01" + _b64(b'{"id":"1","rows":0}'),
    "id-bool": "01" + _b64(b'{"id":true,"rows":0}'),
    "id-float": "01" + _b64(b'{"id":1.0,"rows":0}'),
    "id-huge": "01" + _b64(b'{"id":' + b"9" * 5000 + b',"rows":0}'),
    "id-2^63": "01" + _b64(b'{"id":9223372036854775808,"rows":0}'),
    "rows-negative": "01" + _b64(b'{"id":1,"rows":-1}'),
    "count-negative": "01" + _b64(b'{"id":1,"rows":0,"count":-1}'),
    "not-base64": "01!!!!",
    "non-ascii": "01\u00e9\u00e9",
    "nul": "01\x00",
    "one-char-too-many": "01AAAAA",
    "not-utf8": "01" + _b64(b'{"id":1,"rows":0,"x":"\xff"}'),
    "not-json": "01" + _b64(b"nope"),
    "trailing": "01" + _b64(b'{"id":1,"rows":0} 1'),
    "very-long": "01" + "A" * 1_000_000,
}


@pytest.mark.parametrize("name", BAD_SKIPTOKENS)
def test_every_malformed_skiptoken_is_odata_invalid(name):
    """Whatever a client sends as `$skiptoken` is a Cursor or 400.35: no RecursionError
    (json.loads recursed into `[[[[…`), TypeError, OverflowError or anything else."""
    with pytest.raises(ODataInvalid) as caught:
        options(**{"$skiptoken": BAD_SKIPTOKENS[name]})
    assert type(caught.value) is InvalidSkipToken and "$skiptoken" in str(caught.value)


def test_skiptokens_in_either_base64_alphabet_and_padded_are_read():
    """`+`/`/` and `=` padding: what a client may make of the token when it re-encodes it."""
    cursor = Cursor(2**40 + 12345, 7, count=2**33)
    token = odata.encode_skiptoken(cursor)
    body = token[2:]
    assert token == "01" + _b64(b'{"id":1099511640121,"rows":7,"count":8589934592}')
    for variant in (body, body + "=" * (-len(body) % 4), body.replace("-", "+").replace("_", "/")):
        assert odata.decode_skiptoken("01" + variant) == cursor


@pytest.mark.parametrize("depth, nested", [(50, False), (51, True), (999, True)])
def test_a_filter_of_nots_is_bounded_like_parentheses(depth, nested):
    """`not` nests like a parenthesis does and counts toward MAX_DEPTH (it once did not: 999
    of them, inside the 4000 characters, were a RecursionError)."""
    text = "not " * depth + "true"
    if nested:
        with pytest.raises(FilterInvalid, match="nested too deeply"):
            parse_filter(text)
    else:
        parse_filter(text)


@pytest.mark.parametrize(
    "literal",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00", "'9999-12-31T23:00:00-01:00'"],
)
def test_a_datetime_past_the_calendar_in_utc_is_refused(literal):
    """Valid in its own offset, out of datetime's range in UTC (where the database compares):
    a 400, not an OverflowError when the query is made."""
    with pytest.raises(FilterInvalid, match="out of range"):
        parse_filter(f"__system/submissionDate gt {literal}")
    moment = parse_filter("__system/submissionDate gt 2024-05-01T08:00:00+07:00").right.value
    assert moment == datetime(2024, 5, 1, 1, tzinfo=UTC) and moment.utcoffset() == timedelta(0)


def test_pager_walks_repeat_rows_across_pages_exactly_once():
    table = MODEL.tables["Submissions.inovasi.bukti"]
    records = [Record(i, f"uuid:{i}", VALUES) for i in (9, 8, 7)]  # 3 rows each, newest first
    seen, cursor = [], None
    for _ in range(10):
        opts = odata.Options(top=2, cursor=cursor)
        pager = odata.Pager(MODEL, table, opts)
        start = [r for r in records if cursor is None or r.id <= cursor.submission_id]
        seen += list(pager.rows(start))
        cursor = pager.next_cursor
        if cursor is None:
            break
    every = [row for r in records for row in odata.entity_rows(MODEL, table, r, odata.Options())]
    assert [r["__id"] for r in seen] == [r["__id"] for r in every] and len(seen) == 9


def test_feed_writes_one_json_document_in_chunks(monkeypatch):
    import json

    monkeypatch.setattr(odata, "CHUNK_BYTES", 64)
    rows = [{"__id": f"uuid:{i}", "teks": "x" * 50} for i in range(5)]
    chunks = list(
        odata.feed(
            "http://x/$metadata#Submissions", iter(rows), count=5, next_link=lambda: "http://x/next"
        )
    )
    assert len(chunks) > 2
    body = json.loads(b"".join(chunks))
    assert body["@odata.count"] == 5 and body["value"] == rows
    assert body["@odata.nextLink"] == "http://x/next"
