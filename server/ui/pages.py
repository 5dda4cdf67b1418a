"""The supervisor's pages. Thin handlers: parse, one or two storage calls, render a template."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlparse

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from forms.errors import FormsError
from forms.instance import parse_geopoint
from forms.instance import value_at as answer_at
from forms.instruments import SIPERA
from forms.xform import Field, Schema
from storage import app_users, browse, photos, projects, submissions, thumbs
from storage import forms as form_store
from storage import roles as role_store
from storage import users as user_store
from storage.browse import Filters
from storage.errors import InvalidInput, NotFound, StorageError

from ..auth import (
    MANAGE,
    REVIEW,
    SESSION_COOKIE,
    SUBMIT,
    client_address,
    require_project,
    sees_all_submissions,
)
from ..deps import (
    DB,
    Blobs,
    Box,
    Caller,
    Config,
    PathParameter,
    PathText,
    ProjectId,
    QueryParameter,
)
from ..errors import UnsupportedMedia
from ..guards import PUBLIC, requires
from ..urls import collect_url, web_form_url
from . import i18n

FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
REVIEW_ACTIONS = ("approved", "hasIssues", "rejected")
NEEDS_COMMENT = ("hasIssues", "rejected")
FORM_PATH = "/p/{project_id:int}/f/{xml_form_id:str}"


def render(
    name: str, request: Request[Any, Any, Any], status_code: int = 200, **context: Any
) -> Template:
    return Template(
        template_name=name, status_code=status_code, context={"request": request, **context}
    )


def _is_id(value: str) -> bool:
    """Digits that fit a database id (a 5,000-digit number is not one)."""
    return value.isascii() and value.isdigit() and len(value) <= 18


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or urlparse(target).netloc
    ):
        return "/"
    return target


# ---- login, logout, language -----------------------------------------------------------------


@get("/login", sync_to_thread=False, opt=PUBLIC)
def login_page(request: Request[Any, Any, Any], next: FromQuery[str | None] = None) -> Template:
    return render("login.html", request, next=_safe_next(next), error=None)


@dataclass
class LoginForm:
    email: str
    password: str
    next: str = "/"


@post("/login", sync_to_thread=True, status_code=303, opt=PUBLIC)
def login(
    request: Request[Any, Any, Any], data: Annotated[LoginForm, FormBody], db: DB, settings: Config
) -> Redirect | Template:
    login_ = user_store.log_in(
        db, data.email, data.password, client=client_address(request), hours=settings.session_hours
    )
    if login_ is None:
        return render(
            "login.html",
            request,
            status_code=401,
            next=_safe_next(data.next),
            error=i18n.gettext("Wrong email or password."),
        )
    response = Redirect(_safe_next(data.next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        login_.token,
        httponly=True,
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
        max_age=int(settings.session_hours * 3600),
        path="/",
    )
    return response


@post("/logout", sync_to_thread=True, status_code=303, opt=PUBLIC)
def logout(request: Request[Any, Any, Any], db: DB) -> Redirect:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user_store.delete_session(db, token)
    response = Redirect("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@get("/lang/{code:str}", sync_to_thread=False, opt=PUBLIC)
def choose_language(request: Request[Any, Any, Any], code: PathText) -> Redirect:
    back = request.headers.get("referer") or "/"
    response = Redirect(_safe_next(urlparse(back).path or "/"))
    response.set_cookie(
        "jebol_lang", i18n.pick(code), max_age=365 * 86400, samesite="lax", path="/"
    )
    return response


# ---- projects --------------------------------------------------------------------------------


@get("/", sync_to_thread=True, guards=[requires()])
def home(request: Request[Any, Any, Any], db: DB, caller: Caller) -> Template | Redirect:
    visible = projects.list_visible_projects(db, caller.actor_id, caller.is_admin)
    if len(visible) == 1:
        return Redirect(f"/p/{visible[0].id}")
    return render("projects.html", request, caller=caller, projects=visible)


@get("/p/{project_id:int}", sync_to_thread=True, guards=[requires(SUBMIT)])
def project_home(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB, caller: Caller
) -> Template:
    project = projects.get_project(db, project_id)
    stats = browse.form_stats(db, project_id)
    coverage = browse.opd_coverage(
        db, project_id, i18n.label, date.today(), visit=SIPERA.visit, other=SIPERA.opd_other
    )
    roles = require_project(db, caller, project_id, SUBMIT)
    return render(
        "project.html",
        request,
        caller=caller,
        project=project,
        stats=stats,
        coverage=coverage,
        roles=roles,
        today=date.today().isoformat(),
    )


# ---- submissions table -----------------------------------------------------------------------


def _filters(request: Request[Any, Any, Any], caller: Any, roles: frozenset[str]) -> Filters:
    query = request.query_params
    if any("\x00" in value for _, value in query.multi_items()):
        # Filters become SQL parameters, and PostgreSQL refuses text with NUL in it.
        raise InvalidInput(i18n.gettext("A filter contains a NUL character."))

    def day(name: str) -> date | None:
        try:
            return date.fromisoformat(query.get(name, "")) if query.get(name) else None
        except ValueError:
            return None

    submitter = query.get("submitter", "")
    return Filters(
        since=day("since"),
        until=day("until"),
        state=query.get("state") or None,
        submitter_id=int(submitter) if _is_id(submitter) else None,
        opd=query.get("opd") or None,
        text=query.get("q") or None,
        only_actor=None if sees_all_submissions(roles) else caller.actor_id,
    )


def columns(schema: Schema, limit: int = 8) -> list[Field]:
    """The table's columns: top-level and grouped answers, not repeats, metadata or notes."""
    skip = schema.repeat_paths
    picked = []
    for candidate in schema.fields:
        parts = candidate.path.strip("/").split("/")
        if (
            candidate.type in ("structure", "repeat")
            or parts[0] == "meta"
            or any(f"/{'/'.join(parts[:i])}" in skip for i in range(1, len(parts)))
        ):
            continue
        if not candidate.labels or candidate.type == "binary":
            continue
        picked.append(candidate)
    return picked[:limit]


