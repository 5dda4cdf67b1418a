"""Entity lists reach the phones as ODK Central serves them, on every backend: a form that
reads `inovasi.csv` (`select_one_from_file`) in a project with the list `inovasi` gets the
list as that file (manifest entry with Central's hash and integrity URL, the CSV with the hash
as ETag), the integrity reply, the REST attachment listing, and the offline web form."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid as uuidlib
from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa

from storage import entity_lists
from storage import forms as form_store
from storage.models import Audit, Dataset
from tests.collect import HEADERS, MANIFEST_NS
from tests.factories import key_url, make_app_user, make_project, make_user

FORM = "pilih_inovasi"
FOLLOW_UP = f"""| survey |
| | type | name | label | choice_filter |
| | text | opd | OPD | |
| | select_one_from_file inovasi.csv | inovasi | Inovasi | opd=${{opd}} |
| settings |
| | form_id | form_title | version |
| | {FORM} | Pilih inovasi | 1 |
"""
OTHER_FORM = """| survey |
| | type | name | label |
| | text | catatan | Catatan |
| settings |
| | form_id | form_title | version |
| | catatan_saja | Catatan | 1 |
"""
A, B, C = (str(uuidlib.uuid4()) for _ in range(3))
CSV_HEADER = ["name", "label", "__version", "opd", "tahapan"]


def _publish(services, project, markdown: str, name: str) -> None:
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, markdown.encode(), f"{name}.md"
    )


@pytest.fixture
def field(services, client):
    """A project with the follow-up form, an app user assigned it, a manager, and the list
    `inovasi` (properties opd, tahapan) made through REST, still empty."""
    project = make_project(services)
    _publish(services, project, FOLLOW_UP, FORM)
    _publish(services, project, OTHER_FORM, "catatan_saja")
    manager = make_user(services, project, "manager")
    lists = f"/v1/projects/{project.id}/datasets"
    assert client.post(lists, json={"name": "inovasi"}, auth=manager).status_code == 200
    for prop in ("opd", "tahapan"):
        added = client.post(f"{lists}/inovasi/properties", json={"name": prop}, auth=manager)
        assert added.status_code == 200, added.text
    app_user = make_app_user(services, project, forms=[FORM])
    return project, manager, app_user


def _entities(project) -> str:
    return f"/v1/projects/{project.id}/datasets/inovasi/entities"


def _create(client, project, manager, uid: str, label: str, **data: str) -> None:
    made = client.post(
        _entities(project), json={"uuid": uid, "label": label, "data": data}, auth=manager
    )
    assert made.status_code == 200, made.text


def _manifest(client, base: str, auth=None) -> list[ElementTree.Element]:
    response = client.get(f"{base}/forms/{FORM}/manifest", headers=HEADERS, auth=auth)
    assert response.status_code == 200, response.text
    return ElementTree.fromstring(response.content).findall(f"{MANIFEST_NS}mediaFile")


def _expected_hash(services, project) -> str:
    """Central's formula, worked out here from the audit table itself."""
    with services.db.engine.connect() as connection:
        dataset_id = connection.execute(
            sa.select(Dataset.id).where(Dataset.project_id == project.id)
        ).scalar_one()
        latest = connection.execute(
            sa.select(sa.func.max(Audit.logged_at)).where(
                Audit.subject_type == "dataset", Audit.subject_id == dataset_id
            )
        ).scalar_one()
    if isinstance(latest, str):  # SQLite's MAX() bypasses the column type
        latest = datetime.fromisoformat(latest)
    latest = latest.replace(tzinfo=UTC) if latest.tzinfo is None else latest.astimezone(UTC)
    stamp = latest.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return hashlib.md5(f'{{"latestAuditEntry":"{stamp}"}}'.encode()).hexdigest()


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


def test_manifest_offers_the_list_with_centrals_hash_and_urls(services, client, field):
    project, manager, app_user = field
    _create(client, project, manager, A, "Sekolah Ramah", opd="disdik", tahapan="uji coba")
    base = key_url(project, app_user)
    [item] = _manifest(client, base)
    assert item.get("type") == "entityList"
    assert item.findtext(f"{MANIFEST_NS}filename") == "inovasi.csv"
    assert item.findtext(f"{MANIFEST_NS}hash") == f"md5:{_expected_hash(services, project)}"
    root = f"http://testserver.local{base}"
    assert item.findtext(f"{MANIFEST_NS}downloadUrl") == (
        f"{root}/forms/{FORM}/attachments/inovasi.csv"
    )
    assert item.findtext(f"{MANIFEST_NS}integrityUrl") == (f"{root}/datasets/inovasi/integrity")
    [web] = _manifest(client, f"/v1/projects/{project.id}", auth=manager)
    assert web.findtext(f"{MANIFEST_NS}integrityUrl") == (
        f"http://testserver.local/v1/projects/{project.id}/datasets/inovasi/integrity"
    )
    listed = client.get(f"{base}/formList", headers=HEADERS)
    assert f"/forms/{FORM}/manifest</manifestUrl>" in listed.text


