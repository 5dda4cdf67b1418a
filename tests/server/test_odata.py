"""OData over HTTP, on every backend: service document, $metadata, Submissions and repeat
tables with their options, keyset paging by nextLink, who may read, and pyodk's get_table."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
from pyodk.client import Client

from storage import forms as form_store
from storage import roles, submissions, users
from storage.submissions import Sender
from tests.collect import instance_xml, new_instance_id
from tests.conftest import BASE_URL, make_client
from tests.factories import make_project
from tests.live import LiveServer

FORM = """\
| survey |
| | type | name | label |
| | text | nama | Nama |
| | integer | umur | Umur |
| | decimal | skor | Skor |
| | geopoint | lokasi | Lokasi |
| | begin_group | g | Grup |
| | text | opd | OPD |
| | end_group | g | |
| | begin_repeat | inovasi | Inovasi |
| | text | inv_nama | Nama inovasi |
| | begin_repeat | bukti | Bukti |
| | image | bukti_foto | Foto |
| | end_repeat | bukti | |
| | end_repeat | inovasi | |
| settings |
| | form_id | version |
| | odata_uji | 1 |
"""
PASSWORD = "kata-sandi-panjang"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
COUNT = 7  # submissions; the i-th has i % 3 innovations with two photos each
STATES = {1: "approved", 2: "hasIssues", 4: "approved"}


@dataclass
class World:
    project_id: int
    svc: str  # /v1/projects/{id}/forms/odata_uji.svc
    manager: dict[str, str]
    officer: dict[str, str]
    instance_ids: list[str]  # oldest first
    deleted: str


@pytest.fixture(scope="module")
def client(services):
    """One app for the module (building it is most of a small test's time)."""
    with make_client(services) as test_client:
        yield test_client


def basic(email: str) -> dict[str, str]:
    token = base64.b64encode(f"{email}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def body(i: int) -> str:
    innovations = "".join(
        f"<inovasi><inv_nama>inovasi {i}.{k}</inv_nama>"
        f"<bukti><bukti_foto>f{i}{k}a.jpg</bukti_foto></bukti>"
        f"<bukti><bukti_foto>f{i}{k}b.jpg</bukti_foto></bukti></inovasi>"
        for k in range(i % 3)
    )
    return (
        f"<nama>Orang {i}</nama><umur>{20 + i}</umur><skor>{i}.5</skor>"
        f"<lokasi>-0.68 100.7{i} 250 5</lokasi><g><opd>opd{i}</opd></g>{innovations}"
    )


@pytest.fixture(scope="module")
def world(services) -> World:
    project = make_project(services)
    tag = uuid.uuid4().hex[:8]
    people = {}
    for role in ("manager", "formfill"):
        user = users.create_user(services.db, f"{role}-odata-{tag}@example.org", PASSWORD)
        roles.assign_role(services.db, project.id, role, user.actor_id)
        people[role] = user
    form_store.publish_xlsform(services.db, services.blobs, project.id, FORM.encode(), "odata.md")
    ids = []
    for i in range(COUNT + 1):
        iid = new_instance_id()
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml("odata_uji", "1", iid, body(i)),
            sender=Sender(actor_id=people["formfill"].actor_id, device_id="hp-1"),
        )
        if i in STATES:
            submissions.set_review_state(
                services.db, project.id, "odata_uji", iid, STATES[i], actor_id=None
            )
        ids.append(iid)
    deleted = ids.pop()
    submissions.soft_delete(services.db, project.id, "odata_uji", deleted, actor_id=None)
    return World(
        project.id,
        f"/v1/projects/{project.id}/forms/odata_uji.svc",
        basic(people["manager"].email),
        basic(people["formfill"].email),
        ids,
        deleted,
    )


def get(client, world: World, path: str, **params):
    response = client.get(f"{world.svc}{path}", params=params, headers=world.manager)
    assert response.status_code == 200, response.text
    assert response.headers["odata-version"] == "4.0"
    return response


def all_rows(client, world: World, table: str, **params) -> list[dict]:
    """Every row of a table, following nextLinks; each page is checked for its size and, with
    $count, for the same count."""
    rows, url, pages, counts = [], f"{world.svc}/{table}", 0, set()
    while url:
        response = client.get(url, params=params if pages == 0 else None, headers=world.manager)
        assert response.status_code == 200, response.text
        page = response.json()
        top = int(params.get("$top", 10**9))
        assert len(page["value"]) <= top
        counts.add(page.get("@odata.count"))
        assert len(counts) == 1
        rows += page["value"]
        url, pages = page.get("@odata.nextLink"), pages + 1
        assert pages < 50
    return rows


def test_service_document_and_metadata(client, world):
    doc = get(client, world, "").json()
    assert doc["@odata.context"] == f"{BASE_URL}{world.svc}/$metadata"
    assert [t["name"] for t in doc["value"]] == [
        "Submissions",
        "Submissions.inovasi",
        "Submissions.inovasi.bukti",
    ]
    metadata = get(client, world, "/$metadata")
    assert metadata.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(metadata.content)
    types = {p.get("Name"): p.get("Type") for p in root.iter(f"{EDM}Property")}
    assert (types["umur"], types["skor"], types["lokasi"]) == (
        "Edm.Int64",
        "Edm.Decimal",
        "Edm.GeographyPoint",
    )
    assert {e.get("Name") for e in root.iter(f"{EDM}EntityType")} == {
        "Submissions",
        "Submissions.inovasi",
        "Submissions.inovasi.bukti",
    }


def test_submissions_rows_newest_first_typed_with_system(client, world):
    page = get(client, world, "/Submissions").json()
    assert page["@odata.context"] == f"{BASE_URL}{world.svc}/$metadata#Submissions"
    assert "@odata.nextLink" not in page and "@odata.count" not in page
    rows = page["value"]
    assert [r["__id"] for r in rows] == world.instance_ids[::-1]  # the deleted one is left out
    newest = rows[0]
    assert (newest["nama"], newest["umur"], newest["skor"], newest["g"]) == (
        "Orang 6",
        26,
        6.5,
        {"opd": "opd6"},
    )
    assert newest["lokasi"] == {
        "type": "Point",
        "coordinates": [100.76, -0.68, 250],
        "properties": {"accuracy": 5},
    }
    system = rows[-1]["__system"]  # Orang 0: no innovations, no photos
    assert set(system) == {
        "submissionDate",
        "updatedAt",
        "deletedAt",
        "submitterId",
        "submitterName",
        "attachmentsPresent",
        "attachmentsExpected",
        "status",
        "reviewState",
        "deviceId",
        "edits",
        "formVersion",
    }
    assert system["submissionDate"].endswith("Z") and system["deviceId"] == "hp-1"
    assert (system["edits"], system["formVersion"], system["reviewState"]) == (0, "1", None)
    assert rows[-2]["__system"]["reviewState"] == "approved"
    assert rows[-2]["__system"]["attachmentsExpected"] == 2  # Orang 1: one innovation
    assert rows[-2]["__system"]["attachmentsPresent"] == 0
    assert rows[-2]["inovasi@odata.navigationLink"].endswith("/inovasi")
    assert "inovasi@odata.navigationLink" not in rows[-1]


def test_top_skip_count_select_wkt_expand(client, world):
    page = get(
        client,
        world,
        "/Submissions",
        **{
            "$top": "2",
            "$skip": "1",
            "$count": "true",
            "$select": "__id,nama,__system/reviewState",
        },
    ).json()
    assert page["@odata.count"] == COUNT
    assert [r["__id"] for r in page["value"]] == world.instance_ids[::-1][1:3]
    assert page["value"][0] == {
        "__id": world.instance_ids[-2],
        "nama": "Orang 5",
        "__system": {"reviewState": None},
    }
    link = urlsplit(page["@odata.nextLink"])
    query = parse_qs(link.query)
    assert "$skip" not in query and query["$top"] == ["2"]
    assert query["$skiptoken"][0].startswith("01")
    only_count = get(client, world, "/Submissions", **{"$top": "0", "$count": "true"}).json()
    assert only_count == {
        "@odata.context": page["@odata.context"],
        "@odata.count": COUNT,
        "value": [],
    }
    wkt = get(client, world, "/Submissions", **{"$top": "1", "$wkt": "true"}).json()
    assert wkt["value"][0]["lokasi"] == "POINT (100.76 -0.68 250)"
    expanded = get(client, world, "/Submissions", **{"$expand": "*"}).json()["value"]
    by_name = {r["nama"]: r for r in expanded}
    assert [i["inv_nama"] for i in by_name["Orang 5"]["inovasi"]] == ["inovasi 5.0", "inovasi 5.1"]
    assert by_name["Orang 5"]["inovasi"][1]["bukti"][0]["bukti_foto"] == "f51a.jpg"


def test_filter_on_system_fields(client, world):
    def ids(expr: str, table: str = "Submissions") -> list[str]:
        page = get(client, world, f"/{table}", **{"$filter": expr}).json()
        return [r["__id"] for r in page["value"]]

    approved = [world.instance_ids[1], world.instance_ids[4]]
    assert ids("__system/reviewState eq 'approved'") == approved[::-1]
    assert len(ids("__system/reviewState eq null")) == COUNT - 3
    assert len(ids("__system/reviewState ne 'approved'")) == COUNT - 2  # null counts as "ne"
    assert ids(
        f"__id eq '{world.instance_ids[2]}' or (__system/reviewState eq 'hasIssues' "
        f"and not __system/submitterId eq 0)"
    ) == [world.instance_ids[2]]
    this_year = datetime.now(UTC).year
    assert (
        len(
            ids(
                f"year(__system/submissionDate) eq {this_year} and "
                "__system/submissionDate gt 2020-01-01T00:00:00Z"
            )
        )
        == COUNT
    )
    assert ids("__system/submissionDate lt 2020-01-01") == []
    assert ids("__system/deletedAt ne null") == [world.deleted]  # naming deletedAt shows them
    rows = get(
        client,
        world,
        "/Submissions.inovasi",
        **{"$filter": "$root/Submissions/__system/reviewState eq 'approved'"},
    ).json()["value"]
    assert {r["__Submissions-id"] for r in rows} == set(approved)  # Orang 1 and 4: 1 + 1 rows
    bad = client.get(
        f"{world.svc}/Submissions", params={"$filter": "__system/nope eq 1"}, headers=world.manager
    )
    assert bad.status_code == 400 and bad.json()["code"] == 400.18
    assert "__system/nope" in bad.json()["message"]


def test_next_links_page_every_row_once(client, world):
    everything = get(client, world, "/Submissions").json()["value"]
    paged = all_rows(client, world, "Submissions", **{"$top": "3", "$count": "true"})
    assert [r["__id"] for r in paged] == [r["__id"] for r in everything]
    filtered = all_rows(
        client,
        world,
        "Submissions",
        **{"$top": "1", "$filter": "__system/reviewState ne 'approved'"},
    )
    assert len(filtered) == COUNT - 2
    for table, top in (("Submissions.inovasi", "2"), ("Submissions.inovasi.bukti", "3")):
        whole = get(client, world, f"/{table}", **{"$count": "true"}).json()
        rows = all_rows(client, world, table, **{"$top": top, "$count": "true"})
        assert [r["__id"] for r in rows] == [r["__id"] for r in whole["value"]]
        assert len(rows) == whole["@odata.count"] == len({r["__id"] for r in rows})
    skipped = get(client, world, "/Submissions.inovasi.bukti", **{"$skip": "3", "$top": "2"}).json()
    bukti = get(client, world, "/Submissions.inovasi.bukti").json()["value"]
    assert skipped["value"] == bukti[3:5]
    bad = client.get(
        f"{world.svc}/Submissions", params={"$skiptoken": "01bm9wZQ"}, headers=world.manager
    )
    assert bad.status_code == 400 and bad.json()["code"] == 400.35


def test_repeat_rows_link_to_their_parents(client, world):
    inovasi = get(client, world, "/Submissions.inovasi").json()["value"]
    bukti = get(client, world, "/Submissions.inovasi.bukti").json()["value"]
    innovations = sum(i % 3 for i in range(COUNT))
    assert len(inovasi) == innovations and len(bukti) == 2 * innovations
    assert {r["__Submissions-id"] for r in inovasi} <= set(world.instance_ids)
    parents = {r["__id"]: r for r in inovasi}
    for photo in bukti:
        parent = parents[photo["__Submissions-inovasi-id"]]
        number = parent["inv_nama"].split()[1].replace(".", "")
        assert photo["bukti_foto"].startswith(f"f{number}")
    expanded = get(client, world, "/Submissions", **{"$expand": "*"}).json()["value"]
    inline = [i["__id"] for row in expanded for i in row.get("inovasi", [])]
    assert inline == [r["__id"] for r in inovasi]
    one = world.instance_ids[5]
    single = get(client, world, f"/Submissions('{one}')").json()["value"]
    assert [r["__id"] for r in single] == [one]
    link = single[0]["inovasi@odata.navigationLink"]
    assert link == f"Submissions('{one.replace(':', '%3A')}')/inovasi"
    linked = get(client, world, f"/{link}", **{"$count": "true"}).json()  # links resolve
    assert linked["@odata.context"].endswith("#Submissions.inovasi")
    assert linked["value"] == [r for r in inovasi if r["__Submissions-id"] == one]
    assert linked["@odata.count"] == 2
    deeper = linked["value"][1]
    photos_link = next(
        i for row in expanded for i in row.get("inovasi", []) if i["__id"] == deeper["__id"]
    )["bukti@odata.navigationLink"]
    photos = get(client, world, f"/{photos_link}").json()["value"]
    assert photos == [b for b in bukti if b["__Submissions-inovasi-id"] == deeper["__id"]]
    assert len(photos) == 2


def test_who_may_read_and_the_routes_around(client, world):
    assert client.get(f"{world.svc}/Submissions", headers=world.officer).status_code == 403
    assert client.get(world.svc, headers=world.officer).status_code == 403
    assert client.get(f"{world.svc}/$metadata").status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"nobody@example.org:x").decode()}
    assert client.get(f"{world.svc}/Submissions", headers=wrong).status_code == 401
    base = f"/v1/projects/{world.project_id}/forms"
    for path in (
        "/odata_uji.svc/Nope",
        "/odata_uji/Submissions",
        "/lain.svc/Submissions",
        "/odata_uji.svc/Submissions('uuid:none')",
    ):
        assert client.get(base + path, headers=world.manager).status_code == 404, path
    versions = client.get(f"{base}/odata_uji/versions", headers=world.manager)
    assert versions.status_code == 200 and versions.json()[0]["version"] == "1"
    assert client.get(f"{base}/odata_uji", headers=world.manager).json()["xmlFormId"] == "odata_uji"
    unsupported = client.get(
        f"{world.svc}/Submissions", params={"$orderby": "__id"}, headers=world.manager
    )
    assert unsupported.status_code == 501 and unsupported.json()["code"] == 501.1