def value_at(values: dict[str, Any], path: str) -> Any:
    """The answer at a schema path outside repeats (for the table's cells)."""
    return answer_at(values, path.strip("/").split("/"))


def show(schema_field: Field, raw: Any) -> str:
    """An answer as people read it: choice labels instead of codes."""
    if raw in (None, ""):
        return ""
    if isinstance(raw, (dict, list)):
        return "…"
    if schema_field.choices:
        by_value = {c.value: i18n.label(c.labels, c.value) for c in schema_field.choices}
        if schema_field.type == "select":
            return ", ".join(by_value.get(v, v) for v in str(raw).split())
        return by_value.get(str(raw), str(raw))
    return str(raw)


def _form_context(db: Any, project_id: int, xml_form_id: str) -> tuple[Any, Any, Schema]:
    form = form_store.get_form(db, project_id, xml_form_id)
    version = form_store.current_version(db, form)
    return form, version, form_store.schema_of(version)


@get(FORM_PATH, sync_to_thread=True, guards=[requires(SUBMIT)])
def submission_table(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    caller: Caller,
    cursor: Annotated[str | None, QueryParameter(name="after")] = None,
    sort: FromQuery[str] = "newest",
) -> Template:
    roles = require_project(db, caller, project_id, SUBMIT)
    form, version, schema = _form_context(db, project_id, xml_form_id)
    filters = _filters(request, caller, roles)
    page = browse.page_submissions(
        db, form, filters, sort=sort, cursor=cursor, schema=schema, count=cursor is None
    )
    partial = request.headers.get("hx-request") == "true" and cursor is not None
    return render(
        "_rows.html" if partial else "submissions.html",
        request,
        caller=caller,
        project=projects.get_project(db, project_id),
        form=form,
        version=version,
        schema=schema,
        columns=columns(schema),
        page=page,
        filters=filters,
        sort=sort,
        roles=roles,
        value_at=value_at,
        show=show,
        opd_field=browse.opd_field(schema, SIPERA.opd_name),
        can_review=bool(roles & (REVIEW | {"admin"})),
        states=browse.FILTER_STATES,
        query=urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "after"]),
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
    back = request.headers.get("referer") or f"/p/{project_id}/f/{quote(xml_form_id)}"
    return Redirect(_safe_next(_path_and_query(back)), status_code=303)


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
    settings: Config,
    caller: Caller,
) -> Template:
    roles = require_project(db, caller, project_id, SUBMIT)
    only = None if sees_all_submissions(roles) else caller.actor_id
    form, _, _ = _form_context(db, project_id, xml_form_id)
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
    can_review = bool(roles & (REVIEW | {"admin"}))
    return render(
        "submission.html",
        request,
        caller=caller,
        project=projects.get_project(db, project_id),
        form=form,
        schema=schema,
        view=view,
        answers=answers(schema, view.current.values),
        photos=[
            a
            for a in view.attachments
            if (a.content_type or "").startswith("image/") and a.blob_sha256
        ],
        files=[a for a in view.attachments if not (a.content_type or "").startswith("image/")],
        history=history,
        diffs=diffs,
        can_review=can_review,
        comments=submissions.list_comments(db, project_id, xml_form_id, instance_id)
        if can_review
        else [],
        audits=submissions.list_audits(db, project_id, xml_form_id, instance_id)
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
        f"/p/{project_id}/f/{quote(xml_form_id)}/s/{quote(instance_id)}", status_code=303
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
        f"/p/{project_id}/f/{quote(xml_form_id)}/s/{quote(instance_id)}#comments", status_code=303
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
) -> Response[bytes]:
    """A photo's thumbnail (EXIF orientation applied), made once and kept in the blob store.
    The URL carries the photo's digest (?v=), so browsers may keep it for a year."""
    if size not in thumbs.SIZES:
        raise NotFound(message=i18n.gettext("No such thumbnail size."))
    roles = require_project(db, caller, project_id, SUBMIT)
    only = None if sees_all_submissions(roles) else caller.actor_id
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


