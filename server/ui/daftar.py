"""A hand-kept entity list for managers (/p/{id}/daftar/{name}): the officers the visit form
offers (`petugas`), or any list no form fills. Its entities with their properties; add one,
edit one (a new version), delete one after a confirmation page.

Every change goes through storage.entities, as the REST API's do: the same audits, versions
and list hash, so phones fetch the list again on their next form update. A list that forms
fill (a form declares entities for it) is changed through those forms, not here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.response import Redirect, Template

from forms.entities import normalize_name
from forms.instruments import SIPERA, KeptList
from storage import datasets, entities
from storage.datasets import EntityList
from storage.errors import Conflict, EntityVersionConflict, InvalidInput, NotFound

from ..auth import MANAGE
from ..deps import DB, Caller, PathText, ProjectId, Roles, UserAgent
from ..guards import requires
from . import i18n
from .common import FormBody, project_page

PAGE = "/p/{project_id:int}/daftar/{name:str}"
ONE = f"{PAGE}/e/{{entity_uuid:str}}"
#: Entities shown at once; a hand-kept list is short (officers: tens).
SHOWN_MAX = 500
#: Characters a label or a property value may have here (the inputs say so too).
VALUE_MAX = 255
#: Form fields carrying a property are `prop:<name>` (a property may be called `label`).
PROP = "prop:"
#: The lists make run creates (server.bootstrap.KEPT_LISTS): their page may create them too.
KNOWN: dict[str, KeptList] = {SIPERA.officers.name: SIPERA.officers}


@dataclass(frozen=True)
class Wording:
    """How the page names a list, its entities' label and their properties."""

    title: str
    label: str
    properties: dict[str, str]
    intro: str


def wording(name: str) -> Wording:
    """The officers' list in the page's language; any other list by its own names."""
    if name == SIPERA.officers.name:
        return Wording(
            i18n.gettext("Officers"),
            i18n.gettext("Name"),
            {"nip": i18n.gettext("NIP (employee ID)"), "jabatan": i18n.gettext("Position")},
            i18n.gettext("The visit form offers these officers: who came, who follows up.")
            + " "
            + i18n.gettext("Phones get changes when they next update their forms."),
        )
    return Wording(
        i18n.gettext("List %(name)s", name=name),
        i18n.gettext("Label"),
        {},
        i18n.gettext("Forms read this list as %(file)s.", file=f"{name}.csv"),
    )


@dataclass(frozen=True)
class Row:
    uuid: str
    label: str
    version: int
    values: list[tuple[str, str, str]]  # (property, its caption, value)


def kept_lists(db: Any, project_id: int) -> list[str]:
    """The names of the project's lists that no form fills (published or draft): the lists
    this page manages."""
    found = []
    for dataset in datasets.list_lists(db, project_id):
        use = datasets.get_list(db, project_id, dataset.name).forms
        if not (use.source or use.draft_source):
            found.append(dataset.name)
    return found


def _kept(db: Any, project_id: int, name: str) -> EntityList | None:
    """The list if this page manages it; None when the project has no such list yet (a known
    list may then be created here); Conflict when forms fill it."""
    try:
        listed = datasets.get_list(db, project_id, name)
    except NotFound:
        if name in KNOWN:
            return None
        raise NotFound(message=i18n.gettext("The project has no list of that name.")) from None
    if listed.forms.source or listed.forms.draft_source:
        forms = ", ".join(f.name for f in [*listed.forms.source, *listed.forms.draft_source])
        raise Conflict(
            i18n.gettext(
                "Forms fill this list (%(forms)s): its entries change through them, not here.",
                forms=forms,
            )
        )
    return listed


def _rows(db: Any, project_id: int, listed: EntityList, words: Wording) -> list[Row]:
    names = [p.name for p in listed.properties]
    found = entities.list_entities(db, project_id, listed.dataset.name)
    rows = [
        Row(
            f.entity.uuid,
            f.version.label,
            f.version.version,
            [(p, words.properties.get(p, p), str(f.version.data.get(p) or "")) for p in names],
        )
        for f in found
    ]
    return sorted(rows, key=lambda r: (normalize_name(r.label), r.label))


@get(PAGE, sync_to_thread=True, guards=[requires(MANAGE)])
def list_page(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    name: PathText,
    db: DB,
    caller: Caller,
    roles: Roles,
) -> Template:
    listed = _kept(db, project_id, name)
    words = wording(name)
    rows = _rows(db, project_id, listed, words) if listed else []
    shown = listed.properties if listed else []
    properties = [(p.name, words.properties.get(p.name, p.name)) for p in shown]
    return project_page(
        "daftar.html",
        request,
        db,
        caller,
        project_id,
        roles=roles,
        list_name=name,
        listed=listed,
        words=words,
        rows=rows[:SHOWN_MAX],
        total=len(rows),
        properties=properties,
        readers=[f.name for f in listed.forms.linked] if listed else [],
        others=[other for other in kept_lists(db, project_id) if other != name],
        done=request.query_params.get("done"),
        value_max=VALUE_MAX,
        prop=PROP,
    )


