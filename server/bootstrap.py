"""First start and every start: the admin, the default project, the entity lists the shipped
forms read and no form fills (the officers), the shipped forms, one phone.

Each step finds what exists before it creates anything, so a second start changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from forms.instruments import SIPERA, KeptList
from storage import app_users, datasets, projects, roles, users
from storage import forms as form_store
from storage.errors import AlreadyExists

from .app import Services
from .urls import collect_url

LIBRARY = Path(__file__).resolve().parent.parent / "forms" / "library"
#: Lists the shipped forms read (`select_*_from_file NAME.csv`) that no form fills: made before
#: the forms are published, so each form's `NAME.csv` is the list from its first download.
KEPT_LISTS: tuple[KeptList, ...] = (SIPERA.officers,)


@dataclass
class Setup:
    admin_email: str
    admin_password: str | None  # set only when generated now: printed once
    project_id: int
    app_user_name: str
    collect_url: str | None  # set only when the app user was created now: printed once
    forms: list[tuple[str, str]] = field(default_factory=list)  # (xmlFormId, outcome)
    lists: list[tuple[str, str]] = field(default_factory=list)  # (list name, outcome)


def library_forms() -> list[Path]:
    return sorted(LIBRARY.glob("*.xlsx"))


def run(services: Services) -> Setup:
    settings, db = services.settings, services.db
    admin_password = None
    admin = users.find_user_by_email(db, settings.admin_email)
    if admin is None:
        admin_password = settings.admin_password or secrets.token_urlsafe(12)
        admin = users.create_user(
            db, settings.admin_email, admin_password, is_admin=True, display_name="Administrator"
        )
        if settings.admin_password:
            admin_password = None  # the operator chose it; do not print it back
    project = projects.find_project_by_name(db, settings.default_project)
    if project is None:
        project = projects.create_project(
            db,
            settings.default_project,
            "Kunjungan Jemput Bola Inovasi Perangkat Daerah (Barenlitbangda Kota Sawahlunto)",
            actor_id=admin.actor_id,
        )
    kept = install_lists(services, project.id, actor_id=admin.actor_id)
    published = []
    for path in library_forms():
        result = form_store.publish_xlsform(
            db, services.blobs, project.id, path.read_bytes(), path.name, actor_id=admin.actor_id
        )
        published.append((result.form.xml_form_id, result.outcome))
    app_user = app_users.find_app_user_by_name(
        db, services.box, project.id, settings.default_app_user
    )
    url = None
    fresh = app_user is None
    if app_user is None:  # its key goes to the console once, never to every start's log
        app_user = app_users.create_app_user(
            db, services.box, project.id, settings.default_app_user, actor_id=admin.actor_id
        )
        url = (
            collect_url(settings.public_url, app_user.token, project.id) if app_user.token else None
        )
    # The default app user fills the shipped forms: each form when it is first published, all
    # of them when the app user is new. A form a manager took from it stays taken.
    for xml_form_id, outcome in published:
        if fresh or outcome == "created":
            try:
                roles.assign_form(
                    db, project.id, xml_form_id, app_user.actor.id, actor_id=admin.actor_id
                )
            except AlreadyExists:
                pass
    return Setup(
        settings.admin_email,
        admin_password if admin_password else None,
        project.id,
        settings.default_app_user,
        url,
        published,
        kept,
    )


def install_lists(
    services: Services, project_id: int, *, actor_id: int | None = None
) -> list[tuple[str, str]]:
    """The kept lists in a project, each with at least its properties: (name, outcome), the
    outcome `created`, `updated` (properties added) or `unchanged`."""
    outcomes = []
    for kept in KEPT_LISTS:
        made, added = datasets.ensure_list(
            services.db, project_id, kept.name, kept.properties, actor_id=actor_id
        )
        outcomes.append((kept.name, "created" if made else "updated" if added else "unchanged"))
    return outcomes
