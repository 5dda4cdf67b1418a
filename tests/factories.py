"""Small builders that call the real storage operations with defaults, overridable per test."""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from server.app import Services
from storage import app_users, projects, roles, users
from storage import forms as form_store
from storage.app_users import AppUserOut
from storage.models import Project

DATA = Path(__file__).parent / "data"
#: The shipped instruments' version (all three share it; tests/forms/test_library.py pins it),
#: for tests that write submissions of the shipped forms by hand.
LIBRARY_VERSION = "2026120503"


def make_project(services: Services, name: str | None = None) -> Project:
    return projects.create_project(services.db, name or f"Proyek uji {uuid.uuid4().hex[:8]}")


def make_app_user(
    services: Services,
    project: Project,
    name: str = "Petugas uji",
    forms: Iterable[str] = (),
) -> AppUserOut:
    """An app user of the project, assigned `forms` (xmlFormIds; `assign_forms` for later)."""
    app_user = app_users.create_app_user(services.db, services.box, project.id, name)
    if forms:
        assign_forms(services, project, app_user, *forms)
    return app_user


def assign_forms(
    services: Services, project: Project | int, app_user: AppUserOut, *xml_form_ids: str
) -> None:
    """Assign forms to an app user (Central's app-user role); every form of the project when
    none are named."""
    project_id = project if isinstance(project, int) else project.id
    if not xml_form_ids:
        xml_form_ids = tuple(
            form.xml_form_id
            for form, _ in form_store.list_forms(services.db, project_id, include_drafts=True)
        )
    for xml_form_id in xml_form_ids:
        roles.assign_form(services.db, project_id, xml_form_id, app_user.actor.id)


def publish(
    services: Services,
    project: Project,
    name: str = "foto_sederhana",
    media: dict[str, Path] | None = None,
) -> form_store.Published:
    path = DATA / f"{name}.md"
    return form_store.publish_xlsform(
        services.db, services.blobs, project.id, path.read_bytes(), path.name, media=media
    )


def key_url(project: Project, app_user: AppUserOut) -> str:
    return f"/v1/key/{app_user.token}/projects/{project.id}"


def jpeg(size: int = 64, seed: int | None = None) -> bytes:
    """A real JPEG whose bytes differ by seed."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(20):
        image.putpixel(
            (rng.randrange(size), rng.randrange(size)), tuple(rng.randrange(256) for _ in range(3))
        )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def photo_body(
    name: str = "Budi", main: str | None = "utama.jpg", evidence: list[str] | None = None
) -> str:
    """Answers for the foto_sederhana test form."""
    rows = "".join(
        f"<bukti><bukti_foto>{e}</bukti_foto><bukti_catatan>c</bukti_catatan></bukti>"
        for e in (evidence or [])
    )
    return (
        f"<nama>{name}</nama><lokasi>-0.68 100.78 250 5</lokasi>"
        f"<foto_utama>{main or ''}</foto_utama>{rows}"
    )


def xlsx_from_md(name: str, tmp_dir: Path) -> bytes:
    """An .xlsx XLSForm built from one of the markdown forms in tests/data."""
    from forms.library.build_xlsx import parse_markdown, write_xlsx

    path = tmp_dir / f"{name}.xlsx"
    write_xlsx(parse_markdown((DATA / f"{name}.md").read_text()), path)
    return path.read_bytes()


PASSWORD = "kata-sandi-panjang"


def make_user(services: Services, project: Project, role: str) -> tuple[str, str]:
    """A web user holding `role` in the project: its (email, password), for `auth=`."""
    email = f"{role}-{project.id}-{uuid.uuid4().hex[:6]}@example.org"
    user = users.create_user(services.db, email, PASSWORD)
    roles.assign_role(services.db, project.id, role, user.actor_id)
    return (email, PASSWORD)
