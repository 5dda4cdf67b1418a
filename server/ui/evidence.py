"""The evidence board (a form's photos, grouped and flagged, a page of submissions at a time)
and the photos' thumbnails; `photo_flags` puts the flags of a page's photos in words (the
board, a submission's page)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import FromQuery
from litestar.response import Template

from forms.instruments import SIPERA
from storage import browse, photos, submissions, thumbs
from storage import forms as form_store
from storage.errors import InvalidInput, NotFound

from ..auth import SUBMIT, may_review, own_only
from ..deps import DB, Blobs, Caller, PathParameter, PathText, ProjectId, QueryParameter, Roles
from ..errors import UnsupportedMedia
from ..guards import requires
from . import i18n, integrity
from .common import FORM_PATH, Listing, project_page, submission_title

FLAG_NAMES = photos.FLAGS
BOARD_PAGE = 30  # submissions a page (about 90 photos: the page stays light on a phone)


@dataclass
class Tile:
    photo: photos.PhotoRow
    row: browse.Row
    flags: set[str]
    question: str
    indicator: str | None
    views: list[integrity.FlagView] = field(default_factory=list)


def photo_flags(
    db: Any,
    blobs: Any,
    project_id: int,
    xml_form_id: str,
    shown: Sequence[photos.PhotoRow],
    *,
    show_others: bool,
) -> dict[tuple[int, str], list[integrity.FlagView]]:
    """The flags of the photos shown, in words: each photo analysed (once, cached), checked
    against every form of the project."""
    facts = photos.ensure_analyzed(db, blobs, [p.sha256 for p in shown])
    found = photos.page_findings(db, project_id, shown, facts)
    other_forms = {
        m.xml_form_id
        for findings in found.values()
        for f in findings
        for m in f.others
        if m.xml_form_id != xml_form_id
    }
    titles = (
        {
            form.xml_form_id: version.title or form.xml_form_id
            for form, version in form_store.list_forms(db, project_id)
            if form.xml_form_id in other_forms
        }
        if other_forms and show_others
        else {}
    )
    return {
        key: integrity.views(
            findings,
            project_id=project_id,
            xml_form_id=xml_form_id,
            form_titles=titles,
            show_others=show_others,
        )
        for key, findings in found.items()
    }


def row_answer(values: Any, name: str, key: str) -> str | None:
    """The answer `key` in the repeat row (or group) that holds the file `name`."""
    if isinstance(values, list):
        for item in values:
            found = row_answer(item, name, key)
            if found is not None:
                return found
    elif isinstance(values, dict):
        if name in values.values() and key in values:
            return values[key] or None
        for item in values.values():
            if isinstance(item, (dict, list)):
                found = row_answer(item, name, key)
                if found is not None:
                    return found
    return None


#: Photos not analysed before that one page of the submissions list analyses (about 20 ms
#: each); the others are analysed when their submission or the board is shown, and until then
#: their row's marker can only say ``duplicate``.
ROW_ANALYSIS = 40


def row_flags(
    db: Any, blobs: Any, project_id: int, form_id: int, submission_ids: list[int]
) -> dict[int, str]:
    """The words of each listed submission's marker: the flags of any of its photos."""
    found = photos.submission_flags(
        db, blobs, project_id, form_id, submission_ids, analyze_limit=ROW_ANALYSIS
    )
    return {sid: integrity.row_marks(flags) for sid, flags in found.items()}


@get(f"{FORM_PATH}/board", sync_to_thread=True, guards=[requires(SUBMIT)])
def board(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    blobs: Blobs,
    caller: Caller,
    roles: Roles,
    cursor: Annotated[str | None, QueryParameter(name="after")] = None,
    group: FromQuery[str] = "submission",
    question: FromQuery[str | None] = None,
    flag: FromQuery[str | None] = None,
    indicator: FromQuery[str | None] = None,
) -> Template:
    listing = Listing.open(request, db, caller, roles, project_id, xml_form_id)
    form, schema = listing.form, listing.schema
    page = browse.page_submissions(
        db, form, listing.filters, cursor=cursor, limit=BOARD_PAGE, schema=schema, count=False
    )
    rows = {row.submission.id: row for row in page.rows}
    shown = photos.list_form_photos(
        db, form.id, submission_ids=list(rows), visit_date_names=SIPERA.visit_date_names
    )
    flags = photo_flags(
        db, blobs, project_id, form.xml_form_id, shown, show_others=may_review(roles)
    )
    questions = {f.path: i18n.label(f.labels, f.name) for f in schema.fields if f.is_binary}
    tiles = []
    for photo in shown:
        row = rows[photo.submission_id]
        views = flags.get(photo.key, [])
        tile = Tile(
            photo,
            row,
            {v.flag for v in views},
            questions.get(photo.field or "", photo.name),
            row_answer(row.version.values, photo.name, SIPERA.indicator_name),
            views,
        )
        if question and photo.field != question:
            continue
        if flag and flag not in tile.flags:
            continue
        if indicator and tile.indicator != indicator:
            continue
        tiles.append(tile)
    groups: dict[str, list[Tile]] = {}
    title_of = submission_title(schema)
    for tile in tiles:
        title = (
            tile.question
            if group == "question"
            else title_of(tile.row.version, tile.row.submission.instance_id)
        )
        groups.setdefault(title, []).append(tile)
    indicator_field = next((f for f in schema.fields if f.name == SIPERA.indicator_name), None)
    return project_page(
        "board.html",
        request,
        db,
        caller,
        project_id,
        **listing.context(request, page),
        groups=groups,
        group=group,
        question=question,
        flag=flag,
        indicator=indicator,
        questions=questions,
        flag_names=FLAG_NAMES,
        indicator_field=indicator_field,
    )


@get(
    f"{FORM_PATH}/s/{{instance_id:str}}/thumb/{{size:int}}/{{name:str}}",
    sync_to_thread=True,
    guards=[requires(SUBMIT)],
)
def thumbnail(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    size: Annotated[int, PathParameter()],
    name: PathText,
    db: DB,
    blobs: Blobs,
    caller: Caller,
    roles: Roles,
) -> Response[bytes]:
    """A photo's thumbnail (EXIF orientation applied), made once and kept in the blob store.
    The URL carries the photo's digest (?v=), so browsers may keep it for a year."""
    if size not in thumbs.SIZES:
        raise NotFound(message=i18n.gettext("No such thumbnail size."))
    only = own_only(roles, caller)
    attachment = submissions.get_attachment(
        db, project_id, xml_form_id, instance_id, name, submitter_id=only
    )
    try:
        key = thumbs.ensure_thumbnail(blobs, attachment.blob.sha256, size)
    except InvalidInput:
        raise UnsupportedMedia(i18n.gettext("This file is not an image.")) from None
    return Response(
        blobs.read_bytes(key),
        media_type=thumbs.CONTENT_TYPE,
        headers={"Cache-Control": "private, max-age=31536000, immutable"},
    )


HANDLERS = [board, thumbnail]
