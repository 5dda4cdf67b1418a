"""The submissions list (issue #16): the date range on the visit date and on local days, the
search over answers, the submitter names, the columns of the shipped visit form and the
Kolom chooser, the message when nothing matches. Real SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import datetime
from types import SimpleNamespace

import msgspec
import pytest
import sqlalchemy as sa

from server.bootstrap import library_forms
from server.ui import columns
from storage import browse, projects, roles, submissions, users
from storage import forms as form_store
from storage.models import Submission
from storage.submissions import Sender
from tests.collect import instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import LIBRARY_VERSION, make_app_user
from tests.server.test_ui import login

VISIT = "jebol_sipera_kunjungan"


def _visit(
    day: str, opd: str, innovations: list[str], *, officers: str = "", contact: str = "Ani"
) -> str:
    rows = "".join(
        f"<inovasi><inv_terdaftar>tidak</inv_terdaftar><inv_nama>{n}</inv_nama></inovasi>"
        for n in innovations
    )
    return (
        f"<g_kunjungan><tgl_kunjungan>{day}</tgl_kunjungan><opd>{opd}</opd><unit_kerja/>"
        f"<petugas_nama>{officers}</petugas_nama><petugas_lain/><cp_nama>{contact}</cp_nama>"
        f"</g_kunjungan>{rows}<g_penutup><tgl_tindak_lanjut>2026-12-20</tgl_tindak_lanjut>"
        "</g_penutup>"
    )


@pytest.fixture(scope="module")
def world(services):
    """The shipped visit form with five visits: three from November sent on 1 December, one
    received 2026-12-01T23:36Z (2 December in WIB), one with accented answers."""
    project = projects.create_project(services.db, f"Daftar kiriman {new_instance_id()[-8:]}")
    source = next(p for p in library_forms() if VISIT in p.name)
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, source.read_bytes(), source.name
    )
    budi = make_app_user(services, project, "HP Budi", [VISIT])
    nunez = make_app_user(services, project, "HP Ñuñez", [VISIT])
    email = f"pengawas-daftar-{project.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, project.id, "supervisor", user.actor_id)
    visits = [
        ("2026-11-03", "dinkes", ["Posyandu Digital"], "2026-12-01T02:10:00+00:00", budi),
        (
            "2026-11-17",
            "disdik",
            ["Rapor Digital", "Sekolah Ceria"],
            "2026-12-01T02:11:00+00:00",
            budi,
        ),
        ("2026-11-30", "dinkes", ["Posyandu Digital"], "2026-12-01T02:12:00+00:00", nunez),
        ("2026-12-02", "disdik", ["Sekolah Ceria"], "2026-12-01T23:36:00+00:00", nunez),
        ("2026-12-03", "dinkes", ["Désa Ñagari Sehat"], "2026-12-03T03:00:00+00:00", nunez),
    ]
    ids = []
    for index, (day, opd, innovations, received, phone) in enumerate(visits):
        iid = new_instance_id()
        body = _visit(
            day,
            opd,
            innovations,
            officers="Rina Marlina, Yusuf Ñuñez" if index == 4 else "Rina Marlina",
            contact="Ñuñez" if index == 4 else "Ani",
        )
        done = submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml(VISIT, LIBRARY_VERSION, iid, body, instance_name=f"Kunjungan {day}"),
            sender=Sender(actor_id=phone.actor.id),
        )
        with services.db.transaction() as tx:
            tx.execute(
                sa.update(Submission)
                .where(Submission.id == done.submission.id)
                .values(created_at=datetime.fromisoformat(received))
            )
        ids.append(iid)
    form = form_store.get_form(services.db, project.id, VISIT)
    return SimpleNamespace(project=project, form=form, email=email, ids=ids, budi=budi, nunez=nunez)


def _names(page) -> list[str]:
    return sorted(row.version.instance_name for row in page.rows)


def _page(services, world, **filters) -> list[str]:
    return _names(browse.page_submissions(services.db, world.form, browse.Filters(**filters)))


def _shown(response) -> list[str]:
    """The instance names of the table's rows."""
    return sorted(re.findall(r">(Kunjungan [0-9-]+)<", re.sub(r"</?span[^>]*>", "", response.text)))


def test_november_visits_sent_in_december_are_found_by_the_visit_date(services, world):
    url = f"/p/{world.project.id}/f/{VISIT}"
    with make_client(services) as client:
        login(client, world.email)
        november = client.get(f"{url}?since=2026-11-01&until=2026-11-30")
        assert november.status_code == 200
        assert _shown(november) == [
            "Kunjungan 2026-11-03",
            "Kunjungan 2026-11-17",
            "Kunjungan 2026-11-30",
        ]
        assert "3 kiriman · Tanggal kunjungan" in html.unescape(november.text)
        # The same range on the day they arrived: none; the filters stay open with a message.
        received = client.get(f"{url}?since=2026-11-01&until=2026-11-30&dateby=received")
        assert _shown(received) == []
        text = html.unescape(received.text)
        assert "Tidak ada kiriman yang cocok dengan saringan ini." in text
        assert "Perlebar rentang tanggal." in text
        assert re.search(r'<details class="card filter-box list-box" open>', received.text)
        assert 'name="since" value="2026-11-01"' in received.text
        assert re.search(r'<option value="received" selected>', received.text)
        local = client.get(f"{url}?since=2026-12-02&until=2026-12-02&dateby=received")
        assert _shown(local) == ["Kunjungan 2026-12-02"]  # received 2026-12-01T23:36Z
        # No filter: the filters are folded (on phones) and there is no message.
        plain = client.get(url)
        assert len(_shown(plain)) == 5 and "Tidak ada kiriman" not in plain.text
        assert '<details class="card filter-box list-box" >' in plain.text