# ---- evidence board ------------------------------------------------------------------------

FLAG_NAMES = photos.FLAGS
BOARD_PAGE = 30  # submissions a page (about 90 photos: the page stays light on a phone)


@dataclass
class Tile:
    photo: photos.PhotoRow
    row: browse.Row
    flags: set[str]
    question: str
    indicator: str | None


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


@get(f"{FORM_PATH}/board", sync_to_thread=True, guards=[requires(SUBMIT)])
def board(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    blobs: Blobs,
    caller: Caller,
    cursor: Annotated[str | None, QueryParameter(name="after")] = None,
    group: FromQuery[str] = "submission",
    question: FromQuery[str | None] = None,
    flag: FromQuery[str | None] = None,
    indicator: FromQuery[str | None] = None,
) -> Template:
    roles = require_project(db, caller, project_id, SUBMIT)
    form, version, schema = _form_context(db, project_id, xml_form_id)
    filters = _filters(request, caller, roles)
    page = browse.page_submissions(
        db, form, filters, cursor=cursor, limit=BOARD_PAGE, schema=schema, count=False
    )
    rows = {row.submission.id: row for row in page.rows}
    shown = photos.list_form_photos(
        db, form.id, submission_ids=list(rows), visit_date_names=SIPERA.visit_date_names
    )
    facts = photos.ensure_analyzed(db, blobs, [p.sha256 for p in shown])
    flags = photos.page_flags(db, form.id, shown, facts)
    questions = {f.path: i18n.label(f.labels, f.name) for f in schema.fields if f.is_binary}
    tiles = []
    for photo in shown:
        row = rows[photo.submission_id]
        tile = Tile(
            photo,
            row,
            flags.get(photo.key, set()),
            questions.get(photo.field or "", photo.name),
            row_answer(row.version.values, photo.name, SIPERA.indicator_name),
        )
        if question and photo.field != question:
            continue
        if flag and flag not in tile.flags:
            continue
        if indicator and tile.indicator != indicator:
            continue
        tiles.append(tile)
    groups: dict[str, list[Tile]] = {}
    for tile in tiles:
        title = (
            tile.question
            if group == "question"
            else (tile.row.version.instance_name or tile.row.submission.instance_id)
        )
        groups.setdefault(title, []).append(tile)
    indicator_field = next((f for f in schema.fields if f.name == SIPERA.indicator_name), None)
    return render(
        "board.html",
        request,
        caller=caller,
        project=projects.get_project(db, project_id),
        form=form,
        version=version,
        groups=groups,
        page=page,
        filters=filters,
        group=group,
        question=question,
        flag=flag,
        indicator=indicator,
        questions=questions,
        flag_names=FLAG_NAMES,
        indicator_field=indicator_field,
        opd_field=browse.opd_field(schema, SIPERA.opd_name),
        states=browse.FILTER_STATES,
        roles=roles,
        can_review=bool(roles & (REVIEW | {"admin"})),
        query=urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "after"]),
    )


