"""The IID report on a small dataset whose score is worked out by hand below."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import pytest
from openpyxl import load_workbook

from server import iid_report
from server.bootstrap import library_forms
from storage import forms as form_store
from storage import roles, submissions, users
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.factories import LIBRARY_VERSION, jpeg, make_project

VERSION = LIBRARY_VERSION
# Entity uuids of the `inovasi` list, as a form choosing a listed innovation sends them.
SEHAT = "4b1f0c2e-8a7d-4e6b-9c5a-3d2e1f0a9b8c"
POSYANDU = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"


def _send(services, project, form_id, body, files, tmp_path):
    parts = []
    for name, data in files.items():
        path = tmp_path / f"{new_instance_id()[5:]}-{name}"
        path.write_bytes(data)
        parts.append(IncomingFile(name, path, len(data), hashlib.sha256(data).hexdigest()))
    instance_id = new_instance_id()
    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        instance_xml(form_id, VERSION, instance_id, body),
        parts,
        sender=Sender(actor_id=None),
    )
    return instance_id


def _evidence(opd, name, indicator, parameter, berkas="", photo="", link="", entity=""):
    photos = f"<foto_bukti><foto_bukti_file>{photo}</foto_bukti_file></foto_bukti>" if photo else ""
    # The innovation is chosen from the `inovasi` list (its uuid) or typed: either way
    # nama_inovasi holds its name.
    listed = "ya" if entity else "tidak"
    return (
        f"<opd>{opd}</opd><inovasi_terdaftar>{listed}</inovasi_terdaftar>"
        f"<inovasi>{entity}</inovasi><nama_inovasi>{name}</nama_inovasi><indikator>{indicator}"
        f"</indikator><parameter>{parameter}</parameter><nomor_dokumen>1/2026</nomor_dokumen>"
        f"<tanggal_dokumen>2026-01-05</tanggal_dokumen><tentang>Penetapan</tentang>"
        f"<berkas>{berkas}</berkas>{photos}<tautan>{link}</tautan>"
    )


@pytest.fixture
def dataset(services, tmp_path):
    project = make_project(services)
    for path in library_forms():
        form_store.publish_xlsform(
            services.db, services.blobs, project.id, path.read_bytes(), path.name
        )
    profile = "jebol_sipera_profil_inovasi"
    for opd, name in (
        ("dinkes", "Sehat Bersama"),
        ("dinkes", "Posyandu Digital"),
        ("disdik", "Sekolah Ceria"),
    ):
        _send(
            services,
            project,
            profile,
            f"<opd>{opd}</opd><mode_profil>baru</mode_profil><nama_inovasi>{name}</nama_inovasi>"
            "<tahapan>penerapan</tahapan><jenis>digital</jenis>",
            {},
            tmp_path,
        )
    dd = "jebol_sipera_data_dukung"
    small_pdf, big_pdf = b"%PDF-1.4 small", b"%PDF-1.4 " + b"x" * (3 * 1024 * 1024)
    _send(
        services,
        project,
        dd,
        _evidence("dinkes", "Sehat Bersama", "ind16", "ind16_p3", berkas="sk.pdf", entity=SEHAT),
        {"sk.pdf": small_pdf},
        tmp_path,
    )
    _send(
        services,
        project,
        dd,
        _evidence("dinkes", "Sehat Bersama", "ind17", "ind17_p1", photo="tim.jpg"),
        {"tim.jpg": jpeg(seed=1)},
        tmp_path,
    )
    _send(
        services,
        project,
        dd,
        _evidence("dinkes", "sehat  bersama", "ind17", "ind17_p2", photo="tim2.jpg"),
        {"tim2.jpg": jpeg(seed=2)},
        tmp_path,
    )
    _send(
        services,
        project,
        dd,
        _evidence("dinkes", "Posyandu Digital", "ind35", "ind35_p1", link="https://youtu.be/x"),
        {},
        tmp_path,
    )
    _send(
        services,
        project,
        dd,
        _evidence("disdik", "Sekolah Ceria", "ind31", "ind31_p2"),
        {},
        tmp_path,
    )
    _send(
        services,
        project,
        dd,
        _evidence("disdik", "Sekolah Ceria", "ind33", "ind33_p3", berkas="penerima.pdf"),
        {"penerima.pdf": big_pdf},
        tmp_path,
    )
    # The latest visit to Dinkes says the video evidence of Posyandu Digital needs completing.
    _send(
        services,
        project,
        "jebol_sipera_kunjungan",
        "<g_kunjungan><tgl_kunjungan>2026-11-20</tgl_kunjungan><opd>dinkes</opd></g_kunjungan>"
        f"<inovasi><inv_terdaftar>ya</inv_terdaftar><inv_entity>{POSYANDU}</inv_entity>"
        "<inv_nama>Posyandu Digital</inv_nama><inv_dd_kurang>ind35</inv_dd_kurang>"
        "</inovasi>",
        {},
        tmp_path,
    )
    return project


def test_score_matches_the_hand_computation(services, dataset):
    # Nothing is reviewed yet: by default (only approved evidence) nothing scores.
    # SID = 0 / MAX(10, 3) = 0; index = (40 + 0) / 250 x 100 = 16.0
    strict = iid_report.report_for(services.db, dataset.id, spd=40.0)
    assert {i.score for i in strict.innovations} == {0} and strict.index == 16.0
    report = iid_report.report_for(services.db, dataset.id, spd=40.0, mode="draft")
    # The draft counts evidence not reviewed yet. By hand, 2023 weights (bobot) x level values
    # (nilai = level), each level standing on its own evidence:
    #   Sehat Bersama:    ind16 P3 with an SK: 3 x 3 = 9; ind17 P2 with its photo: 2 x 2 = 4
    #   Posyandu Digital: ind35 P1 with a link, sent after the 20 November visit that asked to
    #                     complete it, so the visit's flag does not reach it: 4 x 1 = 4
    #   Sekolah Ceria:    ind31 P2 with no document: 0; ind33 P3 with a PDF: 3 x 3 = 9
    #   SID = (13 + 4 + 9) / MAX(10, 3 innovations) = 2.6
    #   index = (SPD 40 + 2.6) / 250 x 100 = 17.04 -> Kurang Inovatif (0.01-34.99)
    scores = {i.name: i.score for i in report.innovations}
    assert scores == {"Sehat Bersama": 13, "Posyandu Digital": 4, "Sekolah Ceria": 9}
    assert report.sid == 2.6 and report.index == 17.04 and report.band == "Kurang Inovatif"
    rows = {(i.name, r.indicator.code): r for i in report.innovations for r in i.indicators}
    assert rows[("Sehat Bersama", "ind16")].status == "available"
    assert (
        rows[("Sehat Bersama", "ind17")].level == 2 and rows[("Sehat Bersama", "ind17")].photos == 2
    )
    assert rows[("Sehat Bersama", "ind18")].status == "missing"
    assert rows[("Posyandu Digital", "ind35")].status == "available"
    assert rows[("Sekolah Ceria", "ind31")].status == "needs completion"
    assert len(report.warnings) == 1 and "penerima.pdf" in report.warnings[0]


def test_workbook_and_csv_shapes(services, dataset, client):
    email = f"iid-{dataset.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, dataset.id, "supervisor", user.actor_id)
    auth = (email, "kata-sandi-panjang")
    book = client.get(f"/v1/projects/{dataset.id}/iid-report.xlsx", auth=auth)
    assert book.status_code == 200
    sheets = load_workbook(io.BytesIO(book.content), read_only=True).sheetnames
    # OPDs by their names (the profile form's choice labels), not their codes.
    assert sheets[0] == "Ringkasan"
    assert {"Dinas Kesehatan", "Dinas Pendidikan", "data_dukung", "peringatan"} <= set(sheets)
    archive = zipfile.ZipFile(
        io.BytesIO(
            client.get(f"/v1/projects/{dataset.id}/iid-report.zip?spd=12.5", auth=auth).content
        )
    )
    docs = archive.read("data_dukung.csv").decode().splitlines()
    assert docs[0] == (
        "opd,inovasi,indikator,parameter,nomor,tanggal,tentang,file,link,"
        "status review,dipakai untuk skor,file di paket portal,id kiriman"
    )
    assert all(",belum direview,tidak,,uuid:" in line for line in docs[1:])  # nothing approved
    assert len(docs) == 1 + 6
    assert archive.read("inovasi.csv").decode().splitlines()[0].startswith("opd,inovasi,terdaftar")
    assert docs[1].startswith("Dinas ")
    # The zip carries the same summary as the workbook, and each indicator's status.
    summary = dict(csv.reader(io.StringIO(archive.read("ringkasan.csv").decode())))
    assert summary["Skor SPD (diisi Pemda)"] == "12.5" and summary["Predikat"] == "Kurang Inovatif"
    indicators = archive.read("indikator.csv").decode().splitlines()
    assert indicators[0] == "opd,inovasi,indikator,status data dukung,level,skor"
    assert len(indicators) == 1 + 3 * 20  # three innovations x ind16..ind35


def test_inputs_are_checked_over_http(services, dataset, client):
    email = f"iid-in-{dataset.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, dataset.id, "supervisor", user.actor_id)
    auth = (email, "kata-sandi-panjang")
    url = f"/v1/projects/{dataset.id}/iid-report.zip"
    bad = ("spd=200", "spd=-20", "spd=nan", "mode=everything", "jumlah=77", "jumlah=-1")
    for query in (*bad, "jumlah=nan", "jumlah=inf", "jumlah=dua"):
        assert client.get(f"{url}?{query}", auth=auth).status_code == 400, query
    assert client.get(f"{url}?spd=63&mode=draft&jumlah=76", auth=auth).status_code == 200
    # The page says what is wrong, in Indonesian, and computes nothing.
    from tests.security.conftest import ui_login

    ui_login(client, email, "kata-sandi-panjang")
    for query in ("jumlah=77", "jumlah=dua", "spd=64"):
        page = client.get(f"/p/{dataset.id}/iid?{query}")
        assert page.status_code == 200 and 'role="alert"' in page.text, query
        assert ("jumlah inovasi" if "jumlah" in query else "SPD") in page.text
        assert 'class="sid"' not in page.text
    assert client.get(f"{url}?since=kemarin", auth=auth).status_code == 400
    assert client.get(f"{url}?since=2026-01-01&until=2026-12-31", auth=auth).status_code == 200


def test_a_date_range_keeps_the_visits_and_evidence_of_those_days(services, dataset):
    from datetime import date, timedelta

    today = date.today()
    # Everything in the fixture was sent today: a range ending yesterday holds no evidence
    # (every score 0), one holding today is the whole draft of the hand computation (SID 2.6).
    before = iid_report.report_for(
        services.db, dataset.id, mode="draft", until=today - timedelta(days=1)
    )
    assert {i.score for i in before.innovations} == {0} and before.sid == 0
    during = iid_report.report_for(services.db, dataset.id, mode="draft", since=today, until=today)
    assert during.sid == 2.6


def test_innovations_are_the_registered_entities(services, dataset):
    from storage import datasets, entities

    # The list (made by publishing the forms) gets the three innovations, one named as the
    # evidence spells it differently ("Sehat-Bersama"); evidence for Sehat Bersama approved.
    for opd, name in (
        ("dinkes", "Sehat-Bersama"),
        ("dinkes", "Posyandu Digital"),
        ("disdik", "Sekolah Ceria"),
    ):
        entities.create(services.db, dataset.id, "inovasi", {"label": name, "data": {"opd": opd}})
    assert datasets.get_list(services.db, dataset.id, "inovasi").dataset.name == "inovasi"
    for row in submissions.list_submissions(services.db, dataset.id, "jebol_sipera_data_dukung"):
        values = row.current.values
        if values.get("nama_inovasi", "").lower().split() == ["sehat", "bersama"]:
            submissions.set_review_state(
                services.db,
                dataset.id,
                "jebol_sipera_data_dukung",
                row.submission.instance_id,
                "approved",
                actor_id=None,
            )
    report = iid_report.report_for(services.db, dataset.id, spd=40.0)
    # Approved only: Sehat Bersama ind16 P3 (3 x 3 = 9) + ind17 P2 (2 x 2 = 4) = 13, under the
    # registered name; the two typed spellings are one innovation.
    # SID = 13 / MAX(10, 3 registered) = 1.3; index = (40 + 1.3) / 250 x 100 = 16.52
    scores = {i.name: i.score for i in report.innovations}
    assert scores == {"Sehat-Bersama": 13, "Posyandu Digital": 0, "Sekolah Ceria": 0}
    assert all(i.registered for i in report.innovations)
    assert report.sid == 1.3 and report.index == 16.52
    names = {i.name: i.opd_name for i in report.innovations}
    assert names["Posyandu Digital"] == "Dinas Kesehatan"

    # An OPD entered as "lainnya" keeps the name typed for it; the portal's details come from
    # the entity, with the profile form's labels.
    entities.create(
        services.db,
        dataset.id,
        "inovasi",
        {
            "label": "Korpri Peduli",
            "data": {"opd": "lainnya", "opd_lain": "Sekretariat KORPRI", "tahapan": "uji_coba"},
        },
    )
    again = iid_report.report_for(services.db, dataset.id)
    korpri = next(i for i in again.innovations if i.name == "Korpri Peduli")
    assert korpri.opd_name == "Sekretariat KORPRI"
    assert "Uji coba" in korpri.details.values()
    # Four registered now: SID = 13 / MAX(10, 4) = 1.3 still.
    assert again.divisor == 10 and again.sid == 1.3


def test_the_report_page_shows_the_score_and_what_to_chase(services, dataset, client):
    from tests.security.conftest import ui_login

    email = f"iid-page-{dataset.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, dataset.id, "supervisor", user.actor_id)
    ui_login(client, email, "kata-sandi-panjang")
    page = client.get(f"/p/{dataset.id}/iid?spd=40&mode=draft")
    assert page.status_code == 200
    # The draft numbers of test_score_matches_the_hand_computation: SID 2.6, index 17.04.
    assert '<dd class="sid">2.6</dd>' in page.text and '<dd class="index">17.04</dd>' in page.text
    assert "Kurang Inovatif" in page.text and "Dinas Kesehatan" in page.text
    assert '<dd class="chase">ind31</dd>' in page.text  # Sekolah Ceria: a P2 with no document
    assert "iid-report.xlsx?spd=40&amp;jumlah=&amp;mode=draft" in page.text
    # The count term entered: SID = 26 / MAX(10, 3) + 30 = 32.6; (40 + 32.6) / 2.5 = 29.04.
    page = client.get(f"/p/{dataset.id}/iid?spd=40&jumlah=30&mode=draft")
    assert '<dd class="sid">32.6</dd>' in page.text and '<dd class="index">29.04</dd>' in page.text
    assert "jumlah=30" in page.text.split("iid-report.xlsx?")[1][:40]
    refused = client.get(f"/p/{dataset.id}/iid?spd=200")
    assert refused.status_code == 200 and "Skor SPD harus antara 0 dan 63" in refused.text
    assert "SID" not in refused.text.split('role="alert"')[1]


def test_the_portal_package_holds_exactly_the_files_that_score(services, dataset, client):
    email = f"iid-portal-{dataset.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, dataset.id, "supervisor", user.actor_id)
    auth = (email, "kata-sandi-panjang")
    response = client.get(f"/v1/projects/{dataset.id}/iid-portal.zip?mode=draft", auth=auth)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    files = sorted(n for n in archive.namelist() if n != "daftar.csv")
    # The draft's scoring evidence (test_score_matches_the_hand_computation): Sehat Bersama's
    # ind16 P3 SK and its ind17 P2 photo (not the P1 photo: the P2 level scores alone),
    # Posyandu Digital's ind35 link (a link has no file), Sekolah Ceria's ind33 P3 PDF.
    assert files == [
        "Dinas_Kesehatan/Sehat_Bersama/16_Regulasi_inovasi_daerah/ind16_p3_1.pdf",
        "Dinas_Kesehatan/Sehat_Bersama/17_Ketersediaan_SDM_terhadap_inovasi_daerah/ind17_p2_1.jpg",
        "Dinas_Pendidikan/Sekolah_Ceria/33_Kemanfaatan_inovasi/ind33_p3_1.pdf",
    ]
    assert archive.read(files[0]) == b"%PDF-1.4 small"
    # The workbook's data_dukung sheet names the same files where the package holds them,
    # and the photo evidence by its file name.
    book = client.get(f"/v1/projects/{dataset.id}/iid-report.xlsx?mode=draft", auth=auth)
    rows = load_workbook(io.BytesIO(book.content))["data_dukung"].iter_rows(values_only=True)
    header = next(rows)
    sheet = [dict(zip(header, row, strict=True)) for row in rows]
    packed = sorted(r["file di paket portal"] for r in sheet if r["file di paket portal"])
    assert packed == files
    used = [r for r in sheet if r["dipakai untuk skor"] == "ya"]
    # Four documents score; three carry files, Posyandu Digital's ind35 is a link alone.
    assert len(used) == 4 and [r["link"] for r in used if not r["file di paket portal"]] == [
        "https://youtu.be/x"
    ]
    photo = next(r for r in sheet if r["file di paket portal"] == files[1])
    assert photo["file"].endswith(".jpg") and photo["id kiriman"].startswith("uuid:")
    listed = list(csv.DictReader(io.StringIO(archive.read("daftar.csv").decode())))
    portal = {row["file"]: row["diterima portal"] for row in listed}
    assert portal[files[2]].startswith("tidak")  # the 3 MB PDF: over the portal's 2 MB
    assert portal[files[0]] == "ya"
    # Nothing is approved: by default the package is empty but for its list.
    strict = client.get(f"/v1/projects/{dataset.id}/iid-portal.zip", auth=auth)
    assert zipfile.ZipFile(io.BytesIO(strict.content)).namelist() == ["daftar.csv"]


def test_coverage_says_per_opd_what_to_chase(services, dataset, client):
    from tests.security.conftest import ui_login

    email = f"iid-cov-{dataset.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, dataset.id, "supervisor", user.actor_id)
    auth = (email, "kata-sandi-panjang")
    url = f"/v1/projects/{dataset.id}/opd-coverage"

    def by_opd():
        response = client.get(url, auth=auth)
        assert response.status_code == 200
        return {row["opd"]: row for row in response.json()}

    # Nothing approved: no score anywhere. Dinkes: the 20 November visit flagged Posyandu
    # Digital's ind35, and nothing approved came after it; claimed with no approved evidence:
    # Sehat Bersama ind16 (P3) and ind17 (P1, P2), Posyandu Digital ind35.
    dinkes = by_opd()["dinkes"]
    assert (dinkes["name"], dinkes["visits"], dinkes["lastVisit"]) == (
        "Dinas Kesehatan",
        1,
        "2026-11-20",
    )
    assert (dinkes["registered"], dinkes["score"]) == (2, 0)
    assert dinkes["flagged"] == ["Posyandu Digital: ind35"]
    assert sorted(dinkes["toComplete"]) == [
        "Posyandu Digital: ind35",
        "Sehat Bersama: ind16",
        "Sehat Bersama: ind17",
    ]
    assert dinkes["visitsUrl"] == f"/p/{dataset.id}/f/jebol_sipera_kunjungan?opd=dinkes"
    disdik = by_opd()["disdik"]
    assert (disdik["visits"], disdik["lastVisit"], disdik["registered"]) == (0, None, 1)
    assert sorted(disdik["toComplete"]) == ["Sekolah Ceria: ind31", "Sekolah Ceria: ind33"]

    # A supervisor approves Sehat Bersama's ind16 P3 SK and Posyandu Digital's ind35 P1 link
    # (sent today, after the flagging visit): Dinkes scores 3 x 3 + 4 x 1 = 13; the flag is
    # answered; left to complete: Sehat Bersama ind17.
    for row in submissions.list_submissions(services.db, dataset.id, "jebol_sipera_data_dukung"):
        if row.current.values.get("indikator") in ("ind16", "ind35"):
            submissions.set_review_state(
                services.db,
                dataset.id,
                "jebol_sipera_data_dukung",
                row.submission.instance_id,
                "approved",
                actor_id=None,
            )
    dinkes = by_opd()["dinkes"]
    assert (dinkes["score"], dinkes["flagged"]) == (13, [])
    assert dinkes["toComplete"] == ["Sehat Bersama: ind17"]

    ui_login(client, email, "kata-sandi-panjang")
    page = client.get(f"/p/{dataset.id}/cakupan")
    assert page.status_code == 200
    assert 'id="opd-dinkes"' in page.text and '<dd class="score">13.0</dd>' in page.text
    assert f'href="/p/{dataset.id}/f/jebol_sipera_kunjungan?opd=dinkes"' in page.text
    assert "Sehat Bersama: ind17" in page.text
    home = client.get(f"/p/{dataset.id}")
    assert f'href="/p/{dataset.id}/cakupan"' in home.text
    # An officer (data collector) sees neither.
    officer = f"iid-officer-{dataset.id}@example.org"
    collector = users.create_user(services.db, officer, "kata-sandi-panjang")
    roles.assign_role(services.db, dataset.id, "formfill", collector.actor_id)
    assert client.get(url, auth=(officer, "kata-sandi-panjang")).status_code == 403


def test_every_cause_on_one_dataset_reviewed_over_rest(services, dataset, client, tmp_path):
    """The causes the domain check found, each planted, reviewed as a supervisor would (REST),
    the workbook read back. 2023 bobot: ind16 3, ind17 2, ind18 2, ind20 1, ind33 3, ind35 4."""
    from datetime import date

    email = f"iid-all-{dataset.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, dataset.id, "supervisor", user.actor_id)
    auth = (email, "kata-sandi-panjang")
    dd = "jebol_sipera_data_dukung"

    def send(opd, name, indicator, parameter, **files):
        named = {k: v for k, v in files.items() if k in ("berkas", "photo", "link")}
        blobs = {v: b"%PDF-1.4 " + v.encode() for k, v in named.items() if k == "berkas"}
        body = _evidence(opd, name, indicator, parameter, **named)
        return _send(services, dataset, dd, body, blobs, tmp_path)

    def review(instance_id, state):
        url = f"/v1/projects/{dataset.id}/forms/{dd}/submissions/{instance_id}"
        assert client.patch(url, json={"reviewState": state}, auth=auth).status_code == 200

    existing = {
        (row.current.values["nama_inovasi"].lower(), row.current.values["parameter"]): (
            row.submission.instance_id
        )
        for row in submissions.list_submissions(services.db, dataset.id, dd)
    }
    # Cause 1, review states: Sehat Bersama's ind16 P3 SK and ind17 P2 photo approved;
    # Sekolah Ceria's ind33 P3 PDF has issues (never counts, in any mode).
    review(existing[("sehat bersama", "ind16_p3")], "approved")
    review(existing[("sehat  bersama", "ind17_p2")], "approved")
    review(existing[("sekolah ceria", "ind33_p3")], "hasIssues")
    review(send("disdik", "Sekolah Ceria", "ind33", "ind33_p1", berkas="p1.pdf"), "approved")
    # Cause 2, each level on its own evidence: ind18 P1 approved with its PDF, P2 rejected,
    # P3 approved with no file at all: only P1 stands.
    review(send("dinkes", "Sehat Bersama", "ind18", "ind18_p1", berkas="dpa.pdf"), "approved")
    review(send("dinkes", "Sehat Bersama", "ind18", "ind18_p2", berkas="dpa2.pdf"), "rejected")
    review(send("dinkes", "Sehat Bersama", "ind18", "ind18_p3"), "approved")
    # Cause 3, a visit's flag: Posyandu Digital's ind35 link, approved, was sent on the day
    # of a visit (today) that asks to complete it: set aside. (The fixture's 20 November
    # visit came before it and would not.)
    review(existing[("posyandu digital", "ind35_p1")], "approved")
    today = date.today().isoformat()
    _send(
        services,
        dataset,
        "jebol_sipera_kunjungan",
        f"<g_kunjungan><tgl_kunjungan>{today}</tgl_kunjungan><opd>dinkes</opd></g_kunjungan>"
        "<inovasi><inv_terdaftar>tidak</inv_terdaftar><inv_nama>Posyandu Digital</inv_nama>"
        "<inv_dd_kurang>ind35</inv_dd_kurang></inovasi>",
        {},
        tmp_path,
    )
    # Draft only: a PDF for Posyandu Digital's ind20 not reviewed yet.
    send("dinkes", "Posyandu Digital", "ind20", "ind20_p1", berkas="sop.pdf")

    # Approved only, by hand:
    #   Sehat Bersama:    ind16 P3 3 x 3 = 9; ind17 P2 2 x 2 = 4; ind18 P1 2 x 1 = 2 -> 15
    #   Posyandu Digital: ind35 set aside by today's visit -> 0
    #   Sekolah Ceria:    ind33 P1 3 x 1 = 3 (the P3 has issues); ind31 P2 no document -> 3
    #   n = 3: SID = 18 / MAX(10, 3) = 1.8; index = (40 + 1.8) / 250 x 100 = 16.72
    url = f"/v1/projects/{dataset.id}/iid-report.xlsx"
    book = load_workbook(io.BytesIO(client.get(f"{url}?spd=40", auth=auth).content))
    summary = dict(book["Ringkasan"].iter_rows(max_col=2, values_only=True))
    assert (summary["SID (simulasi)"], summary["Indeks (simulasi)"]) == (1.8, 16.72)
    assert summary["Predikat"] == "Kurang Inovatif"
    assert summary["Bukti yang dihitung"] == "hanya bukti yang diterima"
    rows = book["Dinas Kesehatan"].iter_rows(values_only=True)
    header = next(rows)
    lines = {(r[0], r[1]): dict(zip(header, r, strict=True)) for r in rows}
    assert lines[("Sehat Bersama", "ind18")]["level"] == 1
    assert lines[("Sehat Bersama", "ind18")]["skor"] == 2
    assert lines[("Posyandu Digital", "ind35")]["status data dukung"] == "perlu dilengkapi"
    assert lines[("Posyandu Digital", "ind35")]["skor"] == 0
    sheet = book["data_dukung"].iter_rows(values_only=True)
    header = next(sheet)
    docs = {(r[1], r[3]): dict(zip(header, r, strict=True)) for r in sheet}
    assert docs[("Sehat Bersama", "ind18_p2")]["status review"] == "ditolak"
    assert docs[("Sehat Bersama", "ind18_p2")]["dipakai untuk skor"] == "tidak"
    assert docs[("Sehat Bersama", "ind18_p1")]["dipakai untuk skor"] == "ya"
    assert docs[("Sekolah Ceria", "ind33_p3")]["status review"] == "ada masalah"

    # The draft adds Posyandu Digital's ind20 P1 (1 x 1 = 1), never the rejected or
    # has-issues ones: SID = 19 / 10 = 1.9; with the count term 30.4 entered,
    # SID = 1.9 + 30.4 = 32.3 and index = (40 + 32.3) / 250 x 100 = 28.92.
    book = load_workbook(
        io.BytesIO(client.get(f"{url}?spd=40&mode=draft&jumlah=30.4", auth=auth).content)
    )
    summary = dict(book["Ringkasan"].iter_rows(max_col=2, values_only=True))
    assert (summary["SID (simulasi)"], summary["Indeks (simulasi)"]) == (32.3, 28.92)
    assert summary["Skor jumlah inovasi"] == 30.4
    assert summary["Bukti yang dihitung"].startswith("DRAF")
