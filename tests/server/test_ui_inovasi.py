"""The Inovasi pages through HTTP: innovations by OPD with their counts, one innovation, and a
supervisor linking a typed name (CSRF, review rights, the project's own innovations only)."""

from __future__ import annotations

import html
import re

import pytest
from sqlmodel import col, select

from storage import entities
from storage.entity_links import link_typed_names
from storage.models import EntityLink
from tests.conftest import make_client
from tests.factories import make_user
from tests.server.test_ui import login
from tests.storage.test_entity_links import VISIT_DAY, build_world


@pytest.fixture
def world(services):
    world = build_world(services)
    link_typed_names(services.db, world.project_id)
    return world


def user(services, world, role):
    from storage.projects import get_project

    return make_user(services, get_project(services.db, world.project_id), role)


def item(page: str, uuid: str) -> str:
    """The innovation's entry on the Inovasi page."""
    found = re.search(rf'<li class="innovation" data-uuid="{uuid}">(.*?)</li>', page, re.S)
    assert found, uuid
    return found.group(1)


def fact(entry: str, name: str) -> str:
    found = re.search(rf'<dd class="{name}">(.*?)</dd>', entry, re.S)
    assert found, name
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def linked_count(entry: str) -> str:
    """The number on the innovation's link to its submissions ("4 kiriman ›")."""
    found = re.search(r'<a class="open submissions"[^>]*>\s*(\d+) kiriman', entry)
    assert found, entry
    return found.group(1)


def section(page: str, marker: str) -> str:
    start = page.index(marker)
    return page[start : page.index("</section>", start)]


def typed_names(unmatched: str) -> list[str]:
    """The typed names listed in the unmatched section, sorted."""
    names = re.findall(r'<p class="typed"><strong>“(.*?)”</strong>', unmatched)
    return sorted(html.unescape(n) for n in names)


def link_rows(services, submission_id: int) -> set[tuple[int, str]]:
    with services.db.read() as tx:
        return set(
            tx.exec(
                select(EntityLink.entity_id, EntityLink.how).where(
                    col(EntityLink.submission_id) == submission_id
                )
            ).all()
        )


def test_innovations_grouped_by_opd_with_counts(services, world):
    email, password = user(services, world, "supervisor")
    with make_client(services) as client:
        login(client, email, password)
        home = client.get(f"/p/{world.project_id}")
        assert f'href="/p/{world.project_id}/inovasi"' in home.text
        page = client.get(f"/p/{world.project_id}/inovasi")
        assert page.status_code == 200
        text = page.text
        # OPD names from the form's choices, not codes; Dinas Kesehatan before Dinas Pendidikan.
        dinkes, disdik = text.index("Dinas Kesehatan"), text.index("Dinas Pendidikan")
        assert dinkes < disdik
        sigap = item(text, world.uuids["sigap"])
        assert "SIGAP-Bumil" in sigap and dinkes < text.index("SIGAP-Bumil") < disdik
        # By hand (see build_world): SIGAP-Bumil has a profile, two evidence documents and
        # the visit of VISIT_DAY; Sekolah Ceria one evidence document and no visit.
        assert fact(sigap, "last-visit") == VISIT_DAY
        assert (fact(sigap, "evidence"), linked_count(sigap)) == ("2", "4")
        posyandu = item(text, world.uuids["posyandu"])
        assert (fact(posyandu, "evidence"), linked_count(posyandu)) == ("0", "1")
        ceria = item(text, world.uuids["ceria"])
        assert text.index("Sekolah Ceria") > disdik
        assert fact(ceria, "last-visit") == "Belum dikunjungi"
        assert (fact(ceria, "evidence"), linked_count(ceria)) == ("1", "1")
        assert world.uuids["lama"] not in text  # deleted
        unmatched = section(text, 'id="belum-tertaut"')
        assert "Nama belum tertaut" in unmatched
        assert typed_names(unmatched) == ["Inovasi Lama", "Posyandu Digital", "Rumah Sehat"]


def test_a_conflict_is_marked(services, world):
    from storage.models import Entity

    with services.db.transaction() as tx:
        row = tx.exec(select(Entity).where(Entity.uuid == world.uuids["posyandu"])).one()
        row.conflict = "hard"
        tx.add(row)
    email, password = user(services, world, "supervisor")
    with make_client(services) as client:
        login(client, email, password)
        text = client.get(f"/p/{world.project_id}/inovasi").text
        assert 'class="flag"' in item(text, world.uuids["posyandu"])
        assert 'class="flag"' not in item(text, world.uuids["sigap"])


def test_supervisor_resolves_a_typed_name(services, world):
    email, password = user(services, world, "supervisor")
    visit = world.subs["visit"]
    with make_client(services) as client:
        login(client, email, password)
        page = client.get(f"/p/{world.project_id}/inovasi").text
        assert f'name="submission_id" value="{visit}"' in page
        token = client.cookies["jebol_csrf"]
        form = {"submission_id": str(visit), "entity": world.uuids["rumah1"], "name": "Rumah Sehat"}
        refused = client.post(
            f"/p/{world.project_id}/inovasi/resolve", data=form, follow_redirects=False
        )
        assert refused.status_code == 403  # no CSRF token
        done = client.post(
            f"/p/{world.project_id}/inovasi/resolve",
            data={**form, "_csrf_token": token},
            follow_redirects=False,
        )
        assert done.status_code == 303
        hows = {how for _, how in link_rows(services, visit)}
        assert hows == {"matched", "resolved"}
        after = section(client.get(f"/p/{world.project_id}/inovasi").text, 'id="belum-tertaut"')
        assert typed_names(after) == ["Inovasi Lama", "Posyandu Digital"]