# ---- forms, app users, users (managers and admins) -----------------------------------------


@get("/p/{project_id:int}/forms", sync_to_thread=True, guards=[requires(MANAGE)])
def forms_admin(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB, caller: Caller
) -> Template:
    listed = form_store.list_forms(db, project_id, include_drafts=True)
    drafts = {}
    for form, _ in listed:
        try:
            drafts[form.id] = form_store.get_draft(db, project_id, form.xml_form_id)[1]
        except NotFound:
            pass
    return render(
        "forms_admin.html",
        request,
        caller=caller,
        project=projects.get_project(db, project_id),
        forms=listed,
        drafts=drafts,
    )


@post(
    "/p/{project_id:int}/forms/upload",
    guards=[requires(MANAGE)],
    request_max_body_size=20 * 1024 * 1024,
)
async def upload_form(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB, blobs: Blobs, caller: Caller
) -> Template | Redirect:
    import anyio

    form_data = await request.form()
    upload = form_data.get("file")
    if upload is None or not hasattr(upload, "read"):
        raise InvalidInput(i18n.gettext("Choose an XLSForm file to upload."))
    data = await upload.read()
    name = upload.filename or "form.xlsx"

    def store() -> Any:
        if name.lower().endswith(".xml"):
            return form_store.publish_xform(
                db, blobs, project_id, data, publish=False, actor_id=caller.actor_id
            )
        return form_store.publish_xlsform(
            db, blobs, project_id, data, name, publish=False, actor_id=caller.actor_id
        )

    try:
        result = await anyio.to_thread.run_sync(store)
    except (FormsError, StorageError) as error:
        listed = await anyio.to_thread.run_sync(
            lambda: form_store.list_forms(db, project_id, include_drafts=True)
        )
        project = await anyio.to_thread.run_sync(projects.get_project, db, project_id)
        return render(
            "forms_admin.html",
            request,
            status_code=400,
            caller=caller,
            project=project,
            forms=listed,
            drafts={},
            upload_error=str(error),
            upload_name=name,
        )
    return Redirect(
        f"/p/{project_id}/forms?draft={quote(result.form.xml_form_id)}", status_code=303
    )


@dataclass
class PublishForm:
    version: str = ""


@post(
    "/p/{project_id:int}/forms/{xml_form_id:str}/publish",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(MANAGE)],
)
def publish_form(
    project_id: ProjectId,
    xml_form_id: PathText,
    data: Annotated[PublishForm, FormBody],
    db: DB,
    caller: Caller,
) -> Redirect:
    form_store.publish_draft(
        db, project_id, xml_form_id, data.version.strip() or None, caller.actor_id
    )
    return Redirect(f"/p/{project_id}/forms", status_code=303)


@post(
    "/p/{project_id:int}/forms/{xml_form_id:str}/discard",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(MANAGE)],
)
def discard_draft(project_id: ProjectId, xml_form_id: PathText, db: DB, caller: Caller) -> Redirect:
    form_store.delete_draft(db, project_id, xml_form_id, caller.actor_id)
    return Redirect(f"/p/{project_id}/forms", status_code=303)


@dataclass
class StateForm:
    state: str


