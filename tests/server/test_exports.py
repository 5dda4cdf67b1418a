"""The export routes (CSV zip, CSV, XLSX, GeoJSON, media ZIP) and `jebol export`, on every
backend, through the real app. One small world per backend: the photo test form and the
shipped visit form, with reviewed, edited, deleted and hostile-named submissions."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from server.cli import main
from storage import forms as form_store
from storage import roles, submissions, users
from storage.models import Submission
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import LIBRARY_VERSION, jpeg, make_project, photo_body, publish

PASSWORD = "kata-sandi-panjang"
VISIT = "jebol_sipera_kunjungan"
LIBRARY = Path(__file__).parents[2] / "forms" / "library"
SIMPLE_ROOT = [
    "SubmissionDate",
    "nama",
    "lokasi-Latitude",
    "lokasi-Longitude",
    "lokasi-Altitude",
    "lokasi-Accuracy",
    "foto_utama",
    "meta-instanceID",
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
SAFE_NAME = re.compile(
    r"[A-Za-z0-9_-]{1,60}/\d{4}-\d\d-\d\d_[A-Za-z0-9_-]{1,60}_[A-Za-z0-9_-]+"
    r"_\d+(~\d+)?\.[a-z0-9]{1,8}"
)


@dataclass
class World:
    project_id: int
    auth: dict[str, tuple[str, str]]
    actors: dict[str, int]
    simple: list[str]  # first instanceIDs: approved, edited, hasIssues (a deleted one is not here)
    visit: list[str]  # approved dinkes, received hostile OPD, received dinkes
    files: dict[str, bytes] = field(default_factory=dict)

    def url(self, form: str, tail: str) -> str:
        return f"/v1/projects/{self.project_id}/forms/{form}/{tail}"


def _ingest(
    services,
    world: World,
    tmp: Path,
    form: str,
    version: str,
    body: str,
    *,
    who: str = "formfill",
    name: str | None = None,
    photos: tuple[str, ...] = (),
    instance_id: str | None = None,
    deprecated_id: str | None = None,
) -> str:
    instance_id = instance_id or new_instance_id()
    parts = []
    for photo in photos:
        data = world.files.setdefault(photo, jpeg(seed=len(world.files)))
        path = tmp / f"{uuid.uuid4().hex}-{photo}"
        path.write_bytes(data)
        parts.append(IncomingFile(photo, path, len(data), hashlib.sha256(data).hexdigest()))
    xml = instance_xml(
        form, version, instance_id, body, deprecated_id=deprecated_id, instance_name=name
    )
    submissions.ingest(
        services.db,
        services.blobs,
        world.project_id,
        xml,
        parts,
        sender=Sender(actor_id=world.actors[who], device_id="collect:uji"),
    )
    return instance_id


SICEPAT = "0f4a9c1e-5d3b-4c2a-9e8f-7a6b5c4d3e2f"  # an entity uuid of the `inovasi` list
# Two officers of the `petugas` list, and the names the form joins from their labels.
OFFICERS = "5d1e0c2a-7b3f-4e8d-9a6c-1f2e3d4c5b6a 8a7b6c5d-4e3f-4a1b-8c2d-3e4f5a6b7c8d"


def _visit_body(opd: str, photos: list[str], attendance: str, opd_lain: str = "") -> str:
    evidence = "".join(
        f"<bukti><bukti_indikator>ind16</bukti_indikator><bukti_jenis>sk"
        f"</bukti_jenis><bukti_status>lengkap</bukti_status>"
        f"<bukti_foto>{p}</bukti_foto></bukti>"
        for p in photos
    )
    return (
        f"<mulai>2026-01-05T09:00:00.000+07:00</mulai><perangkat>collect:uji</perangkat>"
        f"<g_kunjungan><tgl_kunjungan>2026-01-05</tgl_kunjungan><opd>{opd}</opd>"
        f"<opd_lain>{opd_lain}</opd_lain>"
        f"<petugas>{OFFICERS}</petugas><petugas_nama>Budi, Sari</petugas_nama><cp_nama>Ani</cp_nama>"
        f"<cp_hp>081234567890</cp_hp><lokasi>-0.68 100.78 250 5</lokasi></g_kunjungan>"
        # One innovation chosen from the `inovasi` entity list, one registered on the spot.
        f"<inovasi><inv_terdaftar>ya</inv_terdaftar><inv_entity>{SICEPAT}</inv_entity>"
        f"<inv_nama>SiCepat</inv_nama><inv_masalah>anggaran video</inv_masalah>"
        f"<inv_jml_ada>2</inv_jml_ada>"
        f"{evidence}</inovasi><inovasi><inv_terdaftar>tidak</inv_terdaftar><inv_entity/>"
        f"<inv_nama>Dua</inv_nama></inovasi>"
        f"<g_penutup><foto_daftar_hadir>{attendance}</foto_daftar_hadir>"
        f"<ttd_cp>ttd-{attendance}</ttd_cp><tgl_tindak_lanjut>2026-02-01</tgl_tindak_lanjut>"
        f"</g_penutup>"
    )


def _set_dates(services, dates: dict[str, str]) -> None:
    with services.db.transaction() as tx:
        for instance_id, when in dates.items():
            tx.execute(
                sa.update(Submission)
                .where(Submission.instance_id == instance_id)
                .values(created_at=datetime.fromisoformat(when))
            )


@pytest.fixture(scope="module")
def world(services, tmp_path_factory) -> World:
    tmp = tmp_path_factory.mktemp("exports")
    project = make_project(services)
    publish(services, project)
    form_store.publish_xlsform(
        services.db,
        services.blobs,
        project.id,
        (LIBRARY / f"{VISIT}.xlsx").read_bytes(),
        f"{VISIT}.xlsx",
    )
    tag = uuid.uuid4().hex[:8]
    auth, actors = {}, {}
    for role in ("manager", "supervisor", "formfill"):
        user = users.create_user(services.db, f"{role}-x-{tag}@example.org", PASSWORD)
        roles.assign_role(services.db, project.id, role, user.actor_id)
        auth[role], actors[role] = (f"{role}-x-{tag}@example.org", PASSWORD), user.actor_id
    world = World(project.id, auth, actors, [], [])

    def simple(name: str, main: str | None, evidence: list[str], **kw) -> str:
        photos = tuple(p for p in [main, *evidence] if p)
        return _ingest(
            services,
            world,
            tmp,
            "foto_sederhana",
            "1",
            photo_body(name, main=main, evidence=evidence),
            name=name,
            photos=photos,
            **kw,
        )

    approved = simple("../../etc/passwd", "u0.jpg", ["e0a.jpg", "e0b.jpg"])
    edited = simple("Budi", "u1.jpg", [], who="supervisor")
    issues = _ingest(
        services,
        world,
        tmp,
        "foto_sederhana",
        "1",
        photo_body("Budi", main="u2-missing.jpg"),
        name="Budi",
    )
    deleted = simple("Hapus", "u3.jpg", [])
    simple("Budi baru", "u1.jpg", [], deprecated_id=edited)  # carries u1.jpg over
    for instance_id, state in ((approved, "approved"), (issues, "hasIssues")):
        submissions.set_review_state(
            services.db, project.id, "foto_sederhana", instance_id, state, actor_id=None
        )
    submissions.soft_delete(services.db, project.id, "foto_sederhana", deleted, actor_id=None)
    world.simple = [approved, edited, issues]

    def visit(opd: str, name: str, photos: list[str], attendance: str, opd_lain: str = "") -> str:
        return _ingest(
            services,
            world,
            tmp,
            VISIT,
            LIBRARY_VERSION,
            _visit_body(opd, photos, attendance, opd_lain),
            name=name,
            photos=(*photos, attendance, f"ttd-{attendance}"),
        )

    world.visit = [
        visit("dinkes", "dinkes 2026-01-05", ["b1.jpg", "b2.jpg"], "h0.jpg"),
        # Another OPD, by a typed name that tries to climb out of the ZIP.
        visit("lainnya", "../..", [], "h1.jpg", opd_lain="../../Kantor Camat"),
        visit("dinkes", "dinkes 2026-01-05", [], "h2.jpg"),
    ]
    submissions.set_review_state(
        services.db, project.id, VISIT, world.visit[0], "approved", actor_id=None
    )
    _set_dates(
        services,
        {
            approved: "2026-01-01T10:00:00+00:00",
            edited: "2026-02-01T10:00:00+00:00",
            issues: "2026-03-01T10:00:00+00:00",
            world.visit[0]: "2026-01-05T02:00:00+00:00",
            world.visit[1]: "2026-01-06T02:00:00+00:00",
            world.visit[2]: "2026-01-05T03:00:00+00:00",
        },
    )
    return world


@pytest.fixture(scope="module")
def client(services):
    """One app for the module: these tests only read."""
    with make_client(services) as test_client:
        yield test_client


def _get(client, world: World, who: str, form: str, tail: str, **params):
    return client.get(world.url(form, tail), params=params, auth=world.auth[who])


def _zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    return archive


def _table(text: bytes | str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.decode() if isinstance(text, bytes) else text)))


# ---- CSV -----------------------------------------------------------------------------------------


def test_csv_zip_is_briefcase_layout_with_media_byte_identical(client, world):
    response = _get(client, world, "supervisor", "foto_sederhana", "submissions.csv.zip")
    archive = _zip(response)
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="foto_sederhana.zip"' in response.headers["content-disposition"]
    media = sorted(n for n in archive.namelist() if n.startswith("media/"))
    assert archive.namelist()[:2] == ["foto_sederhana.csv", "foto_sederhana-bukti.csv"]
    assert media == ["media/e0a.jpg", "media/e0b.jpg", "media/u0.jpg", "media/u1.jpg"]
    for name in media:
        assert archive.read(name) == world.files[name.removeprefix("media/")]
    root = _table(archive.read("foto_sederhana.csv"))
    assert root[0] == SIMPLE_ROOT
    rows = {r[8]: dict(zip(SIMPLE_ROOT, r)) for r in root[1:]}
    assert list(rows) == world.simple  # oldest id first; the deleted one is left out
    approved, edited, issues = (rows[i] for i in world.simple)
    assert approved["SubmissionDate"] == "2026-01-01T10:00:00.000Z"
    assert (approved["nama"], approved["lokasi-Latitude"], approved["lokasi-Accuracy"]) == (
        "../../etc/passwd",
        "-0.68",
        "5",
    )
    assert (
        approved["ReviewState"],
        approved["AttachmentsPresent"],
        approved["AttachmentsExpected"],
        approved["SubmitterID"],
    ) == ("approved", "3", "3", str(world.actors["formfill"]))
    assert approved["SubmitterName"] == world.auth["formfill"][0]
    assert (edited["nama"], edited["Edits"], edited["ReviewState"], edited["FormVersion"]) == (
        "Budi baru",
        "1",
        "edited",
        "1",
    )
    assert edited["meta-instanceID"] != edited["KEY"] == world.simple[1]
    assert (issues["AttachmentsPresent"], issues["AttachmentsExpected"]) == ("0", "1")
    assert _table(archive.read("foto_sederhana-bukti.csv")) == [
        ["bukti_foto", "bukti_catatan", "PARENT_KEY", "KEY"],
        ["e0a.jpg", "c", world.simple[0], f"{world.simple[0]}/bukti[1]"],
        ["e0b.jpg", "c", world.simple[0], f"{world.simple[0]}/bukti[2]"],
    ]


def test_csv_zip_of_the_visit_form_has_a_table_per_repeat(client, world):
    archive = _zip(
        _get(
            client,
            world,
            "manager",
            VISIT,
            "submissions.csv.zip",
            attachments="false",
            splitSelectMultiples="true",
        )
    )
    assert archive.namelist() == [f"{VISIT}.csv", f"{VISIT}-inovasi.csv", f"{VISIT}-bukti.csv"]
    root = _table(archive.read(f"{VISIT}.csv"))
    header = root[0]
    assert header[:6] == [
        "SubmissionDate",
        "mulai",
        "selesai",
        "perangkat",
        "petugas_login",
        "g_kunjungan-tgl_kunjungan",
    ]
    first = dict(zip(header, root[1]))
    assert (
        first["g_kunjungan-opd"],
        first["g_kunjungan-lokasi-Longitude"],
        first["g_kunjungan-petugas"],
        first["g_kunjungan-petugas_nama"],
    ) == ("dinkes", "100.78", OFFICERS, "Budi, Sari")
    # Officers come from a file (the entity list): the choices are not in the form, so the
    # answer is not split; the form's own choice lists are.
    assert not [c for c in header if c.startswith("g_kunjungan-petugas/")]
    assert first["meta-instanceName"] == "dinkes 2026-01-05"
    inovasi = _table(archive.read(f"{VISIT}-inovasi.csv"))
    assert inovasi[0][-2:] == ["PARENT_KEY", "KEY"]
    assert "inv_masalah/anggaran" in inovasi[0]
    assert [r[-1] for r in inovasi[1:3]] == [
        f"{world.visit[0]}/inovasi[1]",
        f"{world.visit[0]}/inovasi[2]",
    ]
    bukti = _table(archive.read(f"{VISIT}-bukti.csv"))
    assert [r[-2:] for r in bukti[1:]] == [
        [f"{world.visit[0]}/inovasi[1]", f"{world.visit[0]}/inovasi[1]/bukti[1]"],
        [f"{world.visit[0]}/inovasi[1]", f"{world.visit[0]}/inovasi[1]/bukti[2]"],
    ]


def test_attachments_false_and_plain_csv(client, world):
    response = _get(
        client, world, "supervisor", "foto_sederhana", "submissions.csv.zip", attachments="false"
    )
    archive = _zip(response)
    assert 'filename="foto_sederhana.csv.zip"' in response.headers["content-disposition"]
    assert archive.namelist() == ["foto_sederhana.csv", "foto_sederhana-bukti.csv"]
    plain = _get(client, world, "supervisor", "foto_sederhana", "submissions.csv")
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/csv")
    assert plain.content == archive.read("foto_sederhana.csv")


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"$filter": "__system/reviewState eq 'approved'"}, [0]),
        ({"approvedOnly": "true"}, [0]),
        ({"$filter": "__system/reviewState eq null"}, []),
        (
            {
                "$filter": "__system/submissionDate ge 2026-02-01 and __system/submissionDate lt "
                "2026-03-01T10:00:00Z"
            },
            [1],
        ),
        (
            {
                "$filter": "(__system/submissionDate gt 2026-01-01T10:00:00.000Z) and "
                "(__system/submissionDate le 2026-03-01T10:00:00Z)"
            },
            [1, 2],
        ),
        ({"$filter": "__system/submitterId eq {officer}"}, [0, 2]),
        ({"$filter": "__system/submitterId eq {officer}", "approvedOnly": "true"}, [0]),
    ],
)
def test_filters(client, world, params, expected):
    params = {k: v.format(officer=world.actors["formfill"]) for k, v in params.items()}
    response = _get(client, world, "supervisor", "foto_sederhana", "submissions.csv", **params)
    assert response.status_code == 200, response.text
    assert [r[8] for r in _table(response.content)[1:]] == [world.simple[i] for i in expected]


@pytest.mark.parametrize(
    "bad",
    [
        "__system/submissionDate ge yesterday",
        "__system/submitterId eq 5 and",
        "nama eq 'Budi'",
        "(__system/submitterId eq 5",
        "__system/reviewState eq 'approved' xor __system/submitterId eq 5",
        "__system/submissionDate ge 0001-01-01T00:00:00+14:00",
        "substringof('a', __id)",
        "__system/submitterId add 1 eq 2",
    ],
)
def test_bad_filter_is_odatas_400_before_any_byte(client, world, bad):
    """The exports' $filter is OData's: a bad one answers what `.svc/Submissions` answers
    (FilterInvalid, 400.18, the same message), before the first byte."""
    odata = _odata(client, world, bad)
    assert odata.status_code == 400 and odata.json()["code"] == 400.18, odata.text
    for tail in (
        "submissions.csv.zip",
        "submissions.csv",
        "submissions.xlsx",
        "submissions.geojson",
    ):
        response = _get(client, world, "manager", "foto_sederhana", tail, **{"$filter": bad})
        assert response.status_code == 400, (tail, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == odata.json(), tail


def _odata(client, world: World, odata_filter: str):
    return client.get(
        f"/v1/projects/{world.project_id}/forms/foto_sederhana.svc/Submissions",
        params={"$filter": odata_filter},
        auth=world.auth["manager"],
    )


def _odata_ids(client, world: World, odata_filter: str) -> list[str]:
    response = _odata(client, world, odata_filter)
    assert response.status_code == 200, response.text
    return sorted(row["__id"] for row in response.json()["value"])


@pytest.mark.parametrize(
    "odata_filter, expected",
    [
        ("__system/reviewState eq 'approved' or __system/reviewState eq 'hasIssues'", [0, 2]),
        ("not (__system/reviewState eq 'approved')", [1, 2]),
        ("not __system/reviewState eq null and __system/submitterId eq {officer}", [0, 2]),
        (
            "(__system/submissionDate lt 2026-01-15 or __system/submissionDate ge 2026-03-01)"
            " and not ($root/Submissions/__system/reviewState eq 'hasIssues')",
            [0],
        ),
        ("month(__system/submissionDate) eq 2 or year(__system/submissionDate) lt 2026", [1]),
        ("__system/reviewState ne 'approved' and __system/submitterId ne {officer}", [1]),
        ("__system/deletedAt ne null", ["deleted"]),
        ("__id eq '{first}' or (true and __system/submitterId eq -1)", [0]),
        ("__system/reviewState eq 'done'", []),
    ],
)
def test_filter_gives_the_csv_the_submissions_odata_gives(client, world, odata_filter, expected):
    """One filter language: the same $filter selects the same submissions in the CSV (and the
    CSV zip) as on `.svc/Submissions`, `or`, `not`, parentheses and functions included; as in
    Central, deleted submissions are in only when the filter names `__system/deletedAt`."""
    odata_filter = odata_filter.format(officer=world.actors["formfill"], first=world.simple[0])
    response = _get(
        client,
        world,
        "supervisor",
        "foto_sederhana",
        "submissions.csv",
        **{"$filter": odata_filter},
    )
    assert response.status_code == 200, response.text
    ids = sorted(r[8] for r in _table(response.content)[1:])
    assert ids == _odata_ids(client, world, odata_filter)
    if expected != ["deleted"]:
        assert ids == sorted(world.simple[i] for i in expected)
    else:
        assert len(ids) == 1 and ids[0] not in world.simple
    archive = _zip(
        _get(
            client,
            world,
            "supervisor",
            "foto_sederhana",
            "submissions.csv.zip",
            attachments="false",
            **{"$filter": odata_filter},
        )
    )
    assert sorted(r[8] for r in _table(archive.read("foto_sederhana.csv"))[1:]) == ids


def test_unknown_form_is_404_and_officer_is_403(client, world):
    assert _get(client, world, "manager", "nope", "submissions.csv.zip").status_code == 404
    for tail in (
        "submissions.csv.zip",
        "submissions.csv",
        "submissions.xlsx",
        "submissions.geojson",
        "media.zip",
    ):
        response = _get(client, world, "formfill", "foto_sederhana", tail)
        assert response.status_code == 403, (tail, response.status_code)


# ---- XLSX, GeoJSON -----------------------------------------------------------------------------


def test_xlsx_has_one_sheet_per_table_with_labels_or_names(client, world):
    response = _get(
        client,
        world,
        "supervisor",
        VISIT,
        "submissions.xlsx",
        labels="true",
        choiceLabels="true",
        lang="en",
    )
    assert response.status_code == 200, response.text
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames == [VISIT, "inovasi", "bukti"]
    root = list(book[VISIT].iter_rows(values_only=True))
    assert len(root) == 4 and root[0][0] == "SubmissionDate"
    header = list(root[0])
    assert "Visit date" in header and "Regional agency visited" in header
    first = dict(zip(header, root[1]))
    assert first["Regional agency visited"] == "Dinas Kesehatan"
    assert (
        first["ReviewState"] == "approved"
        and dict(zip(header, root[2]))["ReviewState"] == "received"
    )
    assert isinstance(first["Visit location (latitude)"], float)
    assert len(list(book["bukti"].iter_rows())) == 3
    plain = openpyxl.load_workbook(
        io.BytesIO(
            _get(
                client, world, "supervisor", VISIT, "submissions.xlsx", approvedOnly="true"
            ).content
        ),
        read_only=True,
    )
    rows = list(plain[VISIT].iter_rows(values_only=True))
    assert len(rows) == 2 and dict(zip(rows[0], rows[1]))["g_kunjungan-opd"] == "dinkes"
    # SubmissionDate is Jakarta's wall clock (UTC+7), as people read it; CSV keeps UTC.
    csv_rows = _table(
        _zip(
            _get(client, world, "supervisor", VISIT, "submissions.csv.zip", approvedOnly="true")
        ).read(f"{VISIT}.csv")
    )
    utc = datetime.fromisoformat(csv_rows[1][0].replace("Z", "+00:00"))
    shift = rows[1][0] - utc.replace(tzinfo=None)
    assert abs(shift - timedelta(hours=7)) < timedelta(seconds=1)


def test_geojson_has_a_feature_per_located_submission(client, world):
    response = _get(client, world, "supervisor", "foto_sederhana", "submissions.geojson")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    body = json.loads(response.content)
    assert [f["id"] for f in body["features"]] == world.simple
    assert body["features"][0]["geometry"] == {
        "type": "Point",
        "coordinates": [100.78, -0.68, 250.0],
    }
    assert body["features"][1]["properties"]["nama"] == "Budi baru"


# ---- media ZIP ---------------------------------------------------------------------------------


def test_media_zip_names_are_safe_unique_and_photos_only(client, world):
    response = _get(client, world, "supervisor", VISIT, "media.zip")
    archive = _zip(response)
    names = archive.namelist()
    assert all(SAFE_NAME.fullmatch(n) for n in names), names
    assert len(names) == len(set(names)) == 5  # b1, b2, h0, h1, h2; no signatures
    assert sorted(names) == [
        "Dinas_Kesehatan/2026-01-05_dinkes_2026-01-05_bukti_foto_1.jpg",
        "Dinas_Kesehatan/2026-01-05_dinkes_2026-01-05_bukti_foto_2.jpg",
        "Dinas_Kesehatan/2026-01-05_dinkes_2026-01-05_foto_daftar_hadir_1.jpg",
        "Dinas_Kesehatan/2026-01-05_dinkes_2026-01-05_foto_daftar_hadir_1~2.jpg",
        f"Kantor_Camat/2026-01-06_{world.visit[1][5:13]}_foto_daftar_hadir_1.jpg",
    ]
    assert (
        archive.read("Dinas_Kesehatan/2026-01-05_dinkes_2026-01-05_bukti_foto_2.jpg")
        == world.files["b2.jpg"]
    )
    hostile = _zip(_get(client, world, "supervisor", "foto_sederhana", "media.zip")).namelist()
    assert "tanpa_opd/2026-01-01_etc_passwd_foto_utama_1.jpg" in hostile
    assert all(SAFE_NAME.fullmatch(n) and ".." not in n for n in hostile), hostile


@pytest.mark.parametrize(
    "params, count",
    [
        ({"question": "bukti_foto"}, 2),
        ({"question": "/g_penutup/foto_daftar_hadir"}, 3),
        ({"opd": "dinkes"}, 4),
        ({"state": "approved"}, 3),
        ({"approvedOnly": "true"}, 3),
        ({"state": "received"}, 2),
        ({"since": "2026-01-06"}, 0),  # the visit date (every visit's is 2026-01-05)
        ({"since": "2026-01-06", "dateby": "received"}, 1),  # the day it arrived (WIB)
        ({"since": "2026-01-05", "until": "2026-01-05", "q": "DINKES"}, 4),
        ({"until": "2026-01-05", "opd": "dinkes"}, 4),
        ({"since": "2027-01-01"}, 0),
    ],
)
def test_media_zip_filters(client, world, params, count):
    assert (
        len(_zip(_get(client, world, "manager", VISIT, "media.zip", **params)).namelist()) == count
    )


@pytest.mark.parametrize(
    "params", [{"question": "ttd_cp"}, {"state": "selesai"}, {"since": "kemarin"}]
)
def test_media_zip_bad_parameters_are_400(client, world, params):
    assert _get(client, world, "manager", VISIT, "media.zip", **params).status_code == 400


# ---- CLI ---------------------------------------------------------------------------------------


def test_cli_export_writes_the_same_bytes_as_the_route(client, services, world, tmp_path):
    env = {
        f"JEBOL_{name.upper()}": (str(value).lower() if isinstance(value, bool) else str(value))
        for name, value in msgspec.structs.asdict(services.settings).items()
        if value not in (None, "")
    }
    target = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "foto_sederhana",
            "--format",
            "csv",
            "--project",
            str(world.project_id),
            "-o",
            str(target),
        ],
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "3 submission(s)" in result.output
    route = _get(client, world, "manager", "foto_sederhana", "submissions.csv")
    assert target.read_bytes() == route.content
    zipped = CliRunner().invoke(
        main,
        [
            "export",
            "foto_sederhana",
            "--format",
            "media",
            "--approved-only",
            "--project",
            str(world.project_id),
            "-o",
            str(tmp_path / "m.zip"),
        ],
        env=env,
    )
    assert zipped.exit_code == 0, zipped.output
    assert len(zipfile.ZipFile(tmp_path / "m.zip").namelist()) == 3
    missing = CliRunner().invoke(
        main,
        [
            "export",
            "nope",
            "--format",
            "xlsx",
            "--project",
            str(world.project_id),
            "-o",
            str(tmp_path / "x.xlsx"),
        ],
        env=env,
    )
    assert missing.exit_code == 1 and "form" in missing.output
    assert not (tmp_path / "x.xlsx").exists()


def test_csv_for_excel_with_indonesian_settings(client, world):
    plain = _zip(_get(client, world, "manager", VISIT, "submissions.csv.zip", attachments="false"))
    excel = _zip(
        _get(
            client,
            world,
            "manager",
            VISIT,
            "submissions.csv.zip",
            attachments="false",
            excel="true",
        )
    )
    assert excel.namelist() == plain.namelist()
    for name in plain.namelist():
        data = excel.read(name).decode("utf-8")
        # A byte-order mark, then `;` between fields: the same table as Central's CSV.
        assert data.startswith("\ufeff") and not plain.read(name).startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(data[1:]), delimiter=";"))
        assert rows == _table(plain.read(name)) and ";" in data.splitlines()[0]
    alone = _get(client, world, "manager", VISIT, "submissions.csv", excel="true")
    assert alone.content.startswith(b"\xef\xbb\xbfSubmissionDate;")


def test_a_calculated_number_is_a_number_in_xlsx(client, world):
    book = openpyxl.load_workbook(
        io.BytesIO(_get(client, world, "supervisor", VISIT, "submissions.xlsx").content),
        read_only=True,
    )
    rows = list(book["inovasi"].iter_rows(values_only=True))
    column = rows[0].index("inv_jml_ada")  # calculate: count-selected(${inv_dd_ada})
    counts = [row[column] for row in rows[1:] if row[column] is not None]
    assert counts and all(isinstance(n, int) for n in counts)
    # A text question holding digits stays text (a phone number keeps its leading zero).
    root = list(book[VISIT].iter_rows(values_only=True))
    phones = {row[root[0].index("g_kunjungan-cp_hp")] for row in root[1:]}
    assert phones == {"081234567890"}
