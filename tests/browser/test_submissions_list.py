"""The submissions list in a real browser (issue #16): a phone (360 x 740, id-ID) and a laptop
(1366 x 768). No sideways scrolling, 44 px targets in the header and for the row checkboxes,
no word broken inside, the filters folded on a phone (open when one is active), and on the
laptop the table inside its column."""

from __future__ import annotations

import pytest

from server.bootstrap import library_forms
from storage import forms as form_store
from storage import projects, roles, submissions, users
from storage.submissions import Sender
from tests.browser import screenshot
from tests.browser.conftest import PHONE, loopback_page
from tests.collect import instance_xml, new_instance_id
from tests.factories import LIBRARY_VERSION, make_app_user

PASSWORD = "kata-sandi-panjang"
VISIT = "jebol_sipera_kunjungan"
OPDS = ["dinkes", "disdik", "dukcapil", "kominfo", "rsud", "dinsos"]
INNOVATIONS = ["Posyandu Digital", "Sekolah Ramah Anak", "Adminduk Keliling", "Satu Data Kota"]

# Every word of the table's header and cells on one line: a word split over two lines has
# client rects on two lines. Long runs (links, ids) may break where they must.
BROKEN_WORDS = """() => {
  const broken = [];
  const table = document.querySelector("table.submissions");
  const walker = document.createTreeWalker(table, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent.checkVisibility() || parent.closest(".sr")) continue;  // shown, not for readers
    for (const match of node.textContent.matchAll(/\\S+/g)) {
      if (match[0].length > 24) continue;
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      if (tops.size > 1) broken.push(match[0]);
    }
  }
  for (const cell of table.querySelectorAll("th, td, td *")) {
    const style = getComputedStyle(cell);
    if (style.overflowWrap === "anywhere" || style.wordBreak === "break-all")
      broken.push(`${cell.tagName}: ${style.overflowWrap} ${style.wordBreak}`);
  }
  return broken;
}"""


@pytest.fixture(scope="module")
def listing(services_sqlite):
    services = services_sqlite
    project = projects.create_project(services.db, "Daftar kiriman (peramban)")
    source = next(p for p in library_forms() if VISIT in p.name)
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, source.read_bytes(), source.name
    )
    phone = make_app_user(services, project, "HP Rina Marlina", [VISIT])
    user = users.create_user(services.db, f"pengawas-daftar-{project.id}@example.org", PASSWORD)
    roles.assign_role(services.db, project.id, "supervisor", user.actor_id)
    for index in range(8):
        day = f"2026-11-{3 + 3 * index:02d}"
        rows = "".join(
            f"<inovasi><inv_terdaftar>tidak</inv_terdaftar><inv_nama>{name}</inv_nama></inovasi>"
            for name in INNOVATIONS[index % 4 : index % 4 + 1 + index % 2]
        )
        body = (
            f"<g_kunjungan><tgl_kunjungan>{day}</tgl_kunjungan><opd>{OPDS[index % 6]}</opd>"
            "<unit_kerja/><petugas_nama>Rina Marlina, Yusuf Ñuñez</petugas_nama><petugas_lain/>"
            f"<cp_nama>Ibu Sri Wahyuni</cp_nama></g_kunjungan>{rows}<g_penutup>"
            "<tgl_tindak_lanjut>2026-12-20</tgl_tindak_lanjut></g_penutup>"
        )
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml(
                VISIT, LIBRARY_VERSION, new_instance_id(), body, instance_name=f"Kunjungan {day}"
            ),
            sender=Sender(actor_id=phone.actor.id),
        )
    return project, user.email


def _login(page, live, email, target):
    page.goto(f"{live.url}/login?next={target}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}{target}")


def _heights(page, selector: str) -> list[float]:
    return page.eval_on_selector_all(
        selector, "els => els.map(e => e.getBoundingClientRect().height)"
    )