@post(
    "/p/{project_id:int}/forms/{xml_form_id:str}/state",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(MANAGE)],
)
def form_state(
    project_id: ProjectId,
    xml_form_id: PathText,
    data: Annotated[StateForm, FormBody],
    db: DB,
    caller: Caller,
) -> Redirect:
    form_store.set_state(db, project_id, xml_form_id, data.state, caller.actor_id)
    return Redirect(f"/p/{project_id}/forms", status_code=303)


@get("/p/{project_id:int}/app-users", sync_to_thread=True, guards=[requires(MANAGE)])
def app_users_page(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    db: DB,
    box: Box,
    settings: Config,
    caller: Caller,
) -> Template:
    rows = app_users.list_app_users(db, box, project_id)
    links = {
        row.actor.id: (
            collect_url(settings.public_url, row.token, project_id),
            web_form_url(settings.public_url, row.token),
        )
        for row in rows
        if row.token and row.app_user.revoked_at is None
    }
    return render(
        "app_users.html",
        request,
        caller=caller,
        project=projects.get_project(db, project_id),
        rows=rows,
        links=links,
    )


@dataclass
class NameForm:
    display_name: str


@post(
    "/p/{project_id:int}/app-users", sync_to_thread=True, status_code=303, guards=[requires(MANAGE)]
)
def create_app_user(
    project_id: ProjectId, data: Annotated[NameForm, FormBody], db: DB, box: Box, caller: Caller
) -> Redirect:
    app_users.create_app_user(db, box, project_id, data.display_name, actor_id=caller.actor_id)
    return Redirect(f"/p/{project_id}/app-users", status_code=303)


@post(
    "/p/{project_id:int}/app-users/{actor_id:int}/revoke",
    sync_to_thread=True,
    status_code=303,
    guards=[requires(MANAGE)],
)
def revoke_app_user(
    project_id: ProjectId, actor_id: Annotated[int, PathParameter()], db: DB, caller: Caller
) -> Redirect:
    app_users.revoke_app_user_by_actor(db, project_id, actor_id, actor_id=caller.actor_id)
    return Redirect(f"/p/{project_id}/app-users", status_code=303)


@get("/users", sync_to_thread=True, guards=[requires(admin=True)])
def users_page(request: Request[Any, Any, Any], db: DB, caller: Caller) -> Template:
    return render(
        "users.html",
        request,
        caller=caller,
        users=user_store.list_users(db),
        projects=projects.list_projects(db),
        assignments={
            p.id: role_store.list_assignments(db, p.id) for p in projects.list_projects(db)
        },
        roles=role_store.ROLES,
    )


@dataclass
class NewUser:
    email: str
    password: str
    display_name: str = ""


@post("/users", sync_to_thread=True, status_code=303, guards=[requires(admin=True)])
def create_user(data: Annotated[NewUser, FormBody], db: DB, caller: Caller) -> Redirect:
    user_store.create_user(
        db,
        data.email,
        data.password,
        display_name=data.display_name or None,
        actor_id=caller.actor_id,
    )
    return Redirect("/users", status_code=303)


@dataclass
class RoleForm:
    project_id: int
    role: str
    actor_id: int
    action: str = "grant"


@post("/users/roles", sync_to_thread=True, status_code=303, guards=[requires(admin=True)])
def change_role(data: Annotated[RoleForm, FormBody], db: DB, caller: Caller) -> Redirect:
    if data.action == "revoke":
        role_store.unassign_role(
            db, data.project_id, data.role, data.actor_id, actor_id=caller.actor_id
        )
    else:
        role_store.assign_role(
            db, data.project_id, data.role, data.actor_id, actor_id=caller.actor_id
        )
    return Redirect("/users", status_code=303)


HANDLERS = [
    login_page,
    login,
    logout,
    choose_language,
    home,
    project_home,
    submission_table,
    bulk_review,
    submission_page,
    thumbnail,
    board,
    review_one,
    comment,
    forms_admin,
    upload_form,
    publish_form,
    discard_draft,
    form_state,
    app_users_page,
    create_app_user,
    revoke_app_user,
    users_page,
    create_user,
    change_role,
]