def test_received_days_are_local_days(services, world):
    """Received 2026-12-01T23:36Z is 2 December 06:36 in WIB."""
    second = _page(
        services, world, since=datetime(2026, 12, 2).date(), until=datetime(2026, 12, 2).date()
    )
    assert second == ["Kunjungan 2026-12-02"]
    first = _page(
        services, world, since=datetime(2026, 12, 1).date(), until=datetime(2026, 12, 1).date()
    )
    assert first == ["Kunjungan 2026-11-03", "Kunjungan 2026-11-17", "Kunjungan 2026-11-30"]


@pytest.mark.parametrize(
    "text, found",
    [
        ("DÉSA", ["Kunjungan 2026-12-03"]),  # "Désa Ñagari Sehat", a repeat row's answer
        ("désa ñagari", ["Kunjungan 2026-12-03"]),
        ("ñuñez", ["Kunjungan 2026-12-03"]),  # "Ñuñez"; SQLite's lower() leaves Ñ
        ("ÑUÑEZ", ["Kunjungan 2026-12-03"]),
        ("rapor", ["Kunjungan 2026-11-17"]),
        ("2026-11-3", ["Kunjungan 2026-11-30"]),  # the visit date, the instance name
        ("_", []),
        ('"', []),
        (":", []),
        ("%", []),
        ("tgl_kunjungan", []),  # a field name
        ("g_kunjungan", []),
        ("inv_nama", []),
        ("uuid", []),  # meta/instanceID is no answer
        ("désa\x1fñagari", []),  # no match across two answers
    ],
)
def test_search_looks_in_the_answers_literally_and_caselessly(services, world, text, found):
    assert _page(services, world, text=text) == found


def test_submitter_filter_offers_the_names(services, world):
    url = f"/p/{world.project.id}/f/{VISIT}"
    with make_client(services) as client:
        login(client, world.email)
        page = client.get(url).text
        options = re.findall(r'<option value="(\d+)" >([^<]+)</option>', page)
        assert (str(world.budi.actor.id), "HP Budi") in options
        assert (str(world.nunez.actor.id), "HP Ñuñez") in options
        assert "Dikirim oleh" in page and "ID pengirim" not in page
        mine = client.get(f"{url}?submitter={world.budi.actor.id}")
        assert _shown(mine) == ["Kunjungan 2026-11-03", "Kunjungan 2026-11-17"]


def test_the_visit_form_shows_its_columns_and_the_chooser_remembers(services, world):
    url = f"/p/{world.project.id}/f/{VISIT}"
    with make_client(services) as client:
        login(client, world.email)
        page = client.get(f"{url}?q=ñagari").text
        header = re.search(r"<thead>(.*?)</thead>", page, re.S).group(1)
        assert re.findall(r"<th>([^<]+)</th>", header) == [
            "Kiriman",
            "Diterima pada",
            "Status tinjauan",
            "OPD",
            "Tanggal kunjungan",
            "Inovasi dibahas",
            "Tanggal tindak lanjut",
            "Petugas yang hadir",
        ]
        row = re.search(r'<tbody id="rows">(.*?)</tbody>', page, re.S).group(1)
        cells = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r'<td data-label="[^"]*"[^>]*>(.*?)</td>', row, re.S)
        ]
        assert cells[-5:] == [
            "Dinas Kesehatan",
            "2026-12-03",
            "Désa Ñagari Sehat",
            "2026-12-20",
            "Rina Marlina, Yusuf Ñuñez",
        ]
        # Kolom: the contact person and the innovations; remembered (a cookie) with the filters.
        chosen = client.get(
            f"{url}?q=ñagari&cols=&cols=/g_kunjungan/cp_nama&cols=@innovations",
            follow_redirects=False,
        )
        assert chosen.status_code == 303
        assert chosen.headers["location"] == f"{url}?q=%C3%B1agari"
        assert "jebol_cols_" in chosen.headers["set-cookie"]
        header = re.search(r"<thead>(.*?)</thead>", client.get(url).text, re.S).group(1)
        assert re.findall(r"<th>([^<]+)</th>", header)[3:] == [
            "Inovasi dibahas",
            "Nama narahubung OPD",
        ]
        client.get(f"{url}?cols=", follow_redirects=False)  # none ticked: the defaults again
        header = re.search(r"<thead>(.*?)</thead>", client.get(url).text, re.S).group(1)
        assert "Petugas yang hadir" in header


def test_other_forms_get_their_first_answered_questions(services, world):
    schema = form_store.schema_of(form_store.current_version(services.db, world.form))
    assert [c.key for c in columns.presets(schema)] == [
        "/g_kunjungan/opd",
        "/g_kunjungan/tgl_kunjungan",
        "@innovations",
        "/g_penutup/tgl_tindak_lanjut",
        "@officers",
    ]
    # The same questions in a form without presets: those answered in the latest submissions
    # (no empty unit_kerja, no calculation, no group, repeat or meta).
    other = msgspec.structs.replace(schema, form_id="formulir_lain")
    sample = browse.recent_values(services.db, world.form)
    assert [c.key for c in columns.defaults(other, lambda: sample)] == [
        "/g_kunjungan/tgl_kunjungan",
        "/g_kunjungan/opd",
        "/g_kunjungan/cp_nama",
        "/g_penutup/tgl_tindak_lanjut",
    ]
    assert len(columns.defaults(other, lambda: [])) == columns.DEFAULT_COUNT
