"""The officer's offline web form (/f/{key}/) in chromium at a phone's size (Indonesian, in
Jakarta's time zone), with its service worker running: forms kept for offline use, filled and
queued offline (typed day-first dates, a drawn signature), sent when the connection is back; a
server error or a lost answer never loses a record nor makes two."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from forms.instance import read_instance
from server.bootstrap import install_lists, library_forms
from server.webform import assets
from storage import app_users, entities, projects, submissions
from storage import forms as form_store
from storage.blobs import blob_key
from tests.browser import screenshot
from tests.browser.conftest import PHONE, loopback_page
from tests.factories import DATA, assign_forms, jpeg
from tests.live import LiveServer

GEO = {"latitude": -0.6812, "longitude": 100.7766, "accuracy": 5}
READY = ".form-initialization-status.ready"
VISIT = "jebol_sipera_kunjungan"
OFFICERS = ("Budi Santoso", "Sari Dewi", "Rahmat Hidayat")  # the `petugas` list
SMALL = "webform_kecil"

pytestmark = pytest.mark.skipif(
    not assets.current().ready and not os.environ.get("CI"),
    reason="browser files missing: run `make assets` (needs npm)",
)


@pytest.fixture
def phone(browser) -> Iterator[object]:
    """Like conftest's `page`, but service workers run (the offline tests need them) and the
    phone has a location to give."""
    with loopback_page(
        browser,
        timeout=15_000,
        inline=True,
        page_errors=True,
        **PHONE,
        timezone_id="Asia/Jakarta",
        service_workers="allow",
        geolocation=GEO,
        permissions=["geolocation"],
    ) as fresh:
        yield fresh


def _noisy_jpeg(size: int, seed: int) -> bytes:
    """A photo that does not compress away (about 30 KB at 160 px)."""
    rng = random.Random(seed)
    image = Image.frombytes(
        "RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3))
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _world(services, tmp_path: Path, *forms: str):
    project = projects.create_project(services.db, f"Web form {time.monotonic_ns()}")
    for name in forms:
        if name == VISIT:  # as `make run` sets it up: the officers' list, then the form
            install_lists(services, project.id)
            for officer in OFFICERS:
                entities.create(services.db, project.id, "petugas", {"label": officer})
            path = next(p for p in library_forms() if VISIT in p.name)
            form_store.publish_xlsform(
                services.db, services.blobs, project.id, path.read_bytes(), path.name
            )
        else:
            logo = tmp_path / "logo.png"
            logo.write_bytes(jpeg(size=48, seed=1))
            form_store.publish_xlsform(
                services.db,
                services.blobs,
                project.id,
                (DATA / f"{name}.md").read_bytes(),
                f"{name}.md",
                media={"logo.png": logo},
            )
    app_user = app_users.create_app_user(services.db, services.box, project.id, "Petugas web")
    assign_forms(services, project, app_user)
    return project, app_user.token


def _officer_ids(services, project_id: int, *labels: str) -> list[str]:
    found = entities.list_entities(services.db, project_id, "petugas")
    return [f.entity.uuid for f in found if f.version.label in labels]


def _photo(tmp_path: Path, name: str, seed: int, size: int = 160) -> Path:
    path = tmp_path / name
    path.write_bytes(_noisy_jpeg(size, seed))
    return path


def _question(page, label: str):
    return (
        page.locator(".question-container").filter(has=page.locator("label", has_text=label)).first
    )


def _type_date(page, label: str, text: str) -> None:
    field = _question(page, label).locator("input")
    field.fill(text)
    field.press("Enter")
    page.keyboard.press("Escape")  # the calendar


def _sign(page, question) -> None:
    """Draw a signature on the question's pad with the finger (a pointer), and keep it."""
    question.locator("[data-wf-signature-open]").click()
    box = question.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.6)
    page.mouse.down()
    for step in range(1, 16):
        page.mouse.move(
            box["x"] + 20 + step * 14, box["y"] + box["height"] * (0.3 + step % 3 * 0.2)
        )
    page.mouse.up()
    question.locator("[data-wf-signature-use]").click()
    question.locator("img").first.wait_for()  # the renderer's preview of the PNG


def _open_list_online(page, base: str, form_id: str) -> None:
    page.goto(base)
    page.locator(f'[data-wf-offline="{form_id}"][data-state="ready"]').wait_for(timeout=40_000)