def test_the_list_on_a_phone_and_a_laptop(browser, live, listing):
    project, email = listing
    target = f"/p/{project.id}/f/{VISIT}"
    phone = {**PHONE, "timezone_id": "Asia/Jakarta", "service_workers": "block"}
    with loopback_page(browser, timeout=10_000, page_errors=True, **phone) as page:
        _login(page, live, email, target)
        page.wait_for_load_state("networkidle")
        screenshot(page, "submissions-list-phone")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        nav = _heights(page, "header.top a, header.top button")
        assert len(nav) >= 5 and min(nav) >= 44, nav
        ticks = page.eval_on_selector_all(
            "td.tick label",
            "els => els.map(e => [e.getBoundingClientRect().width, e.getBoundingClientRect()"
            ".height, e.querySelector('input[type=checkbox]') !== null])",
        )
        assert len(ticks) == 8 and all(w >= 44 and h >= 44 and box for w, h, box in ticks), ticks
        page.locator("td.tick label").first.click()
        assert page.locator("td.tick input").first.is_checked()
        assert page.evaluate(BROKEN_WORDS) == []
        assert not page.locator("form.filters").is_visible()  # folded behind "Saring"
        assert page.locator("details.filter-box > summary").inner_text().strip() == "Saring"
        assert (
            page.locator("td.empty").count() == 0 or not page.locator("td.empty").first.is_visible()
        )
        # A search that finds nothing: the filters stay open, with what to change.
        page.goto(f"{live.url}{target}?q=tidak-ada-yang-cocok")
        assert page.locator("form.filters").is_visible()
        assert "Tidak ada kiriman yang cocok" in page.locator(".empty-result").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360

    laptop = {
        "viewport": {"width": 1366, "height": 768},
        "locale": "id-ID",
        "timezone_id": "Asia/Jakarta",
        "service_workers": "block",
    }
    with loopback_page(browser, timeout=10_000, page_errors=True, **laptop) as page:
        _login(page, live, email, target)
        page.wait_for_load_state("networkidle")
        screenshot(page, "submissions-list-desktop")
        fits = page.evaluate(
            """() => {
              const table = document.querySelector("table.submissions");
              const box = table.parentElement;
              const main = document.querySelector("main").getBoundingClientRect();
              return [table.getBoundingClientRect().right, box.getBoundingClientRect().right,
                      main.right, box.scrollWidth, box.clientWidth,
                      document.documentElement.scrollWidth];
            }"""
        )
        table_right, box_right, main_right, scroll, client, page_width = fits
        assert table_right <= box_right + 0.5 <= main_right + 0.5, fits
        assert scroll <= client and page_width <= 1366, fits
        assert page.locator("form.filters").is_visible()  # always shown on a wide screen
        assert page.evaluate(BROKEN_WORDS) == []
        assert min(_heights(page, "header.top a, header.top button")) >= 44


def test_a_bulk_review_that_lacks_a_comment_or_rows_keeps_the_selection(browser, live, listing):
    """Reject with no comment, or apply with no row ticked: the page says what is missing next
    to it and stays as it was (the rows ticked); with a comment the rows are rejected."""
    project, email = listing
    target = f"/p/{project.id}/f/{VISIT}"
    phone = {**PHONE, "timezone_id": "Asia/Jakarta", "service_workers": "block"}
    with loopback_page(browser, timeout=10_000, page_errors=True, **phone) as page:
        _login(page, live, email, target)
        bulk = page.locator("form#bulk")
        bulk.locator("button[type=submit]").click()
        button_says = bulk.locator("button[type=submit]").evaluate("b => b.validationMessage")
        assert button_says == "Centang dulu kiriman yang akan ditinjau."
        boxes = page.locator("td.tick input")
        boxes.nth(0).check()
        boxes.nth(1).check()
        chosen = [boxes.nth(i).get_attribute("value") for i in (0, 1)]
        bulk.locator("select[name=state]").select_option("rejected")
        bulk.locator("button[type=submit]").click()
        comment = bulk.locator("input[name=comment]")
        assert "komentar" in comment.evaluate("c => c.validationMessage").lower()
        assert page.url == f"{live.url}{target}"
        assert boxes.nth(0).is_checked() and boxes.nth(1).is_checked()
        comment.fill("Foto daftar hadir tidak terbaca")
        with page.expect_navigation():
            bulk.locator("button[type=submit]").click()
        for instance_id in chosen:
            row = page.locator(f"tr:has(input[value='{instance_id}'])")
            assert row.locator(".state").inner_text().strip() == "Ditolak"
