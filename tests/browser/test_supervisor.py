"""The supervisor's work in a real browser at a phone's size (360 x 740)."""

from __future__ import annotations

import hashlib
import io
from urllib.parse import urlsplit

import pytest
from PIL import Image

from server.bootstrap import library_forms
from storage import app_users, projects, roles, submissions, users
from storage import forms as form_store
from storage.submissions import IncomingFile, Sender
from tests.browser import screenshot
from tests.collect import instance_xml, new_instance_id
from tests.factories import LIBRARY_VERSION, publish

PASSWORD = "kata-sandi-panjang"


def _photo(seed: int) -> bytes:
    image = Image.new("RGB", (640, 480), (seed * 40 % 256, 90, 160))
    for x in range(0, 640, 40):
        for y in range(0, 480, 40):
            if (x + y + seed * 13) % 80 == 0:
                image.paste((255, 255, 255), (x, y, x + 40, y + 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


VISIT = (
    "<g_kunjungan><tgl_kunjungan>2026-11-20</tgl_kunjungan><opd>{opd}</opd>"
    "<cp_nama>Ani</cp_nama><lokasi>-0.6812 100.7766 250 5</lokasi></g_kunjungan>"
    "<inovasi><inv_nama>{name}</inv_nama><bukti><bukti_indikator>ind16</bukti_indikator>"
    "<bukti_foto>{evidence}</bukti_foto></bukti></inovasi><g_penutup>"
    "<foto_daftar_hadir>hadir.jpg</foto_daftar_hadir>"
    "<tgl_tindak_lanjut>2026-12-01</tgl_tindak_lanjut></g_penutup>"
)


@pytest.fixture(scope="module")
def world(services_sqlite, tmp_path_factory):
    services = services_sqlite
    project = projects.create_project(services.db, "Jemput Bola (uji peramban)")
    kunjungan = next(p for p in library_forms() if "kunjungan" in p.name)
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, kunjungan.read_bytes(), kunjungan.name
    )
    user = users.create_user(services.db, f"pengawas-{project.id}@example.org", PASSWORD)
    roles.assign_role(services.db, project.id, "supervisor", user.actor_id)
    folder = tmp_path_factory.mktemp("photos")
    shared = _photo(9)  # the same attendance photo in two visits: flagged "duplicate"
    ids = []
    for index, (opd, name) in enumerate([("dinkes", "Sehat Bersama"), ("disdik", "Sekolah Ceria")]):
        files = []
        for part_name, data in (("bukti.jpg", _photo(index)), ("hadir.jpg", shared)):
            path = folder / f"{index}-{part_name}"
            path.write_bytes(data)
            files.append(IncomingFile(part_name, path, len(data), hashlib.sha256(data).hexdigest()))
        iid = new_instance_id()
        body = VISIT.format(opd=opd, name=name, evidence="bukti.jpg")
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml(
                "jebol_sipera_kunjungan",
                LIBRARY_VERSION,
                iid,
                body,
                instance_name=f"{opd} 2026-11-20",
            ),
            files,
            sender=Sender(actor_id=None),
        )
        ids.append(iid)
    return project, user.email, ids


def _login(page, live, email):
    page.goto(f"{live.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/p/**")


