"""The project's innovations (the `inovasi` entity list): grouped by OPD with their stage, last
visit and evidence; one innovation's properties, versions and submissions; and the typed names
of older submissions that no single innovation matches, for a supervisor to link by hand.

Codes (OPD, stage, …) are shown with the labels of the innovation profile form's choices; a
project without that form shows the codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from forms.entities import normalize_name
from forms.instruments import SIPERA
from forms.xform import Field, Schema
from storage import entity_links
from storage.errors import Conflict, InvalidInput, NotFound

from ..auth import REVIEW, SUBMIT, may_review, own_only
from ..deps import DB, Caller, PathText, ProjectId, Roles
from ..guards import requires
from . import i18n
from .common import FormBody, form_context, project_page
from .submissions import show

PAGE = "/p/{project_id:int}/inovasi"
SHOWN_UNMATCHED = 50  # rows of the unmatched list on one page (a select each)
LIST_ALL_MAX = 300  # innovations listed at once; past this, one OPD at a time (`?opd=`)
OPTIONS_MAX = 200  # innovations a row's select offers (an OPD may have thousands)
# Names the page links in one request (each link is a statement: about 2,000 a second); more
# are linked by `jebol entities link` on the server.
AUTO_LINK_LIMIT = 2000


@dataclass
class Choices:
    """What the innovation profile form says about the list's properties: the field saved to
    each (its label, and its choices' labels for the codes)."""

    fields: dict[str, Field]

    @classmethod
    def of(cls, db: Any, project_id: int) -> Choices:
        profile = _schema(db, project_id, SIPERA.profile.form_id)
        return cls(_property_fields(profile) if profile else {})

    def name(self, prop: str) -> str:
        found = self.fields.get(prop)
        return i18n.label(found.labels, prop) if found else prop

    def value(self, prop: str, raw: Any) -> str:
        found = self.fields.get(prop)
        return show(found, raw) if found else ("" if raw is None else str(raw))

    def opd(self, code: str) -> str:
        return self.value(entity_links.OPD_PROPERTY, code) if code else i18n.gettext("No OPD")


def _schema(db: Any, project_id: int, xml_form_id: str) -> Schema | None:
    try:
        return form_context(db, project_id, xml_form_id)[2]
    except NotFound:
        return None


def _property_fields(schema: Schema) -> dict[str, Field]:
    """The field saved to each property of the `inovasi` list (`save_to`), else the top-level
    field of the property's name."""
    found: dict[str, Field] = {}
    for decl in schema.entities:
        if decl.dataset == entity_links.LIST_NAME:
            for prop, path in decl.properties.items():
                field = schema.field(path)
                if field is not None:
                    found[prop] = field
    for field in schema.fields:
        if field.path.count("/") == 1:
            found.setdefault(field.name, field)
    return found


@get(PAGE, sync_to_thread=True, guards=[requires(SUBMIT)])
def innovations_page(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    db: DB,
    caller: Caller,
    roles: Roles,
) -> Template:
    choices = Choices.of(db, project_id)
    groups = sorted(
        entity_links.innovations(db, project_id),
        key=lambda g: (g.opd == "", normalize_name(choices.opd(g.opd))),
    )
    can_review = may_review(roles)
    report = None
    if can_review and groups:
        report = entity_links.link_typed_names(db, project_id, dry_run=True)
    unmatched = report.unmatched[:SHOWN_UNMATCHED] if report else []
    every = [i for g in groups for i in g.innovations]
    by_opd = {g.opd: g.innovations for g in groups}
    total = len(every)
    selected = request.query_params.get("opd")
    return project_page(
        "inovasi.html",
        request,
        db,
        caller,
        project_id,
        roles=roles,
        groups=groups,
        total=total,
        list_all=total <= LIST_ALL_MAX,
        selected=selected,
        choices=choices,
        can_review=can_review,
        report=report,
        unmatched=[(u, _options(u, by_opd.get(u.opd) or every)) for u in unmatched],
        linked=request.query_params.get("linked"),
        resolved=request.query_params.get("resolved"),
        titles=_form_titles(db, project_id),
        auto_link_limit=AUTO_LINK_LIMIT,
    )


@get(f"{PAGE}/{{entity_uuid:str}}", sync_to_thread=True, guards=[requires(SUBMIT)])
def innovation_page(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    entity_uuid: PathText,
    db: DB,
    caller: Caller,
    roles: Roles,
) -> Template:
    try:
        view = entity_links.innovation(
            db, project_id, entity_uuid, only_actor=own_only(roles, caller)
        )
    except NotFound:
        raise NotFound(message=i18n.gettext("Innovation not found.")) from None
    choices = Choices.of(db, project_id)
    properties = [
        (choices.name(prop), choices.value(prop, raw), raw)
        for prop, raw in view.current.data.items()
    ]
    return project_page(
        "inovasi_entity.html",
        request,
        db,
        caller,
        project_id,
        roles=roles,
        view=view,
        properties=properties,
        choices=choices,
        opd=choices.opd(str(view.current.data.get(entity_links.OPD_PROPERTY) or "")),
        stage=choices.value(
            entity_links.STAGE_PROPERTY, view.current.data.get(entity_links.STAGE_PROPERTY)
        ),
        can_review=may_review(roles),
    )


@dataclass
class ResolveForm:
    submission_id: str = ""
    entity: str = ""
    name: str = ""


@post(f"{PAGE}/resolve", sync_to_thread=True, status_code=303, guards=[requires(REVIEW)])
def resolve_name(
    project_id: ProjectId,
    data: Annotated[ResolveForm, FormBody],
    db: DB,
    caller: Caller,
) -> Redirect:
    submission = data.submission_id.strip()
    if not (submission.isascii() and submission.isdigit() and len(submission) <= 18):
        raise InvalidInput(i18n.gettext("Choose a submission."))
    if not data.entity.strip():
        raise InvalidInput(i18n.gettext("Choose the innovation this name means."))
    try:
        entity_links.resolve(
            db,
            project_id,
            int(submission),
            data.entity.strip().lower(),
            caller.actor_id,
            name=data.name.strip() or None,
        )
    except NotFound:
        raise NotFound(
            message=i18n.gettext("That innovation or submission is not in this project.")
        ) from None
    except Conflict:
        raise Conflict(i18n.gettext("That innovation was deleted; choose another.")) from None
    return Redirect(f"/p/{project_id}/inovasi?resolved=1#belum-tertaut", status_code=303)


@post(f"{PAGE}/link", sync_to_thread=True, status_code=303, guards=[requires(REVIEW)])
def link_names(project_id: ProjectId, db: DB, caller: Caller) -> Redirect:
    """What `jebol entities link` does, from the page: link every name that matches one
    innovation."""
    pending = entity_links.link_typed_names(db, project_id, dry_run=True)
    if pending.matched > AUTO_LINK_LIMIT:
        raise InvalidInput(
            i18n.gettext(
                "Too many names to link from this page (%(n)s): run `jebol entities link` on "
                "the server.",
                n=pending.matched,
            )
        )
    report = entity_links.link_typed_names(db, project_id, actor_id=caller.actor_id)
    return Redirect(
        f"/p/{project_id}/inovasi?linked={report.matched}#belum-tertaut", status_code=303
    )


@dataclass(frozen=True)
class Option:
    uuid: str
    label: str
    opd: str  # its OPD code
    candidate: bool  # it has the typed name (one of several)


def _options(row: entity_links.Unmatched, pool: list[entity_links.Innovation]) -> list[Option]:
    """What a supervisor picks from for one typed name: the innovations having that name
    first, then those of its OPD (all innovations when its OPD has none); from a large pool
    only those sharing a word with the name, at most OPTIONS_MAX."""
    named = {c.uuid for c in row.candidates}
    if len(pool) > OPTIONS_MAX:
        words = {w for w in normalize_name(row.name).split() if len(w) > 2}
        pool = [i for i in pool if i.uuid in named or words & set(normalize_name(i.label).split())][
            :OPTIONS_MAX
        ]
    options = [Option(i.uuid, i.label, i.opd, i.uuid in named) for i in pool]
    return sorted(options, key=lambda o: not o.candidate)


def _form_titles(db: Any, project_id: int) -> dict[str, str]:
    """The three forms' titles (a submission's link names its form by them)."""
    titles = {}
    for form_id in (SIPERA.profile.form_id, SIPERA.visit.form_id, SIPERA.evidence.form_id):
        schema = _schema(db, project_id, form_id)
        titles[form_id] = schema.title if schema else form_id
    return titles


HANDLERS = [innovations_page, resolve_name, link_names, innovation_page]