def test_csv_holds_current_entities_newest_first_with_properties_in_order(client, field):
    project, manager, app_user = field
    _create(client, project, manager, A, "Sekolah Ramah", opd="disdik", tahapan="inisiatif")
    _create(client, project, manager, B, 'Pasar "Digital", Tahap 1', opd="dinkes")
    _create(client, project, manager, C, "Dihapus", opd="disdik", tahapan="x")
    patched = client.patch(
        f"{_entities(project)}/{A}?baseVersion=1",
        json={"data": {"tahapan": "uji coba"}},
        auth=manager,
    )
    assert patched.status_code == 200, patched.text
    assert client.delete(f"{_entities(project)}/{C}", auth=manager).status_code == 200
    response = client.get(f"{key_url(project, app_user)}/forms/{FORM}/attachments/inovasi.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="inovasi.csv"' in response.headers["content-disposition"]
    assert _csv(response) == [
        CSV_HEADER,
        [B, 'Pasar "Digital", Tahap 1', "1", "dinkes", ""],
        [A, "Sekolah Ramah", "2", "disdik", "uji coba"],
    ]
    assert b'"Pasar ""Digital"", Tahap 1"' in response.content  # quoted as CSV quotes


def test_hash_and_etag_follow_every_entity_event(services, client, field):
    project, manager, app_user = field
    base = key_url(project, app_user)
    url = f"{base}/forms/{FORM}/attachments/inovasi.csv"

    def current() -> str:
        [item] = _manifest(client, base)
        digest = item.findtext(f"{MANIFEST_NS}hash").removeprefix("md5:")
        response = client.get(url)
        assert response.status_code == 200 and response.headers["etag"] == f'"{digest}"'
        return digest

    seen = [current()]  # the empty list: its creation and properties are events too
    _create(client, project, manager, A, "Satu", opd="disdik")
    seen.append(current())
    client.patch(f"{_entities(project)}/{A}?force=true", json={"label": "Dua"}, auth=manager)
    seen.append(current())
    client.delete(f"{_entities(project)}/{A}", auth=manager)
    seen.append(current())
    assert len(set(seen)) == 4, seen
    assert seen[-1] == _expected_hash(services, project)
    assert client.get(url, headers={"If-None-Match": f'"{seen[-1]}"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": f'W/"{seen[-1]}"'}).status_code == 304
    stale = client.get(url, headers={"If-None-Match": f'"{seen[-2]}"'})
    assert stale.status_code == 200 and _csv(stale) == [CSV_HEADER]


def test_integrity_says_which_entities_exist(client, field):
    project, manager, app_user = field
    _create(client, project, manager, A, "Satu")
    _create(client, project, manager, B, "Dua")
    client.delete(f"{_entities(project)}/{B}", auth=manager)
    url = f"{key_url(project, app_user)}/datasets/inovasi/integrity"

    def states(query: str = "") -> dict[str, str]:
        response = client.get(f"{url}{query}", headers=HEADERS)
        assert response.status_code == 200, response.text
        assert response.headers["x-openrosa-version"] == "1.0"
        assert response.headers["content-type"].startswith("text/xml")
        root = ElementTree.fromstring(response.content)
        assert root.tag == "data" and root[0].tag == "entities"
        return {e.get("id"): e.findtext("deleted") for e in root[0]}

    assert states() == {A: "false", B: "true"}
    assert states(f"?id={B}") == {B: "true"}
    assert states(f"?id={A.upper()},{C}") == {A: "false"}  # an unknown id is not mentioned
    assert states("?id=%00") == {}  # holds no entity (and PostgreSQL cannot compare it)
    assert client.get(url).status_code == 400  # OpenRosa: the version header is required
    missing = client.get(f"{key_url(project, app_user)}/datasets/nope/integrity", headers=HEADERS)
    assert missing.status_code == 404


def test_a_list_needing_approval_is_marked_for_collect(services, client, field):
    project, manager, app_user = field
    lists = f"/v1/projects/{project.id}/datasets"
    made = client.post(lists, json={"name": "usulan", "approvalRequired": True}, auth=manager)
    assert made.status_code == 200, made.text
    form = FOLLOW_UP.replace("inovasi.csv", "usulan.csv").replace(FORM, "pilih_usulan")
    _publish(services, project, form, "pilih_usulan")
    response = client.get(
        f"/v1/projects/{project.id}/forms/pilih_usulan/manifest", headers=HEADERS, auth=manager
    )
    [item] = ElementTree.fromstring(response.content).findall(f"{MANIFEST_NS}mediaFile")
    assert item.get("type") == "approvalEntityList"
    assert item.findtext(f"{MANIFEST_NS}filename") == "usulan.csv"


def test_rest_listing_shows_the_list_as_the_attachment(client, field):
    project, manager, _ = field
    form = f"/v1/projects/{project.id}/forms/{FORM}"
    expected = {
        "name": "inovasi.csv",
        "type": "file",
        "exists": True,
        "blobExists": False,
        "datasetExists": True,
        "hash": None,
    }
    [published] = client.get(f"{form}/attachments", auth=manager).json()
    assert {k: published.get(k) for k in expected} == expected
    download = client.get(f"{form}/attachments/inovasi.csv", auth=manager)
    assert download.status_code == 200 and _csv(download) == [CSV_HEADER]
    assert client.post(f"{form}/draft", auth=manager).status_code == 200
    [draft] = client.get(f"{form}/draft/attachments", auth=manager).json()
    assert {k: draft.get(k) for k in expected} == expected


def test_without_the_list_the_file_is_missing(services, client):
    project = make_project(services)
    _publish(services, project, FOLLOW_UP, FORM)
    manager = make_user(services, project, "manager")
    form = f"/v1/projects/{project.id}/forms/{FORM}"
    [listed] = client.get(f"{form}/attachments", auth=manager).json()
    assert (listed["exists"], listed["datasetExists"]) == (False, False)
    manifest = client.get(f"{form}/manifest", headers=HEADERS, auth=manager)
    assert "mediaFile" not in manifest.text
    assert client.get(f"{form}/attachments/inovasi.csv", auth=manager).status_code == 404


def test_app_users_reach_only_lists_of_their_forms(services, client, field):
    project, manager, app_user = field
    _create(client, project, manager, A, "Satu")
    stranger = make_app_user(services, project, "Petugas lain", forms=["catatan_saja"])
    base = key_url(project, stranger)
    assert client.get(f"{base}/forms/{FORM}/manifest", headers=HEADERS).status_code == 403
    download = client.get(f"{base}/forms/{FORM}/attachments/inovasi.csv")
    assert download.status_code == 403 and A not in download.text
    integrity = client.get(f"{base}/datasets/inovasi/integrity", headers=HEADERS)
    assert integrity.status_code == 403 and A not in integrity.text
    # A data collector (web user) may check a list a form of the project uses.
    collector = make_user(services, project, "formfill")
    by_collector = client.get(
        f"/v1/projects/{project.id}/datasets/inovasi/integrity", headers=HEADERS, auth=collector
    )
    assert by_collector.status_code == 200 and A in by_collector.text
    # Closing the form that uses the list closes the list to its app user.
    state = client.patch(
        f"/v1/projects/{project.id}/forms/{FORM}", json={"state": "closed"}, auth=manager
    )
    assert state.status_code == 200, state.text
    mine = client.get(f"{key_url(project, app_user)}/datasets/inovasi/integrity", headers=HEADERS)
    assert mine.status_code == 403


def test_the_web_form_gets_the_list_under_its_hash(services, client, field):
    project, manager, app_user = field
    _create(client, project, manager, A, "Satu", opd="disdik")
    page = client.get(f"/f/{app_user.token}/{FORM}")
    assert page.status_code == 200
    config = json.loads(
        re.search(
            r'<script type="application/json" id="wf-config">(.*?)</script>', page.text, re.DOTALL
        ).group(1)
    )
    url = config["form"]["media"]["inovasi.csv"]
    assert url.endswith(f"/media/inovasi.csv?v={_expected_hash(services, project)}")
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert _csv(response)[1][:2] == [A, "Satu"]
    _create(client, project, manager, B, "Dua", opd="disdik")
    again = client.get(f"/f/{app_user.token}/")
    assert url not in again.text and "inovasi.csv?v=" in again.text  # a new URL: fetched anew


def test_the_csv_streams_in_keyset_batches(services, client, field):
    """Batches of two over five entities: every entity once, in the same order as one batch."""
    project, manager, _ = field
    uids = [str(uuidlib.uuid4()) for _ in range(5)]
    bulk = client.post(
        _entities(project),
        json={
            "entities": [
                {"uuid": u, "label": f"E{i}", "data": {"opd": str(i)}} for i, u in enumerate(uids)
            ],
            "source": {"name": "awal.csv"},
        },
        auth=manager,
    )
    assert bulk.status_code == 200, bulk.text
    listed = entity_lists.find_list_file(services.db, project.id, "inovasi")
    assert listed is not None
    chunks = list(entity_lists.csv_chunks(services.db, listed.dataset, batch=2))
    assert len(chunks) == 1 + 3  # the header, then 2 + 2 + 1
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert [r[0] for r in rows[1:]] == list(reversed(uids))
    one = list(entity_lists.csv_chunks(services.db, listed.dataset, batch=100))
    assert b"".join(one) == b"".join(chunks)