def _fits_the_phone(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide at a 360px viewport"


def _submissions(services, project_id: int, form_id: str):
    return submissions.list_submissions(services.db, project_id, form_id)


def _fill_small(page, tmp_path: Path, name: str, photos: int = 1) -> None:
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    _question(page, "Nama OPD").locator("input").fill(name)
    for index, label in enumerate(["Foto kegiatan", "Foto lain"][:photos]):
        _question(page, label).locator("input[type=file]").set_input_files(
            _photo(tmp_path, f"{name}-{index}.jpg", seed=index + 11)
        )
        _question(page, label).locator("img").first.wait_for()


def test_visit_form_offline_queued_reloaded_and_synced(phone, live, services_sqlite, tmp_path):
    page = phone
    project, key = _world(services_sqlite, tmp_path, VISIT)
    base = f"{live.url}/f/{key}/"
    started = time.perf_counter()
    _open_list_online(page, base, VISIT)
    timings = {"list + offline copy": time.perf_counter() - started}
    _fits_the_phone(page)
    screenshot(page, "webform-list")

    page.context.set_offline(True)
    page.click(f'[data-wf-form="{VISIT}"] a')
    started = time.perf_counter()
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    timings["offline form render"] = time.perf_counter() - started
    # Required answers of the visit form; the optional "innovation" repeat is removed.
    page.click(".is-repeat .button-menu")
    page.get_by_role("menuitem").filter(has_text="Hapus").first.click()
    assert page.locator(".is-repeat").count() == 0
    _question(page, "Perangkat Daerah yang dikunjungi").locator(".p-select").click()
    page.get_by_role("option", name="Dinas Kesehatan").click()
    _question(page, "Petugas Barenlitbangda yang hadir").locator(".p-multiselect").click()
    page.get_by_role("option", name="Budi Santoso").click()
    page.get_by_role("option", name="Rahmat Hidayat").click()
    page.keyboard.press("Escape")
    # Its overlay gives the focus back as it leaves: typing before that loses the text.
    page.locator(".p-multiselect-overlay").wait_for(state="detached")
    _question(page, "Nama narahubung OPD").locator("input").fill("Ani")
    _question(page, "Titik lokasi kunjungan").get_by_role("button", name="Ambil lokasi").click()
    dialog = page.locator(".p-dialog")
    dialog.get_by_text("Mencari lokasi Anda").wait_for()
    dialog.get_by_role("button", name="Simpan lokasi").click()
    assert "Akurasi: 5 m," in _question(page, "Titik lokasi kunjungan").inner_text()
    attendance = _photo(tmp_path, "hadir.jpg", seed=7, size=320)
    _question(page, "Foto daftar hadir").locator("input[type=file]").set_input_files(attendance)
    _question(page, "Foto daftar hadir").locator("img").first.wait_for()
    _sign(page, _question(page, "Tanda tangan narahubung OPD"))
    # Dates are typed day first (as Indonesians write them), and kept as such.
    _type_date(page, "Tanggal kunjungan", "1-12-2026")
    _type_date(page, "Tanggal tindak lanjut", "15/12/2026")
    assert _question(page, "Tanggal kunjungan").locator("input").input_value() == "01/12/2026"
    screenshot(page, "webform-visit-filled")
    page.get_by_role("button", name="Kirim").click()
    banner = page.locator("[data-wf-banner]")
    banner.wait_for(timeout=30_000)  # photos are stored in IndexedDB first: slow on a busy CI
    assert "Tersimpan di ponsel" in banner.inner_text()

    page.click("[data-wf-queue-link]")
    record = page.locator("[data-wf-pending] [data-wf-record]")
    record.wait_for()
    assert record.count() == 1
    assert record.get_attribute("data-status") in ("pending", "sending")
    assert page.locator("[data-wf-count]").inner_text() == "1"
    started = time.perf_counter()
    page.reload()  # offline: the page, its scripts and the record come from the phone
    record.wait_for()
    timings["offline reload"] = time.perf_counter() - started
    # The officer's queue names the visit by the OPD's name (the form's instance_name), not code.
    assert "Dinas Kesehatan" in record.inner_text() and "dinkes" not in record.inner_text()
    _fits_the_phone(page)
    screenshot(page, "webform-queue-offline")
    assert _submissions(services_sqlite, project.id, VISIT) == []

    page.context.set_offline(False)  # the `online` event starts the upload
    started = time.perf_counter()
    page.locator("[data-wf-sent] [data-wf-record][data-status=sent]").wait_for(timeout=30_000)
    timings["sync after online"] = time.perf_counter() - started
    assert page.locator("[data-wf-pending] [data-wf-record]").count() == 0
    screenshot(page, "webform-queue-sent")

    [stored] = _submissions(services_sqlite, project.id, VISIT)
    values = read_instance(stored.current.xml).values
    visit = values["g_kunjungan"]
    assert (visit["opd"], visit["cp_nama"]) == ("dinkes", "Ani")
    # The officers chosen from the list are their entity ids; the form stores their names too.
    chosen = _officer_ids(services_sqlite, project.id, "Budi Santoso", "Rahmat Hidayat")
    assert sorted(visit["petugas"].split()) == sorted(chosen)
    assert sorted(visit["petugas_nama"].split(", ")) == ["Budi Santoso", "Rahmat Hidayat"]
    assert visit["lokasi"].startswith("-0.6812 100.7766")
    assert visit["tgl_kunjungan"] == "2026-12-01"
    assert values["g_penutup"]["tgl_tindak_lanjut"] == "2026-12-15"
    signature = values["g_penutup"]["ttd_cp"]
    [drawn] = [a for a in stored.attachments if a.name == signature]
    assert signature.endswith(".png") and drawn.blob_sha256 is not None
    png = services_sqlite.blobs.read_bytes(blob_key(drawn.blob_sha256))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"  # the drawn signature, as a PNG
    photo_name = values["g_penutup"]["foto_daftar_hadir"]
    [attachment] = [a for a in stored.attachments if a.name == photo_name]
    assert attachment.blob_sha256 is not None
    blob = services_sqlite.blobs.read_bytes(blob_key(attachment.blob_sha256))
    assert blob[:2] == b"\xff\xd8"  # the photo itself (a JPEG) reached the server
    print("webform timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


def test_a_server_error_keeps_the_record_and_a_lost_answer_is_not_a_second_submission(
    phone, services_sqlite, tmp_path
):
    """A 500 keeps the record and it is retried; then the server stores it but the answer is
    lost (the connection drops): the retry is answered 201 for the same instanceID, and the
    server holds one submission. The server's small limit splits each upload in two POSTs."""
    page = phone
    project, key = _world(services_sqlite, tmp_path, SMALL)
    posts: list[str] = []
    lost: list[bool] = []

    def submission(route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        last = b"*isIncomplete*" not in (route.request.post_data_buffer or b"")
        posts.append("last" if last else "incomplete")
        if len(posts) == 1:
            route.fulfill(
                status=500,
                content_type="text/xml",
                body='<OpenRosaResponse xmlns="http://openrosa.org/http/response">'
                '<message nature="error">Database down</message>'
                "</OpenRosaResponse>",
            )
        elif last and not lost:
            lost.append(True)
            route.fetch()  # the server stores the whole submission…
            route.abort("connectionreset")  # …and the phone never hears back
        else:
            route.continue_()

    with LiveServer(services_sqlite, max_submission_bytes=40_000) as server:
        base = f"{server.url}/f/{key}/"
        _open_list_online(page, base, SMALL)
        page.route("**/submission", submission)
        page.click(f'[data-wf-form="{SMALL}"] a')
        _fill_small(page, tmp_path, "Dinas Sosial", photos=2)
        page.get_by_role("button", name="Kirim").click()
        page.locator("[data-wf-banner]").wait_for()
        page.click("[data-wf-queue-link]")
        record = page.locator("[data-wf-record]").first
        record.wait_for()
        page.locator("[data-wf-pending] [data-wf-error]").filter(has_text="500").wait_for(
            timeout=10_000
        )  # kept, with the error shown
        page.locator("[data-wf-sent] [data-wf-record][data-status=sent]").wait_for(
            timeout=30_000
        )  # retried by itself (backoff), twice

    [stored] = _submissions(services_sqlite, project.id, SMALL)
    assert len(stored.attachments) == 2 and all(a.blob_sha256 for a in stored.attachments)
    # 500 on the first part; two parts, the answer to the last one lost; two parts again.
    assert posts == ["incomplete", "incomplete", "last", "incomplete", "last"], posts


def test_a_refused_record_stays_marked_downloads_as_zip_and_drafts_reopen(
    phone, live, services_sqlite, tmp_path
):
    page = phone
    project, key = _world(services_sqlite, tmp_path, SMALL)
    base = f"{live.url}/f/{key}/"
    _open_list_online(page, base, SMALL)
    page.route(
        "**/submission",
        lambda route: (
            route.fulfill(
                status=403,
                content_type="text/xml",
                body='<OpenRosaResponse xmlns="http://openrosa.org/http/response"><message '
                'nature="error">Kunci ditolak</message></OpenRosaResponse>',
            )
            if route.request.method == "POST"
            else route.continue_()
        ),
    )
    page.click(f'[data-wf-form="{SMALL}"] a')
    _fill_small(page, tmp_path, "Dinas Pariwisata")
    page.get_by_role("button", name="Kirim").click()
    page.locator("[data-wf-banner]").wait_for()
    page.click("[data-wf-queue-link]")
    failed = page.locator("[data-wf-pending] [data-wf-record][data-status=failed]")
    failed.wait_for()
    assert "Kunci ditolak" in failed.inner_text() and "Gagal" in failed.inner_text()
    page.wait_for_timeout(2500)  # a refusal is not retried by itself
    assert "Percobaan: 1" in failed.inner_text()
    with page.expect_download() as download:
        failed.locator("[data-wf-zip]").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    names = archive.namelist()
    xml_name = next(n for n in names if n.endswith("/submission.xml"))
    assert b"Dinas Pariwisata" in archive.read(xml_name) and len(names) == 2
    screenshot(page, "webform-queue-failed")

    page.unroute("**/submission")
    failed.locator("[data-wf-send]").click()  # "kirim sekarang"
    page.locator("[data-wf-sent] [data-wf-record][data-status=sent]").wait_for()
    assert len(_submissions(services_sqlite, project.id, SMALL)) == 1

    # A draft: kept on the phone, reopened from the list, then sent as a new submission.
    page.goto(f"{base}{SMALL}")
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    _question(page, "Nama OPD").locator("input").fill("Draf Dinas PUPR")
    page.click("[data-wf-draft]")
    page.locator("[data-wf-banner]").filter(has_text="Draf tersimpan").wait_for()
    page.goto(base)
    draft = page.locator("[data-wf-drafts] a").filter(has_text="Draf Dinas PUPR")
    draft.click()
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    assert _question(page, "Nama OPD").locator("input").input_value() == "Draf Dinas PUPR"
    page.get_by_role("button", name="Kirim").click()
    page.locator("[data-wf-banner]").filter(has_text="Tersimpan").wait_for()
    deadline = time.monotonic() + 15
    while len(_submissions(services_sqlite, project.id, SMALL)) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(200)  # (not time.sleep: the route handlers must keep running)
    drafted = [
        s
        for s in _submissions(services_sqlite, project.id, SMALL)
        if b"Draf Dinas PUPR" in s.current.xml
    ]
    assert len(drafted) == 1 and b"deprecatedID" not in drafted[0].current.xml
    page.goto(base)
    page.locator("[data-wf-drafts] .wf-muted").wait_for()  # "no drafts"
    assert page.locator("[data-wf-drafts] a").count() == 0

    # A new version published online replaces the cached copy when the list is opened.
    source = (DATA / f"{SMALL}.md").read_text(encoding="utf-8")
    newer = re.sub(r"\| Formulir kecil \| 1 \|", "| Formulir kecil | 2 |", source)
    published = form_store.publish_xlsform(
        services_sqlite.db, services_sqlite.blobs, project.id, newer.encode(), f"{SMALL}.md"
    )
    new_hash = hashlib.md5(published.version.xml).hexdigest()
    page.goto(base)
    page.locator(f'[data-wf-offline="{SMALL}"][data-state="ready"]').wait_for()
    cached = page.evaluate("""async () => (await (await caches.open('jebol-forms')).keys())
        .map((r) => r.url).filter((u) => u.includes('/form.xml'))""")
    assert len(cached) == 1 and cached[0].endswith(f"?v={new_hash}"), cached