@post(f"{PAGE}/buat", sync_to_thread=True, status_code=303, guards=[requires(MANAGE)])
def create_list(project_id: ProjectId, name: PathText, db: DB, caller: Caller) -> Redirect:
    """Make a known list (the officers) in a project that lacks it, with its properties."""
    kept = KNOWN.get(name)
    if kept is None:
        raise NotFound(message=i18n.gettext("Only the officers' list can be created here."))
    datasets.ensure_list(db, project_id, kept.name, kept.properties, actor_id=caller.actor_id)
    return _back(project_id, name, "created")


@post(PAGE, sync_to_thread=True, status_code=303, guards=[requires(MANAGE)])
def add_entry(
    project_id: ProjectId,
    name: PathText,
    data: Annotated[dict[str, Any], FormBody],
    db: DB,
    caller: Caller,
    user_agent: UserAgent = None,
) -> Redirect:
    listed = _existing(db, project_id, name)
    label, values = _read(data, listed)
    body = {"label": label, "data": {k: v for k, v in values.items() if v}}
    entities.create(db, project_id, name, body, actor_id=caller.actor_id, user_agent=user_agent)
    return _back(project_id, name, "added")


@post(ONE, sync_to_thread=True, status_code=303, guards=[requires(MANAGE)])
def edit_entry(
    project_id: ProjectId,
    name: PathText,
    entity_uuid: PathText,
    data: Annotated[dict[str, Any], FormBody],
    db: DB,
    caller: Caller,
    user_agent: UserAgent = None,
) -> Redirect:
    """A new version from the edit form; nothing changed makes none (the list's hash stays, so
    phones download nothing). A version made meanwhile by someone else is a 409."""
    listed = _existing(db, project_id, name)
    label, values = _read(data, listed)
    current = _entity(db, project_id, name, entity_uuid)
    before = {p.name: str(current.version.data.get(p.name) or "") for p in listed.properties}
    if label == current.version.label and values == before:
        return _back(project_id, name, "unchanged")
    base = _text(data, "base_version")
    try:
        entities.update(
            db,
            project_id,
            name,
            current.entity.uuid,
            {"label": label, "data": values},
            base_version=base,
            force=False,
            actor_id=caller.actor_id,
            user_agent=user_agent,
        )
    except EntityVersionConflict:
        raise Conflict(
            i18n.gettext("Someone changed this entry meanwhile: reload the page and edit again.")
        ) from None
    return _back(project_id, name, "saved")


@get(f"{ONE}/hapus", sync_to_thread=True, guards=[requires(MANAGE)])
def confirm_delete(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    name: PathText,
    entity_uuid: PathText,
    db: DB,
    caller: Caller,
    roles: Roles,
) -> Template:
    listed = _existing(db, project_id, name)
    words = wording(name)
    found = _entity(db, project_id, name, entity_uuid)
    values = [
        (words.properties.get(p.name, p.name), str(found.version.data.get(p.name) or ""))
        for p in listed.properties
    ]
    return project_page(
        "daftar_hapus.html",
        request,
        db,
        caller,
        project_id,
        roles=roles,
        list_name=name,
        words=words,
        found=found,
        values=values,
    )


@post(f"{ONE}/hapus", sync_to_thread=True, status_code=303, guards=[requires(MANAGE)])
def delete_entry(
    project_id: ProjectId, name: PathText, entity_uuid: PathText, db: DB, caller: Caller
) -> Redirect:
    _existing(db, project_id, name)
    found = _entity(db, project_id, name, entity_uuid)
    entities.delete(db, project_id, name, found.entity.uuid, actor_id=caller.actor_id)
    return _back(project_id, name, "deleted")


# ---- helpers --------------------------------------------------------------------------------


def _existing(db: Any, project_id: int, name: str) -> EntityList:
    listed = _kept(db, project_id, name)
    if listed is None:
        raise NotFound(message=i18n.gettext("The project has no list of that name."))
    return listed


def _entity(db: Any, project_id: int, name: str, entity_uuid: str) -> entities.Found:
    try:
        return entities.get_entity(db, project_id, name, entity_uuid)
    except NotFound:
        raise NotFound(message=i18n.gettext("That entry is not in the list (deleted?).")) from None


def _text(data: dict[str, Any], key: str) -> str:
    """One field of the posted form, trimmed ("" when absent; the last of repeated ones)."""
    value = data.get(key, "")
    if isinstance(value, list):
        value = value[-1] if value else ""
    return str(value).strip()


def _read(data: dict[str, Any], listed: EntityList) -> tuple[str, dict[str, str]]:
    """The label and every property's value of an add or edit form, checked."""
    label = _text(data, "label")
    values = {p.name: _text(data, f"{PROP}{p.name}") for p in listed.properties}
    if not label:
        raise InvalidInput(i18n.gettext("Write the name (label) of the entry."))
    for value in (label, *values.values()):
        if len(value) > VALUE_MAX:
            raise InvalidInput(
                i18n.gettext("A value is longer than %(n)s characters.", n=VALUE_MAX)
            )
        if "\x00" in value or any(ord(c) < 32 and c not in "\t" for c in value):
            raise InvalidInput(i18n.gettext("A value holds a control character."))
    return label, values


def _back(project_id: int, name: str, done: str) -> Redirect:
    return Redirect(f"/p/{project_id}/daftar/{quote(name, safe='')}?done={done}", status_code=303)


HANDLERS = [list_page, create_list, add_entry, edit_entry, confirm_delete, delete_entry]