def test_pyodk_get_table(services, world, tmp_path):
    email = f"pyodk-odata-{uuid.uuid4().hex[:8]}@example.org"
    user = users.create_user(services.db, email, PASSWORD)
    roles.assign_role(services.db, world.project_id, "supervisor", user.actor_id)
    with LiveServer(services) as live:
        config = tmp_path / "pyodk_config.toml"
        config.write_text(
            f'[central]\nbase_url = "{live.url}"\nusername = "{email}"\n'
            f'password = "{PASSWORD}"\ndefault_project_id = {world.project_id}\n'
        )
        with Client(config_path=str(config), cache_path=str(tmp_path / "cache.toml")) as client:
            table = client.submissions.get_table(
                form_id="odata_uji",
                table_name="Submissions",
                count=True,
                expand="*",
                top=2,
                filter="__system/reviewState ne 'hasIssues'",
            )
            assert table["@odata.count"] == COUNT - 1
            assert [r["__id"] for r in table["value"]] == world.instance_ids[::-1][:2]
            assert table["value"][0]["nama"] == "Orang 6"
            assert [i["inv_nama"] for i in table["value"][1]["inovasi"]] == [
                "inovasi 5.0",
                "inovasi 5.1",
            ]
            assert "$skiptoken=01" in table["@odata.nextLink"]
            assert table["@odata.nextLink"].startswith(live.url)
            photos = client.submissions.get_table(
                form_id="odata_uji", table_name="Submissions.inovasi.bukti"
            )
            assert len(photos["value"]) == 2 * sum(i % 3 for i in range(COUNT))
