"""The officer's web form in Indonesian to the last button, and a PDF as evidence: the data
dukung form (a `file` question for the decree) on a phone set to id-ID in Jakarta, filled
offline, kept as a draft and reopened, queued and sent when the connection is back; then once on a laptop's screen, where a
form whose default language is English opens in its Indonesian.

The renderer (ODK Web Forms 0.22) is English inside; the page gives it PrimeVue's Indonesian
locale, translates its own words and adds a file picker (server/webform/renderer.py,
static/localize.js, static/widgets.js). The visit form's signature pad and typed dates are in
test_webform.py.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest

from forms.instance import read_instance
from server.bootstrap import install_lists, library_forms
from server.webform import assets
from storage import app_users, datasets, projects, submissions
from storage import forms as form_store
from storage.blobs import blob_key
from tests.browser import screenshot
from tests.browser.conftest import PHONE, loopback_page
from tests.factories import assign_forms

EVIDENCE = "jebol_sipera_data_dukung"
BILINGUAL = "dua_bahasa"  # English first and by default, Indonesian too
BILINGUAL_FORM = f"""| survey |
| | type | name | label::English (en) | label::Indonesian (id) |
| | text | nama | Agency name | Nama OPD |
| settings |
| | form_id | form_title | version | default_language |
| | {BILINGUAL} | Dua bahasa | 1 | English (en) |
"""
READY = ".form-initialization-status.ready"
# A small but real PDF (one empty page), as a decree scanned to PDF would start.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)

pytestmark = pytest.mark.skipif(
    not assets.current().ready and not os.environ.get("CI"),
    reason="browser files missing: run `make assets` (needs npm)",
)


@pytest.fixture
def phone(browser) -> Iterator[object]:
    """A phone in Indonesian, in Jakarta's time zone, whose service worker runs."""
    with loopback_page(
        browser,
        timeout=15_000,
        inline=True,
        page_errors=True,
        **PHONE,
        timezone_id="Asia/Jakarta",
        service_workers="allow",
    ) as fresh:
        yield fresh


def _world(services):
    project = projects.create_project(services.db, f"Data dukung {time.monotonic_ns()}")
    install_lists(services, project.id)  # as `make run` sets it up, with the visit form's list
    datasets.ensure_list(services.db, project.id, "inovasi", ["opd"])
    path = next(p for p in library_forms() if EVIDENCE in p.name)
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, path.read_bytes(), path.name
    )
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, BILINGUAL_FORM.encode(), f"{BILINGUAL}.md"
    )
    app_user = app_users.create_app_user(services.db, services.box, project.id, "Petugas iPhone")
    assign_forms(services, project, app_user)
    return project, app_user.token


def _question(page, label: str):
    return (
        page.locator(".question-container").filter(has=page.locator("label", has_text=label)).first
    )


def _fits(page, width: int) -> None:
    scrolled = page.evaluate("document.documentElement.scrollWidth")
    assert scrolled <= width, f"the page is {scrolled}px wide at a {width}px viewport"