def test_resolve_is_refused_without_review_rights(services, world):
    email, password = user(services, world, "formfill")
    target = world.subs["profile_other_opd"]
    with make_client(services) as client:
        login(client, email, password)
        page = client.get(f"/p/{world.project_id}/inovasi")
        assert page.status_code == 200 and 'id="belum-tertaut"' not in page.text
        response = client.post(
            f"/p/{world.project_id}/inovasi/resolve",
            data={
                "submission_id": str(target),
                "entity": world.uuids["ceria"],
                "_csrf_token": client.cookies["jebol_csrf"],
            },
            follow_redirects=False,
        )
        assert response.status_code == 403
    assert link_rows(services, target) == set()


def test_resolve_is_refused_for_another_projects_or_a_deleted_innovation(services, world):
    other = build_world(services)
    email, password = user(services, world, "supervisor")
    target = world.subs["profile_other_opd"]
    with make_client(services) as client:
        login(client, email, password)
        token = client.cookies["jebol_csrf"]
        foreign = client.post(
            f"/p/{world.project_id}/inovasi/resolve",
            data={
                "submission_id": str(target),
                "entity": other.uuids["ceria"],
                "_csrf_token": token,
            },
            follow_redirects=False,
        )
        assert foreign.status_code == 404
        assert "tidak ada di proyek ini" in foreign.text
        deleted = client.post(
            f"/p/{world.project_id}/inovasi/resolve",
            data={
                "submission_id": str(target),
                "entity": world.uuids["lama"],
                "_csrf_token": token,
            },
            follow_redirects=False,
        )
        assert deleted.status_code == 409
    assert link_rows(services, target) == set()


def test_innovation_page_shows_versions_and_linked_submissions(services, world):
    entities.update(
        services.db,
        world.project_id,
        "inovasi",
        world.uuids["sigap"],
        {"data": {"tahapan": "uji_coba"}},
        base_version="1",
        force=False,
    )
    email, password = user(services, world, "supervisor")
    with make_client(services) as client:
        login(client, email, password)
        page = client.get(f"/p/{world.project_id}/inovasi/{world.uuids['sigap']}")
        assert page.status_code == 200
        text = page.text
        assert "<h1>SIGAP-Bumil</h1>" in text and "Dinas Kesehatan" in text
        assert re.findall(r'<li class="version" data-version="(\d+)">', text) == ["2", "1"]
        newest = text[text.index('data-version="2"') : text.index('data-version="1"')]
        # What changed, by the choices' labels.
        assert re.search(r'class="before">Penerapan</span> → <span class="after">Uji coba<', newest)
        linked = re.findall(r'<li class="linked-submission">(.*?)</li>', text, re.S)
        assert len(linked) == 4
        assert all("Dicocokkan dari nama" in entry for entry in linked)
        assert sum(VISIT_DAY in entry for entry in linked) == 1
        missing = client.get(f"/p/{world.project_id}/inovasi/{world.uuids['lama']}")
        assert missing.status_code == 404


def test_link_button_links_what_matches(services):
    world = build_world(services)  # nothing linked yet
    email, password = user(services, world, "manager")
    with make_client(services) as client:
        login(client, email, password)
        page = client.get(f"/p/{world.project_id}/inovasi").text
        assert f'action="/p/{world.project_id}/inovasi/link"' in page
        done = client.post(
            f"/p/{world.project_id}/inovasi/link",
            data={"_csrf_token": client.cookies["jebol_csrf"]},
            follow_redirects=False,
        )
        assert done.status_code == 303 and "linked=6" in done.headers["location"]
    assert {how for _, how in link_rows(services, world.subs["visit"])} == {"matched"}


def test_stage_is_shown_by_its_choice_label(services, world):
    entities.update(
        services.db,
        world.project_id,
        "inovasi",
        world.uuids["sigap"],
        {"data": {"tahapan": "uji_coba"}},
        base_version="1",
        force=False,
    )
    email, password = user(services, world, "supervisor")
    with make_client(services) as client:
        login(client, email, password)
        text = client.get(f"/p/{world.project_id}/inovasi").text
        assert fact(item(text, world.uuids["sigap"]), "stage") == "Uji coba"
        assert fact(item(text, world.uuids["ceria"]), "stage") == "Inisiatif"
        page = client.get(f"/p/{world.project_id}/inovasi/{world.uuids['sigap']}").text
        newest = page[page.index('data-version="2"') : page.index('data-version="1"')]
        assert re.search(r'class="before">Penerapan</span> → <span class="after">Uji coba', newest)


def test_many_innovations_are_listed_one_opd_at_a_time(services, world, monkeypatch):
    from server.ui import inovasi

    monkeypatch.setattr(inovasi, "LIST_ALL_MAX", 3)  # the world has 5 innovations
    email, password = user(services, world, "supervisor")
    with make_client(services) as client:
        login(client, email, password)
        text = client.get(f"/p/{world.project_id}/inovasi").text
        assert 'class="innovation"' not in text
        assert "Tampilkan 4 inovasi" in text and "Tampilkan 1 inovasi" in text
        one = client.get(f"/p/{world.project_id}/inovasi?opd=dinkes").text
        listed = re.findall(r'<li class="innovation" data-uuid="([^"]+)">', one)
        assert sorted(listed) == sorted(
            world.uuids[k] for k in ("sigap", "posyandu", "rumah1", "rumah2")
        )