def _fits_the_phone(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide at a 360px viewport"


def test_review_flow_on_a_phone(page, live, world, services_sqlite):
    project, email, ids = world
    _login(page, live, email)
    _fits_the_phone(page)
    screenshot(page, "project-home")

    page.goto(f"{live.url}/p/{project.id}/f/jebol_sipera_kunjungan")
    _fits_the_phone(page)
    screenshot(page, "submissions")

    page.goto(f"{live.url}/p/{project.id}/f/jebol_sipera_kunjungan/s/{ids[0]}")
    page.wait_for_load_state("networkidle")
    widths = page.eval_on_selector_all(
        "#gallery a.photo img", "imgs => imgs.map(i => i.naturalWidth)"
    )
    assert len(widths) == 2 and all(w > 0 for w in widths), widths
    _fits_the_phone(page)
    screenshot(page, "submission")

    # Rejecting without a comment is refused in the page and the state stays.
    page.click("form.review button[value=rejected]")
    assert page.evaluate("document.querySelector('form.review textarea').validationMessage")
    assert (
        submissions.get_summary(
            services_sqlite.db, project.id, "jebol_sipera_kunjungan", ids[0]
        ).submission.review_state
        is None
    )

    # The board, filtered by a flag, then approve from the lightbox.
    page.goto(f"{live.url}/p/{project.id}/f/jebol_sipera_kunjungan/board?flag=duplicate")
    tiles = page.locator(".tile")
    assert tiles.count() == 2  # the shared attendance photo, once in each visit
    assert page.locator(".tile .flags").first.inner_text().strip() != ""
    _fits_the_phone(page)
    screenshot(page, "board")
    page.locator(".tile a.photo").first.click()
    page.wait_for_selector(".pswp .pswp__custom-caption button[value=approved]", state="visible")
    screenshot(page, "lightbox", full_page=False)
    page.click(".pswp .pswp__custom-caption button[value=approved]")
    page.wait_for_selector(".pswp .pswp__custom-caption .state-approved")
    states = {
        submissions.get_summary(
            services_sqlite.db, project.id, "jebol_sipera_kunjungan", iid
        ).submission.review_state
        for iid in ids
    }
    assert "approved" in states

    # Switch the interface to English.
    page.goto(f"{live.url}/p/{project.id}")
    page.click("a[lang=en]")
    page.wait_for_selector("text=Evidence board")
    assert page.locator("html").get_attribute("lang") == "en"


def test_admin_pages_fit_a_phone(page, live, world, services_sqlite):
    project, _, _ = world
    admin = users.create_user(
        services_sqlite.db, f"admin-{project.id}@example.org", PASSWORD, is_admin=True
    )
    app_users.create_app_user(services_sqlite.db, services_sqlite.box, project.id, "Petugas Uji")
    page.goto(f"{live.url}/login?next=/p/{project.id}/forms")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/p/{project.id}/forms")
    for name, path in (
        ("forms-admin", f"/p/{project.id}/forms"),
        ("app-users", f"/p/{project.id}/app-users"),
        ("users", "/users"),
    ):
        page.goto(f"{live.url}{path}")
        page.wait_for_load_state("networkidle")
        _fits_the_phone(page)
        screenshot(page, name)
    qr = page.goto(f"{live.url}/p/{project.id}/app-users")
    assert qr.ok and page.locator("img.qr").first.evaluate("i => i.naturalWidth") > 0


@pytest.mark.parametrize("viewport", [(360, 740), (1366, 768)], ids=["phone-360", "desktop-1366"])
def test_app_users_assign_forms(browser, live, services_sqlite, viewport):
    """A manager creates an app user with one of two forms ticked, then assigns the other."""
    services = services_sqlite
    width, height = viewport
    project = projects.create_project(services.db, f"Penugasan formulir {width}")
    for name in ("foto_sederhana", "tanpa_media"):
        publish(services, project, name)
    manager = users.create_user(services.db, f"manajer-{project.id}@example.org", PASSWORD)
    roles.assign_role(services.db, project.id, "manager", manager.actor_id)
    context = browser.new_context(
        viewport={"width": width, "height": height},
        is_mobile=width < 760,
        has_touch=width < 760,
        locale="id-ID",
        timezone_id="Asia/Jakarta",
        service_workers="block",
    )
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if urlsplit(route.request.url).hostname == "127.0.0.1"
            else route.abort("blockedbyclient")
        ),
    )
    page = context.new_page()
    try:
        page.goto(f"{live.url}/login?next=/p/{project.id}/app-users")
        page.fill("input[name=email]", manager.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live.url}/p/{project.id}/app-users")
        assert page.locator("p.note").inner_text().startswith("Ponsel hanya melihat")
        page.fill("input[name=display_name]", "Petugas Lapangan Satu")
        page.uncheck("input[name=forms][value=tanpa_media]")
        page.click(".new-app-user button[type=submit]")
        page.wait_for_url(f"{live.url}/p/{project.id}/app-users#u*")
        officer = app_users.find_app_user_by_name(
            services.db, services.box, project.id, "Petugas Lapangan Satu"
        )

        def holds() -> set[str]:
            return {
                xml_form_id
                for xml_form_id in ("foto_sederhana", "tanpa_media")
                if officer.actor.id
                in {a.id for a in roles.list_form_assignees(services.db, project.id, xml_form_id)}
            }

        assert holds() == {"foto_sederhana"}
        page.wait_for_load_state("networkidle")
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"the page is {scroll}px wide at a {width}px viewport"
        small = page.eval_on_selector_all(
            "main button, main label.pick",
            "els => els.map(e => [e.textContent.trim(), e.getBoundingClientRect().height])"
            ".filter(([, h]) => h < 40)",
        )
        assert small == [], small  # tap targets
        screenshot(page, f"app-users-{width}")

        card = page.locator(f"#u{officer.actor.id}")
        card.locator("button[value=assign]").click()
        page.wait_for_load_state("networkidle")
        assert holds() == {"foto_sederhana", "tanpa_media"}
        assert card.locator("button[value=unassign]").count() == 2
    finally:
        context.close()
