"""An entity list in the offline web form (chromium, service worker running): a form reading
`inovasi.csv` (`select_one_from_file`, filtered by OPD) shows the list's entities with no
connection, queues the answer, and the phone's copy of the list follows the list's hash."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from forms.instance import read_instance
from server.webform import assets
from storage import app_users, datasets, entities, entity_lists, projects, submissions
from storage import forms as form_store
from tests.browser.conftest import PHONE, loopback_page
from tests.factories import assign_forms

FORM = "pilih_inovasi_web"
FOLLOW_UP = f"""| survey |
| | type | name | label | choice_filter | required |
| | text | opd | Kode OPD | | yes |
| | select_one_from_file inovasi.csv | inovasi | Inovasi terdaftar | opd=${{opd}} | yes |
| settings |
| | form_id | form_title | version |
| | {FORM} | Pilih inovasi | 1 |
"""
READY = ".form-initialization-status.ready"
INNOVATIONS = [
    ("Sekolah Ramah Anak", "disdik"),
    ("Puskesmas Keliling", "dinkes"),
    ("Perpustakaan Digital", "disdik"),
]

pytestmark = pytest.mark.skipif(
    not assets.current().ready and not os.environ.get("CI"),
    reason="browser files missing: run `make assets` (needs npm)",
)


@pytest.fixture
def phone(browser) -> Iterator[object]:
    """A phone-sized page whose service worker runs; it may reach only the test server."""
    with loopback_page(
        browser,
        timeout=15_000,
        inline=True,
        page_errors=True,
        **PHONE,
        service_workers="allow",
    ) as fresh:
        yield fresh


def _world(services):
    project = projects.create_project(services.db, f"Daftar entitas {time.monotonic_ns()}")
    datasets.create_list(services.db, project.id, "inovasi")
    datasets.add_property(services.db, project.id, "inovasi", "opd")
    made = {
        label: entities.create(
            services.db, project.id, "inovasi", {"label": label, "data": {"opd": opd}}
        ).entity.uuid
        for label, opd in INNOVATIONS
    }
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, FOLLOW_UP.encode(), f"{FORM}.md"
    )
    app_user = app_users.create_app_user(services.db, services.box, project.id, "Petugas daftar")
    assign_forms(services, project, app_user)
    return project, app_user.token, made


def _question(page, label: str):
    return (
        page.locator(".question-container").filter(has=page.locator("label", has_text=label)).first
    )


def _cached_lists(page) -> list[str]:
    return page.evaluate("""async () => (await (await caches.open('jebol-forms')).keys())
        .map((r) => r.url).filter((u) => u.includes('/media/inovasi.csv'))""")


def _list_hash(services, project) -> str:
    listed = entity_lists.find_list_file(services.db, project.id, "inovasi")
    assert listed is not None
    return listed.hash


def test_entity_list_choices_work_offline_and_follow_the_list(phone, live, services_sqlite):
    page = phone
    services = services_sqlite
    project, key, made = _world(services)
    base = f"{live.url}/f/{key}/"
    page.goto(base)
    page.locator(f'[data-wf-offline="{FORM}"][data-state="ready"]').wait_for(timeout=40_000)
    [cached] = _cached_lists(page)
    assert cached.endswith(f"?v={_list_hash(services, project)}")

    page.context.set_offline(True)
    page.click(f'[data-wf-form="{FORM}"] a')
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    _question(page, "Kode OPD").locator("input").fill("disdik")
    page.keyboard.press("Tab")
    choices = _question(page, "Inovasi terdaftar")
    choices.get_by_text("Perpustakaan Digital").wait_for()
    shown = choices.inner_text()
    assert "Sekolah Ramah Anak" in shown and "Puskesmas Keliling" not in shown  # filtered
    choices.get_by_text("Sekolah Ramah Anak").click()
    page.get_by_role("button", name="Kirim").click()
    page.locator("[data-wf-banner]").filter(has_text="Tersimpan").wait_for(timeout=30_000)
    assert submissions.list_submissions(services.db, project.id, FORM) == []

    page.click("[data-wf-queue-link]")
    page.locator("[data-wf-pending] [data-wf-record]").wait_for()
    page.context.set_offline(False)
    page.locator("[data-wf-sent] [data-wf-record][data-status=sent]").wait_for(timeout=30_000)
    [stored] = submissions.list_submissions(services.db, project.id, FORM)
    values = read_instance(stored.current.xml).values
    assert (values["opd"], values["inovasi"]) == ("disdik", made["Sekolah Ramah Anak"])

    # A new entity changes the list's hash: the list page keeps the new CSV, drops the old.
    old = _list_hash(services, project)
    entities.create(
        services.db, project.id, "inovasi", {"label": "Bank Sampah", "data": {"opd": "dlh"}}
    )
    new = _list_hash(services, project)
    assert new != old
    page.goto(base)
    page.locator(f'[data-wf-offline="{FORM}"][data-state="ready"]').wait_for(timeout=40_000)
    [cached] = _cached_lists(page)
    assert cached.endswith(f"?v={new}")
    text = page.evaluate(
        "async (url) => (await (await caches.open('jebol-forms')).match(url)).text()", cached
    )
    assert "Bank Sampah" in text


REGISTER = "daftar_inovasi_web"
REGISTRATION = f"""| survey |
| | type | name | label | save_to | required |
| | text | opd | Kode OPD | opd | yes |
| | text | nama | Nama inovasi | | yes |
| entities |
| | list_name | label |
| | inovasi | ${{nama}} |
| settings |
| | form_id | form_title | version |
| | {REGISTER} | Daftar inovasi | 1 |
"""


def test_a_registration_queued_offline_creates_its_entity_on_sync(phone, live, services_sqlite):
    page = phone
    services = services_sqlite
    project = projects.create_project(services.db, f"Daftar web {time.monotonic_ns()}")
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, REGISTRATION.encode(), f"{REGISTER}.md"
    )
    app_user = app_users.create_app_user(services.db, services.box, project.id, "Petugas web")
    assign_forms(services, project, app_user)
    page.goto(f"{live.url}/f/{app_user.token}/")
    page.locator(f'[data-wf-offline="{REGISTER}"][data-state="ready"]').wait_for(timeout=40_000)
    page.context.set_offline(True)
    page.click(f'[data-wf-form="{REGISTER}"] a')
    page.locator(READY).wait_for(state="attached", timeout=30_000)
    _question(page, "Kode OPD").locator("input").fill("dinkes")
    _question(page, "Nama inovasi").locator("input").fill("SIGAP Bumil")
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Kirim").click()
    page.locator("[data-wf-banner]").filter(has_text="Tersimpan").wait_for(timeout=30_000)
    assert entities.list_entities(services.db, project.id, "inovasi") == []

    page.click("[data-wf-queue-link]")
    page.locator("[data-wf-pending] [data-wf-record]").wait_for()
    page.context.set_offline(False)
    page.locator("[data-wf-sent] [data-wf-record][data-status=sent]").wait_for(timeout=30_000)
    [made] = entities.list_entities(services.db, project.id, "inovasi")
    assert made.version.label == "SIGAP Bumil"
    assert made.version.data == {"opd": "dinkes"}
    assert made.entity.creator_id == app_user.actor.id
