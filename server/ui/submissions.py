"""A form's submissions: the filtered table, one submission (answers, versions and their
changes, photos, a map), and the review: bulk and one at a time, with comments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlparse

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from forms.instance import parse_geopoint
from forms.instance import value_at as answer_at
from forms.instruments import SIPERA
from forms.xform import Field, Schema
from storage import browse, submissions
from storage import forms as form_store
from storage import history as history_store
from storage import photos as photo_store
from storage.errors import InvalidInput, NotFound

from ..auth import REVIEW, SUBMIT, may_review, own_only
from ..deps import DB, Blobs, Caller, Config, PathText, ProjectId, QueryParameter, Roles
from ..guards import requires
from . import columns, evidence, i18n
from . import history as history_words
from .columns import show
from .common import (
    FORM_PATH,
    FormBody,
    Listing,
    form_context,
    project_page,
    render,
    safe_next,
    submission_title,
)

REVIEW_ACTIONS = ("approved", "hasIssues", "rejected")
NEEDS_COMMENT = ("hasIssues", "rejected")

# ---- the table -------------------------------------------------------------------------------


def value_at(values: dict[str, Any], path: str) -> Any:
    """The answer at a schema path outside repeats."""
    return answer_at(values, path.strip("/").split("/"))


def table_columns(
    request: Request[Any, Any, Any], db: Any, listing: Listing, project_id: int
) -> list[columns.Column]:
    """The columns the caller chose for this form (its cookie), else the form's defaults."""
    cookie = request.cookies.get(columns.cookie_name(project_id, listing.form.xml_form_id))
    picked = columns.chosen(listing.schema, columns.decode_keys(cookie)) if cookie else []
    return picked or columns.defaults(
        listing.schema, lambda: browse.recent_values(db, listing.form)
    )


def _choose_columns(request: Request[Any, Any, Any], project_id: int, xml_form_id: str) -> Redirect:
    """`?cols=…` (the Kolom chooser): remember the choice in the form's cookie (none ticked:
    back to the defaults) and show the page again with its filters."""
    keys = [k for k in request.query_params.getall("cols", []) if k]
    rest = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cols", "after")]
    target = f"/p/{project_id}/f/{quote(xml_form_id, safe='')}"
    response = Redirect(target + (f"?{urlencode(rest)}" if rest else ""), status_code=303)
    name, path = columns.cookie_name(project_id, xml_form_id), f"/p/{project_id}/f/"
    if keys:
        response.set_cookie(
            name,
            columns.encode_keys(keys),
            max_age=365 * 86400,
            path=path,
            samesite="lax",
            httponly=True,
        )
    else:
        response.delete_cookie(name, path=path)
    return response


@get(FORM_PATH, sync_to_thread=True, guards=[requires(SUBMIT)])
def submission_table(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    caller: Caller,
    roles: Roles,
    blobs: Blobs,
    cursor: Annotated[str | None, QueryParameter(name="after")] = None,
    sort: FromQuery[str] = "newest",
) -> Template | Redirect:
    if "cols" in request.query_params:
        form_context(db, project_id, xml_form_id)  # an unknown form is a 404, not a cookie
        return _choose_columns(request, project_id, xml_form_id)
    listing = Listing.open(request, db, caller, roles, project_id, xml_form_id)
    schema = listing.schema
    page = browse.page_submissions(
        db,
        listing.form,
        listing.filters,
        sort=sort,
        cursor=cursor,
        schema=schema,
        count=cursor is None,
    )
    partial = request.headers.get("hx-request") == "true" and cursor is not None
    shown = table_columns(request, db, listing, project_id)
    return project_page(
        "_rows.html" if partial else "submissions.html",
        request,
        db,
        caller,
        project_id,
        **listing.context(request, page),
        row_flags=evidence.row_flags(
            db, blobs, project_id, listing.form.id, [r.submission.id for r in page.rows]
        ),
        schema=schema,
        columns=shown,
        offered=columns.offered(schema) if not partial else [],
        filter_items=[
            (k, v) for k, v in request.query_params.multi_items() if k not in ("after", "cols")
        ],
        # The photos' ZIP takes the page's filters (empty ones left out: not dates, not ids).
        export_query=urlencode(
            [
                (k, v)
                for k, v in request.query_params.multi_items()
                if v and k in ("since", "until", "dateby", "state", "opd", "submitter", "q")
            ]
        ),
        submitters=[]
        if partial or listing.filters.only_actor is not None
        else browse.submitters(db, listing.form),
        sort=sort,
        whole_words=columns.whole_words,
    )