def test_evidence_form_in_indonesian_with_a_pdf_sent_after_the_phone_was_offline(
    phone, live, services_sqlite, tmp_path
):
    page = phone
    project, key = _world(services_sqlite)
    base = f"{live.url}/f/{key}/"
    page.goto(base)
    page.locator(f'[data-wf-offline="{EVIDENCE}"][data-state="ready"]').wait_for(timeout=40_000)

    page.context.set_offline(True)
    page.click(f'[data-wf-form="{EVIDENCE}"] a')
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    # The renderer's buttons, in Indonesian; the form's own words were already.
    send = page.get_by_role("button", name="Kirim", exact=True)
    send.wait_for()
    assert page.locator(".choose-image-button").inner_text().strip() == "Pilih gambar"
    assert page.locator(".button-add-instance").inner_text().startswith("Tambah Foto")
    document = _question(page, "Berkas PDF")
    assert "Pilih berkas" in document.inner_text() and "Belum ada berkas." in document.inner_text()
    assert "non-image" not in page.locator("#wf-form").inner_text()
    send.click()  # nothing answered yet
    errors = page.locator(".form-error-message")
    errors.wait_for()
    assert re.fullmatch(r"\d+ pertanyaan perlu diperbaiki\.", errors.inner_text().strip())
    assert "Wajib diisi." in _question(page, "Judul/perihal dokumen").inner_text()
    assert "Condition not satisfied" not in page.locator("#wf-form").inner_text()

    # The calendar speaks Indonesian; a date it cannot read is said, never dropped.
    dated = _question(page, "Tanggal surat/dokumen")
    day = dated.locator("input")
    assert day.get_attribute("placeholder") == "hh/bb/tttt"
    day.click()
    calendar = page.locator(".p-datepicker-panel")
    calendar.wait_for()
    assert calendar.get_by_role("button", name="Hari ini").count() == 1
    assert re.search(
        r"Januari|Februari|Maret|April|Mei|Juni|Juli|Agustus|September|Oktober"
        r"|November|Desember",
        calendar.inner_text(),
    )
    day.fill("31/02/2026")
    day.press("Tab")
    assert "“31/02/2026” bukan tanggal" in dated.inner_text()
    day.fill("2-12-2026")  # day first, as written in Indonesia
    day.press("Enter")
    page.keyboard.press("Escape")
    assert day.input_value() == "02/12/2026"

    _question(page, "Perangkat Daerah").locator(".p-select").click()
    page.get_by_role("option", name="Dinas Kesehatan").click()
    _question(page, "Inovasi sudah terdaftar?").get_by_text("Tidak", exact=True).click()
    _question(page, "Nama inovasi").locator("input").fill("Puskesmas Keliling")
    _question(page, "Indikator IID").locator(".p-select").click()
    page.get_by_role("option").first.click()
    _question(page, "Parameter yang dipenuhi").locator("label.value-option").first.click()
    _question(page, "Judul/perihal dokumen").locator("input").fill("SK Bupati tentang inovasi")
    decree = tmp_path / "SK Bupati 2026.pdf"
    decree.write_bytes(PDF)
    document.locator("input[type=file]").set_input_files(decree)
    chosen = document.locator("[data-wf-file-name]")
    chosen.wait_for()
    assert chosen.inner_text() == "SK Bupati 2026.pdf"
    # The attachment is named as Collect names it: the time it was chosen, and .pdf
    assert re.fullmatch(r"\d+\.pdf", chosen.get_attribute("title"))
    assert "Ganti berkas" in document.inner_text() and "Hapus berkas" in document.inner_text()
    document.scroll_into_view_if_needed()
    screenshot(page, "webform-evidence-pdf", full_page=False)
    _fits(page, 360)

    # Kept as a draft with its PDF, reopened (still offline), then sent.
    page.click("[data-wf-draft]")
    page.locator("[data-wf-banner]").filter(has_text="Draf tersimpan").wait_for()
    page.reload()
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    document = _question(page, "Berkas PDF")
    assert re.fullmatch(r"\d+\.pdf", document.locator("[data-wf-file-name]").inner_text())
    send = page.get_by_role("button", name="Kirim", exact=True)
    send.click()
    page.locator("[data-wf-banner]").filter(has_text="Tersimpan di ponsel").wait_for(timeout=30_000)
    assert submissions.list_submissions(services_sqlite.db, project.id, EVIDENCE) == []

    page.click("[data-wf-queue-link]")
    page.locator("[data-wf-pending] [data-wf-record]").wait_for()
    page.context.set_offline(False)  # the `online` event sends it
    page.locator("[data-wf-sent] [data-wf-record][data-status=sent]").wait_for(timeout=30_000)

    [stored] = submissions.list_submissions(services_sqlite.db, project.id, EVIDENCE)
    values = read_instance(stored.current.xml).values
    assert values["tentang"] == "SK Bupati tentang inovasi"
    assert values["tanggal_dokumen"] == "2026-12-02"
    name = values["berkas"]
    [attachment] = [a for a in stored.attachments if a.name == name]
    assert name.endswith(".pdf") and attachment.blob_sha256 is not None
    assert services_sqlite.blobs.read_bytes(blob_key(attachment.blob_sha256)) == PDF

    # On a laptop: the same words, and nothing wider than the screen.
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{base}{EVIDENCE}")
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    page.get_by_role("button", name="Kirim", exact=True).wait_for()
    assert "Pilih berkas" in _question(page, "Berkas PDF").inner_text()
    _fits(page, 1366)
    screenshot(page, "webform-evidence-desktop", full_page=False)

    # What the page's own helpers make of typed dates and of the renderer's strings.
    dates, words = page.evaluate(
        """async ([datesUrl, localizeUrl]) => {
            const d = await import(datesUrl);
            const { makeTranslator } = await import(localizeUrl);
            const typed = ['15/12/2026', '15-12-26', '2026-12-15', '15.12.2026', '15122026',
                           '1/2/2026', '29/02/2028', '31/02/2026', '13/13/2026', '12/31/2026'];
            const translate = makeTranslator([
                ['%(n)s questions with errors.', '%(n)s pertanyaan perlu diperbaiki.'],
                ['%(accuracy)s m - %(quality)s', '%(accuracy)s m - %(quality)s'],
                ['Good accuracy', 'Akurasi baik'], ['Add', 'Tambah']]);
            return [
                typed.map((t) => { const r = d.parseTypedDate(t, 'dmy');
                                   return r && d.formatDate(r, 'dmy'); }),
                [' Add ', '3 questions with errors.', '4.5 m - Good accuracy', 'Added', 'Kirim']
                    .map(translate),
            ];
        }""",
        [assets.current().url("app/dates.js"), assets.current().url("app/localize.js")],
    )
    # Day first; a day that does not exist, or a month-first date, is not taken.
    assert dates == ["15/12/2026"] * 5 + ["01/02/2026", "29/02/2028"] + [None] * 3
    assert (
        words == [" Tambah ", "3 pertanyaan perlu diperbaiki.", "4.5 m - Akurasi baik"] + [None] * 2
    )

    # A form whose default language is English opens in its Indonesian.
    page.goto(f"{base}{BILINGUAL}")
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    page.locator(".control-text label").filter(has_text="Nama OPD").wait_for()
    assert "Agency name" not in page.locator("#wf-form").inner_text()
