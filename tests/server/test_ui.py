"""The supervisor UI through HTTP: login with CSRF, pages, review rules, the message catalogue."""

from __future__ import annotations

import hashlib
import re

import pytest

from server.ui import i18n
from server.ui.messages import message_ids
from storage import forms as form_store
from storage import roles, submissions, users
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import LIBRARY_VERSION, jpeg, make_project, photo_body, publish


def test_every_interface_string_has_an_indonesian_translation():
    catalog = i18n.catalog("id")
    missing = sorted(m for m in message_ids() if not catalog.get(m))
    assert not missing, missing
    assert len(message_ids()) > 100


@pytest.fixture
def world(services, tmp_path):
    project = make_project(services)
    publish(services, project)
    email = f"pengawas-{project.id}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    roles.assign_role(services.db, project.id, "supervisor", user.actor_id)
    iid = new_instance_id()
    photo = jpeg(seed=3)
    part = tmp_path / "p"
    part.write_bytes(photo)
    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        instance_xml("foto_sederhana", "1", iid, photo_body("Siti"), instance_name="Siti"),
        [IncomingFile("utama.jpg", part, len(photo), hashlib.sha256(photo).hexdigest())],
        sender=Sender(actor_id=None),
    )
    return project, email, iid


def login(client, email, password="kata-sandi-panjang"):
    page = client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login",
        data={"email": email, "password": password, "next": "/", "_csrf_token": token},
        follow_redirects=False,
    )


def test_login_sets_a_safe_cookie_and_pages_render(services, world):
    project, email, iid = world
    with make_client(services) as client:
        assert client.get(f"/p/{project.id}", follow_redirects=False).status_code == 303
        response = login(client, email)
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert "jebol_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        home = client.get(f"/p/{project.id}")
        assert home.status_code == 200 and "Foto sederhana" in home.text
        table = client.get(f"/p/{project.id}/f/foto_sederhana")
        assert "Siti" in table.text and "Diterima" in table.text  # Indonesian by default
        page = client.get(f"/p/{project.id}/f/foto_sederhana/s/{iid}")
        assert page.status_code == 200 and "/thumb/320/utama.jpg" in page.text
        thumb = re.search(r'src="([^"]+/thumb/320/utama\.jpg[^"]*)"', page.text).group(1)
        image = client.get(thumb.replace("&amp;", "&"))
        assert image.headers["content-type"] == "image/jpeg"
        assert "max-age=31536000" in image.headers["cache-control"]
        board = client.get(f"/p/{project.id}/f/foto_sederhana/board")
        assert board.status_code == 200 and "utama.jpg" in board.text
        client.get("/lang/en")
        assert "Received" in client.get(f"/p/{project.id}/f/foto_sederhana").text


def test_wrong_password_is_refused_in_the_page(services, world):
    project, email, _ = world
    with make_client(services) as client:
        response = login(client, email, "bukan-sandinya")
        assert response.status_code == 401 and "Email atau kata sandi salah" in response.text


def test_post_without_csrf_token_is_refused(services, world):
    project, email, iid = world
    with make_client(services) as client:
        login(client, email)
        response = client.post(
            f"/p/{project.id}/f/foto_sederhana/s/{iid}/review",
            data={"state": "approved"},
            follow_redirects=False,
        )
        assert response.status_code == 403
        assert (
            submissions.get_summary(
                services.db, project.id, "foto_sederhana", iid
            ).submission.review_state
            is None
        )


def test_reject_needs_a_comment_and_approve_works(services, world):
    project, email, iid = world
    with make_client(services) as client:
        login(client, email)
        token = client.cookies["jebol_csrf"]
        url = f"/p/{project.id}/f/foto_sederhana/s/{iid}/review"
        refused = client.post(
            url,
            data={"state": "rejected", "comment": " ", "_csrf_token": token},
            follow_redirects=False,
        )
        assert refused.status_code == 400
        approved = client.post(
            url, data={"state": "approved", "_csrf_token": token}, headers={"hx-request": "true"}
        )
        assert approved.status_code == 200 and "Disetujui" in approved.text
    assert (
        submissions.get_summary(
            services.db, project.id, "foto_sederhana", iid
        ).submission.review_state
        == "approved"
    )


def _admin_client(services, tag):
    email = f"admin-ui-{tag}@example.org"
    users.create_user(services.db, email, "kata-sandi-panjang", is_admin=True)
    client = make_client(services)
    client.__enter__()
    login(client, email)
    return client