@dataclass
class BulkReview:
    state: str
    ids: list[str] | str = ""
    comment: str = ""


@post(f"{FORM_PATH}/review", sync_to_thread=True, status_code=303, guards=[requires(REVIEW)])
def bulk_review(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    data: Annotated[BulkReview, FormBody],
    db: DB,
    caller: Caller,
) -> Redirect:
    ids = [data.ids] if isinstance(data.ids, str) else data.ids
    _check_review(data.state, data.comment)
    for instance_id in [i for i in ids if i]:
        _review(db, project_id, xml_form_id, instance_id, data.state, data.comment, caller.actor_id)
    back = request.headers.get("referer") or f"/p/{project_id}/f/{quote(xml_form_id, safe='')}"
    return Redirect(safe_next(_path_and_query(back)), status_code=303)


def _path_and_query(url: str) -> str:
    parsed = urlparse(url)
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


def _check_review(state: str, comment: str) -> None:
    if state not in REVIEW_ACTIONS:
        raise InvalidInput(i18n.gettext("Unknown review state."))
    if state in NEEDS_COMMENT and not comment.strip():
        text = i18n.gettext("A comment is required for has issues and reject.")
        raise InvalidInput(text)


def _review(
    db: Any,
    project_id: int,
    xml_form_id: str,
    instance_id: str,
    state: str,
    comment: str,
    actor_id: int,
) -> None:
    submissions.set_review_state(db, project_id, xml_form_id, instance_id, state, actor_id=actor_id)
    if comment.strip():
        submissions.add_comment(
            db, project_id, xml_form_id, instance_id, comment.strip(), actor_id=actor_id
        )


# ---- one submission --------------------------------------------------------------------------


@dataclass
class Answer:
    field: Field
    depth: int
    value: Any = None
    text: str = ""
    rows: list[list[Answer]] | None = None  # a repeat's rows


def answers(schema: Schema, values: dict[str, Any]) -> list[Answer]:
    """The submission's answers in form order, groups indented and repeats as numbered rows."""
    children: dict[str, list[Field]] = {}
    for item in schema.fields:
        parent = item.path.rsplit("/", 1)[0]
        children.setdefault(parent, []).append(item)

    def walk(parent: str, scope: dict[str, Any], depth: int) -> list[Answer]:
        out: list[Answer] = []
        for item in children.get(parent, []):
            raw = scope.get(item.name) if isinstance(scope, dict) else None
            if item.type == "repeat":
                rows = raw if isinstance(raw, list) else ([raw] if isinstance(raw, dict) else [])
                out.append(
                    Answer(item, depth, rows=[walk(item.path, row, depth + 1) for row in rows])
                )
            elif item.type == "structure":
                if item.name == "meta":
                    continue
                out.append(Answer(item, depth))
                out.extend(walk(item.path, raw if isinstance(raw, dict) else {}, depth + 1))
            elif item.labels or raw not in (None, ""):
                out.append(Answer(item, depth, raw, show(item, raw)))
        return out

    return walk("", values, 0)


