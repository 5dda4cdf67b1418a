"""forms.tabular (rows and columns as Central's briefcase.js makes them) and the writers of
forms.exports, fed inline rows: no database, no server."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from forms.exports import (
    MediaRef,
    safe_part,
    sanitize_filename,
    write_csv,
    write_csv_zip,
    write_geojson,
    write_media_zip,
    write_xlsx,
)
from forms.tabular import Layout, RowMeta, iso_timestamp
from forms.xform import Choice, Field, Schema

FIELDS = [
    Field("/nama", "nama", "string", {"Indonesian (id)": "Nama"}),
    Field("/g", "g", "structure"),
    Field("/g/tanggal", "tanggal", "date"),
    Field("/g/lokasi", "lokasi", "geopoint"),
    Field("/g/pilihan", "pilihan", "select", choices=[Choice("a"), Choice("b"), Choice("c")]),
    Field("/g/r", "r", "repeat"),
    Field("/g/r/x", "x", "int"),
    Field("/g/r/h", "h", "structure"),
    Field("/g/r/h/z", "z", "string"),
    Field("/g/r/s", "s", "repeat"),
    Field("/g/r/s/y", "y", "string"),
    Field("/g/r/s/foto", "foto", "binary", media_type="image/*"),
    Field("/meta", "meta", "structure"),
    Field("/meta/instanceID", "instanceID", "string"),
]
SCHEMA = Schema("f", "1", "F", "data", [], FIELDS, [])
VALUES = {
    "nama": 'Budi, "B"',
    "g": {
        "tanggal": "2026-01-05",
        "lokasi": "-0.68 100.78 250 5",
        "pilihan": "a c",
        "r": [
            {"x": "1", "h": {"z": "zz"}, "s": [{"y": "p"}, {"y": "q", "foto": "q.jpg"}]},
            {"x": "2", "s": {"y": "only"}},
        ],
    },
    "meta": {"instanceID": "uuid:2"},
}
META = RowMeta(
    "uuid:1",
    datetime(2026, 1, 5, 3, 4, 5, 678901, tzinfo=UTC),
    7,
    "Petugas 1",
    1,
    2,
    "approved",
    "collect:abc",
    1,
    "2026010101",
)

ROOT_CSV = '''\
SubmissionDate,nama,g-tanggal,g-lokasi-Latitude,g-lokasi-Longitude,g-lokasi-Altitude,g-lokasi-Accuracy,g-pilihan,meta-instanceID,KEY,SubmitterID,SubmitterName,AttachmentsPresent,AttachmentsExpected,Status,ReviewState,DeviceID,Edits,FormVersion
2026-01-05T03:04:05.678Z,"Budi, ""B""",2026-01-05,-0.68,100.78,250,5,a c,uuid:2,uuid:1,7,Petugas 1,1,2,,approved,collect:abc,1,2026010101
'''
R_CSV = """\
x,h-z,PARENT_KEY,KEY
1,zz,uuid:1,uuid:1/g/r[1]
2,,uuid:1,uuid:1/g/r[2]
"""
S_CSV = """\
y,foto,PARENT_KEY,KEY
p,,uuid:1/g/r[1],uuid:1/g/r[1]/s[1]
q,q.jpg,uuid:1/g/r[1],uuid:1/g/r[1]/s[2]
only,,uuid:1/g/r[2],uuid:1/g/r[2]/s[1]
"""


def as_csv(layout: Layout, *submissions: tuple[RowMeta, Any]) -> dict[str, str]:
    """Every table of the layout as CSV text, keyed by its file name."""
    outs = [io.StringIO() for _ in layout.tables]
    writers = [csv.writer(out, lineterminator="\n") for out in outs]
    for writer, table in zip(writers, layout.tables):
        writer.writerow(table.header)
    for meta, values in submissions:
        for index, row in layout.rows(meta, values):
            writers[index].writerow(row)
    return {f"{t.name}.csv": out.getvalue() for t, out in zip(layout.tables, outs)}


# ---- tabular -----------------------------------------------------------------------------------


def test_tables_columns_and_keys_are_centrals():
    assert as_csv(Layout(SCHEMA), (META, VALUES)) == {
        "f.csv": ROOT_CSV,
        "f-r.csv": R_CSV,
        "f-s.csv": S_CSV,
    }


def test_without_group_paths_columns_are_field_names():
    header = Layout(SCHEMA, group_paths=False).root.header
    assert header[:9] == [
        "SubmissionDate",
        "nama",
        "tanggal",
        "lokasi-Latitude",
        "lokasi-Longitude",
        "lokasi-Altitude",
        "lokasi-Accuracy",
        "pilihan",
        "instanceID",
    ]
    assert Layout(SCHEMA, group_paths=False).tables[1].header == ["x", "z", "PARENT_KEY", "KEY"]


def test_split_select_multiples_adds_a_0_or_1_column_per_choice():
    layout = Layout(SCHEMA, split_select_multiples=True)
    empty = {"g": {"lokasi": "-0.5 100.5"}}
    text = as_csv(layout, (META, VALUES), (META, empty))["f.csv"].splitlines()
    assert text[0].startswith(
        "SubmissionDate,nama,g-tanggal,g-lokasi-Latitude,"
        "g-lokasi-Longitude,g-lokasi-Altitude,g-lokasi-Accuracy,g-pilihan,"
        "g-pilihan/a,g-pilihan/b,g-pilihan/c,meta-instanceID,KEY,"
    )
    assert ",a c,1,0,1,uuid:2,uuid:1," in text[1]
    # Missing answers leave the split columns at 0 (Central's default); a short geopoint
    # fills the columns it has.
    assert text[2].startswith("2026-01-05T03:04:05.678Z,,,-0.5,100.5,,,,0,0,0,,uuid:1,")


def test_repeats_with_the_same_name_get_numbered_files():
    fields = [
        Field("/a", "a", "repeat"),
        Field("/a/foto", "foto", "string"),
        Field("/b", "b", "structure"),
        Field("/b/foto", "foto", "repeat"),
        Field("/b/foto/c", "c", "string"),
        Field("/c", "c", "repeat"),
        Field("/c/foto", "foto", "repeat"),
        Field("/c/foto/d", "d", "string"),
    ]
    layout = Layout(Schema("f", "1", "F", "data", [], fields, []))
    assert [t.name for t in layout.tables] == ["f", "f-a", "f-foto~1", "f-c", "f-foto~2"]
    assert layout.root.header == [
        "SubmissionDate",
        "KEY",
        "SubmitterID",
        "SubmitterName",
        "AttachmentsPresent",
        "AttachmentsExpected",
        "Status",
        "ReviewState",
        "DeviceID",
        "Edits",
        "FormVersion",
    ]
    assert layout.tables[3].header == ["PARENT_KEY", "KEY"]


def test_empty_repeat_element_is_one_empty_row_and_absent_repeat_none():
    values = {"g": {"r": ""}}
    tables = as_csv(Layout(SCHEMA), (META, values), (META, {}))
    assert tables["f-r.csv"] == "x,h-z,PARENT_KEY,KEY\n,,uuid:1,uuid:1/g/r[1]\n"
    assert tables["f-s.csv"] == "y,foto,PARENT_KEY,KEY\n"


def test_root_only_layout_has_no_repeat_tables():
    layout = Layout(SCHEMA, root_only=True)
    assert len(layout.tables) == 1
    assert as_csv(layout, (META, VALUES))["f.csv"] == ROOT_CSV


def test_submission_date_is_javascripts_iso_string():
    assert (
        iso_timestamp(datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC))
        == "2026-03-01T23:59:59.999Z"
    )


def test_unreviewed_submission_without_submitter_leaves_those_columns_empty():
    meta = RowMeta("uuid:9", META.created_at)
    row = Layout(SCHEMA).rows(meta, {})[0][1]
    assert row[-10:] == ["uuid:9", "", "", "0", "0", "", "", "", "0", ""]


# ---- writers -----------------------------------------------------------------------------------


@dataclass
class Rec:
    """A record as storage.odata.SubmissionRow gives it to the writers."""

    meta: RowMeta
    values: dict[str, Any]
    attachments: tuple[MediaRef, ...] = ()
    instance_name: str | None = None

    @property
    def instance_id(self) -> str:
        return self.meta.instance_id

    @property
    def created_at(self) -> datetime:
        return self.meta.created_at


@dataclass
class Counted:
    """An iterator that counts what was taken from it, standing for the storage reader."""

    items: list[Any]
    taken: int = 0
    seen_at_first_chunk: list[int] = field(default_factory=list)

    def __iter__(self):
        for item in self.items:
            self.taken += 1
            yield item


def _many(count: int) -> list[Rec]:
    import random

    rng = random.Random(7)
    records = []
    for i in range(count):
        noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(200))
        values = {**VALUES, "nama": noise}
        records.append(
            Rec(
                RowMeta(f"uuid:{i}", META.created_at),
                values,
                (MediaRef("q.jpg", "ab" * 32, 100_000),),
                f"Budi {i}",
            )
        )
    return records


@pytest.mark.parametrize("writer", ["csv", "csv_zip", "xlsx", "geojson", "media"])
def test_first_chunk_leaves_before_the_records_are_exhausted(writer):
    records = Counted(_many(1000))
    layout = Layout(SCHEMA, root_only=writer in ("csv", "geojson"))
    photo = b"\xff" * 2_000
    stream = {
        "csv": lambda: write_csv(layout, records),
        "csv_zip": lambda: write_csv_zip(layout, records, open_blob=lambda sha: [photo]),
        "xlsx": lambda: write_xlsx(layout, records),
        "geojson": lambda: write_geojson(layout, records),
        "media": lambda: write_media_zip(
            SCHEMA, records, open_blob=lambda sha: [photo], no_opd_folder="tanpa_opd"
        ),
    }[writer]()
    first = next(stream)
    assert first and records.taken < len(records.items) / 2, records.taken
    rest = b"".join(stream)
    assert records.taken == len(records.items)
    assert max(len(first), 1) <= 2 * 64 * 1024 and rest


def test_csv_zip_holds_every_table_and_the_media_once():
    records = [
        Rec(META, VALUES, (MediaRef("q.jpg", "aa" * 32, 3),)),
        Rec(RowMeta("uuid:3", META.created_at), {}, (MediaRef("q.jpg", "aa" * 32, 3),)),
    ]
    blobs = {"aa" * 32: b"JPG"}
    data = b"".join(write_csv_zip(Layout(SCHEMA), records, open_blob=lambda sha: [blobs[sha]]))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.namelist() == ["f.csv", "f-r.csv", "f-s.csv", "media/q.jpg"]
    assert archive.read("f-s.csv").decode() == S_CSV
    assert archive.read("media/q.jpg") == b"JPG"
    assert archive.testzip() is None


def test_a_lost_blob_is_listed_not_fatal():
    def open_blob(sha: str) -> list[bytes]:
        if sha == "bb" * 32:
            raise KeyError(sha)
        return [b"JPG"]

    records = [
        Rec(META, VALUES, (MediaRef("q.jpg", "aa" * 32, 3), MediaRef("lost.jpg", "bb" * 32, 3)))
    ]
    csv_zip = zipfile.ZipFile(
        io.BytesIO(b"".join(write_csv_zip(Layout(SCHEMA), records, open_blob=open_blob)))
    )
    assert csv_zip.namelist()[-2:] == ["media/q.jpg", "missing-files.txt"]
    assert csv_zip.read("missing-files.txt") == f"lost.jpg\t{'bb' * 32}\n".encode()
    values = {"g": {"r": {"s": [{"foto": "lost.jpg"}, {"foto": "q.jpg"}]}}}
    photos = zipfile.ZipFile(
        io.BytesIO(
            b"".join(
                write_media_zip(
                    SCHEMA,
                    [Rec(META, values, records[0].attachments)],
                    open_blob=open_blob,
                    no_opd_folder="tanpa_opd",
                )
            )
        )
    )
    assert photos.namelist() == ["tanpa_opd/2026-01-05_1_foto_2.jpg", "missing-files.txt"]


def test_geojson_has_a_point_feature_per_located_submission():
    records = [Rec(META, VALUES), Rec(RowMeta("uuid:8", META.created_at), {"g": {}})]
    body = json.loads(b"".join(write_geojson(Layout(SCHEMA, root_only=True), records)))
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 1
    feature = body["features"][0]
    assert feature["id"] == "uuid:1"
    assert feature["geometry"] == {"type": "Point", "coordinates": [100.78, -0.68, 250.0]}
    assert feature["properties"]["nama"] == 'Budi, "B"'
    assert feature["properties"]["ReviewState"] == "approved"


def test_media_names_are_safe_and_unique():
    hostile = [
        "../../etc/passwd",
        "..",
        "C:\\Windows\\x",
        "Dinas Kesehatan — Ä",
        "",
        None,
        "a" * 400,
        "Budi",
        "Budi",
    ]
    records = [
        Rec(
            RowMeta(f"uuid:../{i}", META.created_at),
            {"g": {"r": {"s": [{"foto": "1.jpg"}, {"foto": "2.jpg"}]}}},
            (
                MediaRef("1.jpg", "aa" * 32, 1),
                MediaRef("2.jpg", "aa" * 32, 1),
                MediaRef("unrelated.jpg", "aa" * 32, 1),
            ),
            name,
        )
        for i, name in enumerate(hostile)
    ]
    data = b"".join(
        write_media_zip(SCHEMA, records, open_blob=lambda sha: [b"x"], no_opd_folder="tanpa_opd")
    )
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert len(names) == len(set(names)) == 2 * len(hostile)
    pattern = re.compile(r"tanpa_opd/2026-01-05_[A-Za-z0-9_-]{1,60}_foto_[12](~\d+)?\.jpg")
    assert all(pattern.fullmatch(n) for n in names), names
    assert "tanpa_opd/2026-01-05_etc_passwd_foto_1.jpg" in names
    assert "tanpa_opd/2026-01-05_Dinas_Kesehatan_A_foto_2.jpg" in names
    assert "tanpa_opd/2026-01-05_Budi_foto_1~2.jpg" in names


def test_name_helpers_never_make_a_path():
    assert safe_part("../../x", 60) == "x" and safe_part("..", 60) == ""
    assert sanitize_filename("../a:b?.jpg") == "..ab.jpg" and sanitize_filename("..") == ""
    assert sanitize_filename("con.txt") == "" and sanitize_filename("foto. ") == "foto"


def test_xlsx_has_typed_cells_and_a_sheet_per_table():
    import openpyxl

    book = openpyxl.load_workbook(
        io.BytesIO(
            b"".join(
                write_xlsx(
                    Layout(SCHEMA),
                    [Rec(META, VALUES), Rec(RowMeta("uuid:3", META.created_at), {"nama": "=1+1"})],
                )
            )
        )
    )
    assert book.sheetnames == ["f", "r", "s"]
    header, first, second = book["f"].iter_rows(values_only=True)
    row = dict(zip(header, first))
    assert row["SubmissionDate"] == datetime(2026, 1, 5, 3, 4, 5, 679000)  # Excel keeps ms
    assert row["nama"] == 'Budi, "B"' and row["g-tanggal"] == datetime(2026, 1, 5)
    assert row["g-lokasi-Latitude"] == -0.68 and row["SubmitterID"] == 7
    assert row["ReviewState"] == "approved" and row["KEY"] == "uuid:1"
    assert dict(zip(header, second))["nama"] == "=1+1"  # text, never a formula
    assert book["f"]["B3"].data_type == "s"
    assert dict(zip(header, second))["ReviewState"] == "received"
    assert book["f"].freeze_panes == "A2"
    assert [r[:2] for r in book["r"].iter_rows(values_only=True)] == [
        ("x", "h-z"),
        (1, "zz"),
        (2, None),
    ]
    assert len(list(book["s"].iter_rows())) == 4


def test_xlsx_tables_past_the_row_limit_go_on_in_another_sheet():
    import openpyxl

    records = [Rec(RowMeta(f"uuid:{i}", META.created_at), VALUES) for i in range(5)]
    book = openpyxl.load_workbook(
        io.BytesIO(b"".join(write_xlsx(Layout(SCHEMA), records, max_rows=3)))
    )
    # 5 root rows at 2 a sheet; 10 rows of `r` and 15 of `s` likewise.
    assert book.sheetnames == [
        "f",
        "f (2)",
        "f (3)",
        "r",
        "r (2)",
        "r (3)",
        "r (4)",
        "r (5)",
        "s",
        "s (2)",
        "s (3)",
        "s (4)",
        "s (5)",
        "s (6)",
        "s (7)",
        "s (8)",
    ]
    keys = [
        row[-10]
        for name in ("f", "f (2)", "f (3)")
        for row in list(book[name].iter_rows(values_only=True))[1:]
    ]
    assert keys == [f"uuid:{i}" for i in range(5)]
    exact = list(write_xlsx(Layout(SCHEMA), records[:4], max_rows=3))
    assert openpyxl.load_workbook(io.BytesIO(b"".join(exact))).sheetnames[:3] == [
        "f",
        "f (2)",
        "r",
    ]  # a full last sheet: no empty one after it