def test_form_upload_shows_pyxform_errors_then_publishes_a_draft(services, tmp_path):
    from tests.factories import xlsx_from_md

    project = make_project(services)
    client = _admin_client(services, project.id)
    try:
        token = client.cookies["jebol_csrf"]
        url = f"/p/{project.id}/forms/upload"
        broken = client.post(
            url,
            data={"_csrf_token": token},
            files={"file": ("rusak.xlsx", xlsx_from_md("rusak", tmp_path))},
        )
        assert broken.status_code == 400 and "choices sheet" in broken.text
        ok = client.post(
            url,
            data={"_csrf_token": token},
            files={"file": ("tanpa_media.xlsx", xlsx_from_md("tanpa_media", tmp_path))},
        )
        assert ok.status_code == 200 and "max-pixels" in ok.text  # the draft's warnings
        published = client.post(
            f"/p/{project.id}/forms/tanpa_media/publish", data={"_csrf_token": token, "version": ""}
        )
        assert published.status_code == 200
        from storage import forms as form_store

        [(form, version)] = form_store.list_forms(services.db, project.id)
        assert version.published_at is not None and version.version == "2024010101"
    finally:
        client.__exit__(None, None, None)


def test_app_user_create_show_qr_and_revoke(services):
    project = make_project(services)
    client = _admin_client(services, f"a{project.id}")
    try:
        token = client.cookies["jebol_csrf"]
        client.post(
            f"/p/{project.id}/app-users",
            data={"_csrf_token": token, "display_name": "Petugas Talawi"},
        )
        page = client.get(f"/p/{project.id}/app-users")
        assert "Petugas Talawi" in page.text and "/v1/key/" in page.text and "/f/" in page.text
        qr = re.search(r'src="(/v1/projects/\d+/app-users/\d+/qr\.svg)"', page.text).group(1)
        assert client.get(qr).headers["content-type"].startswith("image/svg+xml")
        # Each QR code says what it is for; revoking sits behind a disclosure that says
        # what it does.
        assert "ODK Collect (Android)" in page.text and "iPhone juga" in page.text
        assert '<details class="revoke">' in page.text and "Cabut akses Petugas Talawi" in page.text
        actor = re.search(r"/app-users/(\d+)/revoke", page.text).group(1)
        client.post(f"/p/{project.id}/app-users/{actor}/revoke", data={"_csrf_token": token})
        assert "Dicabut" in client.get(f"/p/{project.id}/app-users").text
    finally:
        client.__exit__(None, None, None)


def test_error_pages_and_form_states_speak_indonesian(services, world):
    project, email, _ = world
    with make_client(services) as client:
        login(client, email)
        missing = client.get(f"/p/{project.id}/f/foto_sederhana/s/uuid:tidak-ada")
        assert missing.status_code == 404 and "Tidak ditemukan" in missing.text
        assert "Halaman atau data ini tidak ada" in missing.text
        # A supervisor may not manage forms.
        refused = client.get(f"/p/{project.id}/forms")
        assert refused.status_code == 403 and "Tidak diizinkan" in refused.text
        assert "Peran Anda di proyek ini" in refused.text
        form_store.set_state(services.db, project.id, "foto_sederhana", "closing")
        home = client.get(f"/p/{project.id}")
        assert "Tidak ditawarkan ke ponsel (menutup)" in home.text and ">closing<" not in home.text


def test_admin_creates_a_user_and_gives_a_role(services):
    project = make_project(services)
    client = _admin_client(services, f"u{project.id}")
    try:
        token = client.cookies["jebol_csrf"]
        email = f"baru-{project.id}@example.org"
        client.post(
            "/users",
            data={
                "_csrf_token": token,
                "email": email,
                "password": "kata-sandi-panjang",
                "display_name": "Baru",
            },
        )
        user = users.find_user_by_email(services.db, email)
        assert user is not None
        client.post(
            "/users/roles",
            data={
                "_csrf_token": token,
                "project_id": project.id,
                "role": "supervisor",
                "actor_id": user.actor_id,
            },
        )
        assert (user.actor_id, "supervisor") in roles.list_assignments(services.db, project.id)
    finally:
        client.__exit__(None, None, None)