def changes(older: dict[str, Any], newer: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Fields whose answers differ between two versions: (path, before, after)."""

    def flat(values: Any, prefix: str = "") -> dict[str, str]:
        out: dict[str, str] = {}
        if isinstance(values, dict):
            for key, value in values.items():
                out.update(flat(value, f"{prefix}/{key}"))
        elif isinstance(values, list):
            for index, value in enumerate(values, 1):
                out.update(flat(value, f"{prefix}[{index}]"))
        else:
            out[prefix] = "" if values is None else str(values)
        return out

    before, after = flat(older), flat(newer)
    return [
        (path, before.get(path, ""), after.get(path, ""))
        for path in sorted(set(before) | set(after))
        if before.get(path, "") != after.get(path, "") and not path.startswith("/meta/")
    ]


@get(f"{FORM_PATH}/s/{{instance_id:str}}", sync_to_thread=True, guards=[requires(SUBMIT)])
def submission_page(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    db: DB,
    blobs: Blobs,
    settings: Config,
    caller: Caller,
    roles: Roles,
) -> Template:
    only = own_only(roles, caller)
    form, _, _ = form_context(db, project_id, xml_form_id)
    view = submissions.get_submission(db, project_id, xml_form_id, instance_id)
    if only is not None and view.submission.submitter_id != only:
        raise NotFound(message=i18n.gettext("Submission not found."))
    version_row = form_store.get_version_by_id(db, view.current.form_version_id)
    schema = form_store.schema_of(version_row)
    history = submissions.list_versions(db, project_id, xml_form_id, instance_id)
    diffs = []
    full = submissions.list_version_values(db, view.submission.id)
    for older, newer in zip(full, full[1:]):
        diffs.append((newer[0], changes(older[1], newer[1])))
    can_review = may_review(roles)
    shown = photo_store.list_form_photos(
        db, form.id, submission_ids=[view.submission.id], visit_date_names=SIPERA.visit_date_names
    )
    flags = evidence.photo_flags(
        db, blobs, project_id, form.xml_form_id, shown, show_others=can_review
    )
    questions = {f.path: i18n.label(f.labels, f.name) for f in schema.fields if f.is_binary}
    return project_page(
        "submission.html",
        request,
        db,
        caller,
        project_id,
        form=form,
        schema=schema,
        view=view,
        title=submission_title(schema)(view.current, view.submission.instance_id),
        answers=answers(schema, view.current.values),
        photos=[
            a
            for a in view.attachments
            if (a.content_type or "").startswith("image/") and a.blob_sha256
        ],
        files=[a for a in view.attachments if not (a.content_type or "").startswith("image/")],
        photo_flags={a.name: flags.get((view.submission.id, a.name), []) for a in view.attachments},
        photo_questions={p.name: questions.get(p.field or "", "") for p in shown},
        history=history,
        diffs=diffs,
        can_review=can_review,
        comments=history_store.comments(db, view.submission.id) if can_review else [],
        events=[
            (e.at, history_words.describe(e)) for e in history_store.events(db, view.submission.id)
        ]
        if can_review
        else [],
        neighbors=browse.neighbors(db, form, view.submission, only_actor=only),
        geopoints=_geopoints(schema, view.current.values),
        map_tiles=settings.map_tiles,
    )


def _geopoints(schema: Schema, values: dict[str, Any]) -> list[tuple[str, float, float]]:
    points = []
    for item in schema.fields:
        if item.type != "geopoint":
            continue
        point = parse_geopoint(value_at(values, item.path))
        if point is not None:  # only places on the globe reach the map
            points.append((i18n.label(item.labels, item.name), point.lat, point.lon))
    return points


@dataclass
class ReviewForm:
    state: str
    comment: str = ""


@post(
    f"{FORM_PATH}/s/{{instance_id:str}}/review",
    sync_to_thread=True,
    status_code=200,
    guards=[requires(REVIEW)],
)
def review_one(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    data: Annotated[ReviewForm, FormBody],
    db: DB,
    caller: Caller,
) -> Template | Redirect:
    _check_review(data.state, data.comment)
    _review(db, project_id, xml_form_id, instance_id, data.state, data.comment, caller.actor_id)
    if request.headers.get("hx-request") == "true":
        summary = submissions.get_summary(db, project_id, xml_form_id, instance_id)
        return render("_state.html", request, state=summary.submission.review_state)
    return Redirect(
        f"/p/{project_id}/f/{quote(xml_form_id, safe='')}/s/{quote(instance_id, safe='')}",
        status_code=303,
    )


@dataclass
class CommentForm:
    body: str


@post(
    f"{FORM_PATH}/s/{{instance_id:str}}/comment",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(REVIEW)],
)
def comment(
    project_id: ProjectId,
    xml_form_id: PathText,
    instance_id: PathText,
    data: Annotated[CommentForm, FormBody],
    db: DB,
    caller: Caller,
) -> Redirect:
    if data.body.strip():
        submissions.add_comment(
            db, project_id, xml_form_id, instance_id, data.body.strip(), actor_id=caller.actor_id
        )
    return Redirect(
        f"/p/{project_id}/f/{quote(xml_form_id, safe='')}/s/{quote(instance_id, safe='')}#comments",
        status_code=303,
    )


HANDLERS = [submission_table, bulk_review, submission_page, review_one, comment]