def test_opd_coverage_counts_visits_innovations_and_overdue_follow_ups(services, tmp_path):
    from datetime import date

    from server.bootstrap import library_forms
    from storage import browse
    from storage import forms as form_store

    project = make_project(services)
    visit_form = next(p for p in library_forms() if "kunjungan" in p.name)
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, visit_form.read_bytes(), visit_form.name
    )

    def visit(opd, day, follow_up, innovations):
        rows = "".join(f"<inovasi><inv_nama>I{n}</inv_nama></inovasi>" for n in range(innovations))
        body = (
            f"<g_kunjungan><tgl_kunjungan>{day}</tgl_kunjungan><opd>{opd}</opd></g_kunjungan>"
            f"{rows}<g_penutup><tgl_tindak_lanjut>{follow_up}</tgl_tindak_lanjut></g_penutup>"
        )
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml("jebol_sipera_kunjungan", LIBRARY_VERSION, new_instance_id(), body),
            [],
            sender=Sender(actor_id=None),
        )

    visit("dinkes", "2026-10-01", "2026-10-15", 2)
    visit("dinkes", "2026-11-01", "2026-11-10", 1)  # one innovation: a single object, not a list
    visit("disdik", "2026-11-20", "2026-12-20", 3)
    coverage = {
        c.opd: c
        for c in browse.opd_coverage(
            services.db, project.id, lambda labels, v: v, date(2026, 11, 27)
        )
    }
    dinkes, disdik = coverage["dinkes"], coverage["disdik"]
    assert (dinkes.visits, dinkes.innovations, dinkes.last_visit) == (2, 3, "2026-11-01")
    assert dinkes.follow_up == "2026-11-10" and dinkes.overdue
    assert (disdik.visits, disdik.innovations, disdik.overdue) == (1, 3, False)
    assert coverage["setda"].visits == 0 and coverage["setda"].last_visit is None

    # Visits that name a registered innovation count it once per OPD: two visits to BPBD
    # choosing the same innovation and one choosing another are 2 innovations, not 3.
    from storage import entities

    ids = [
        entities.create(services.db, project.id, "inovasi", {"label": name}).entity.uuid
        for name in ("Siaga Banjir", "Lapor Bencana")
    ]

    def chosen_visit(day, uuid):
        body = (
            f"<g_kunjungan><tgl_kunjungan>{day}</tgl_kunjungan><opd>bpbd</opd></g_kunjungan>"
            f"<inovasi><inv_terdaftar>ya</inv_terdaftar><inv_entity>{uuid}</inv_entity>"
            "<inv_nama>x</inv_nama></inovasi>"
        )
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml("jebol_sipera_kunjungan", LIBRARY_VERSION, new_instance_id(), body),
            [],
            sender=Sender(actor_id=None),
        )

    for day, uuid in (("2026-11-02", ids[0]), ("2026-11-09", ids[0]), ("2026-11-16", ids[1])):
        chosen_visit(day, uuid)
    bpbd = next(
        c
        for c in browse.opd_coverage(
            services.db, project.id, lambda labels, v: v, date(2026, 11, 27)
        )
        if c.opd == "bpbd"
    )
    assert (bpbd.visits, bpbd.innovations) == (3, 2)


def test_pages_name_the_opd_of_an_old_instance_name(services, tmp_path):
    """Visits sent with the instruments before 2026120502 are named "dinkes 2026-10-06": the
    table, the submission page and the evidence board show the OPD's name instead ("another
    OPD" by its typed name); the stored instance name stays the phone's."""
    from server.bootstrap import library_forms

    project = make_project(services)
    visit_form = next(p for p in library_forms() if "kunjungan" in p.name)
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, visit_form.read_bytes(), visit_form.name
    )
    sent = {}
    for seed, (opd, typed, name) in enumerate(
        [
            ("dinkes", "", "dinkes 2026-10-06"),
            ("lainnya", "Kantor Camat Talawi", "lainnya 2026-10-07"),
            ("dinkes", "", "dinkes2 catatan"),  # not the code followed by a space: kept
        ]
    ):
        instance_id = new_instance_id()
        body = (
            f"<g_kunjungan><tgl_kunjungan>2026-10-06</tgl_kunjungan><opd>{opd}</opd>"
            f"<opd_lain>{typed}</opd_lain></g_kunjungan>"
            "<g_penutup><foto_daftar_hadir>hadir.jpg</foto_daftar_hadir></g_penutup>"
        )
        xml = instance_xml(
            "jebol_sipera_kunjungan", LIBRARY_VERSION, instance_id, body, instance_name=name
        )
        image = jpeg(seed=seed)
        part = tmp_path / f"part-{seed}"
        part.write_bytes(image)
        photo = IncomingFile("hadir.jpg", part, len(image), hashlib.sha256(image).hexdigest())
        submissions.ingest(
            services.db, services.blobs, project.id, xml, [photo], sender=Sender(actor_id=None)
        )
        sent[name] = instance_id
    stored = submissions.get_submission(
        services.db, project.id, "jebol_sipera_kunjungan", sent["dinkes 2026-10-06"]
    )
    assert stored.current.instance_name == "dinkes 2026-10-06"
    base = f"/p/{project.id}/f/jebol_sipera_kunjungan"
    client = _admin_client(services, "opd-names")
    try:
        table = client.get(base).text
        board = client.get(f"{base}/board").text
        page = client.get(f"{base}/s/{sent['dinkes 2026-10-06']}").text
    finally:
        client.__exit__(None, None, None)
    for html in (table, board):
        html = re.sub(r"<span[^>]*>|</span>", "", html)  # words kept whole: <span class="nw">
        assert "Dinas Kesehatan 2026-10-06" in html
        assert "Kantor Camat Talawi 2026-10-07" in html
        assert "dinkes2 catatan" in html
        assert "dinkes 2026-10-06" not in html and "lainnya 2026-10-07" not in html
    assert "<h1>Dinas Kesehatan 2026-10-06</h1>" in page
