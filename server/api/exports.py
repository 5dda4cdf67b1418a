"""/v1 exports: Central's CSV zip and CSV, plus XLSX, GeoJSON and a ZIP of the photos.

Managers and supervisors export (REVIEW, checked by the guard); officers never do. Every
refusal (a bad `$filter`, an unknown form or question) happens before the first byte; then
the body streams from `storage.exports.open_export`, the same code path `jebol export` uses.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from litestar import get
from litestar.response import Stream

from storage import exports
from storage.exports import ExportFilters, ExportOptions

from ..auth import REVIEW, UI_LINKED
from ..deps import DB, Blobs, Caller, Config, PathText, ProjectId, QueryParameter
from ..errors import UnexpectedValue
from ..files import content_disposition
from ..guards import requires

FORM = "/projects/{project_id:int}/forms/{xml_form_id:str}"
TAGS = ["Exports"]

Filter = Annotated[
    str | None,
    QueryParameter(
        name="$filter",
        required=False,
        description="A small OData subset: "
        "__system/submissionDate ge|gt|le|lt DATE, "
        "__system/reviewState eq 'approved' (or null), "
        "__system/submitterId eq N, joined by `and`",
    ),
]
ApprovedOnly = Annotated[
    bool, QueryParameter(name="approvedOnly", description="Only approved submissions")
]


@get(
    f"{FORM}/submissions.csv.zip",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    opt=UI_LINKED,
    summary="Central's CSV zip: the root table, one table per repeat, media/ (streamed)",
)
def export_csv_zip(
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    blobs: Blobs,
    settings: Config,
    caller: Caller,
    odata_filter: Filter = None,
    approved_only: ApprovedOnly = False,
    attachments: Annotated[bool, QueryParameter(name="attachments")] = True,
    group_paths: Annotated[bool, QueryParameter(name="groupPaths")] = True,
    split_select_multiples: Annotated[bool, QueryParameter(name="splitSelectMultiples")] = False,
    deleted_fields: Annotated[
        bool, QueryParameter(name="deletedFields", description="Accepted and ignored")
    ] = False,
) -> Stream:
    options = ExportOptions(
        "csv.zip",
        parse_filter(odata_filter, approved_only),
        attachments=attachments,
        group_paths=group_paths,
        split_select_multiples=split_select_multiples,
    )
    return _stream(db, blobs, settings, caller, project_id, xml_form_id, options)


@get(
    f"{FORM}/submissions.csv",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    opt=UI_LINKED,
    summary="The root table as one CSV (streamed)",
)
def export_csv(
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    blobs: Blobs,
    settings: Config,
    caller: Caller,
    odata_filter: Filter = None,
    approved_only: ApprovedOnly = False,
    group_paths: Annotated[bool, QueryParameter(name="groupPaths")] = True,
    split_select_multiples: Annotated[bool, QueryParameter(name="splitSelectMultiples")] = False,
) -> Stream:
    options = ExportOptions(
        "csv",
        parse_filter(odata_filter, approved_only),
        group_paths=group_paths,
        split_select_multiples=split_select_multiples,
    )
    return _stream(db, blobs, settings, caller, project_id, xml_form_id, options)


@get(
    f"{FORM}/submissions.xlsx",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    opt=UI_LINKED,
    summary="XLSX: one sheet per table, headers as labels or names, choices as labels or values",
)
def export_xlsx(
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    blobs: Blobs,
    settings: Config,
    caller: Caller,
    odata_filter: Filter = None,
    approved_only: ApprovedOnly = False,
    labels: Annotated[bool, QueryParameter(name="labels")] = False,
    choice_labels: Annotated[bool, QueryParameter(name="choiceLabels")] = False,
    lang: Annotated[
        str | None,
        QueryParameter(name="lang", max_length=32, description="Label language code (id, en)"),
    ] = None,
) -> Stream:
    options = ExportOptions(
        "xlsx",
        parse_filter(odata_filter, approved_only),
        labels=labels,
        choice_labels=choice_labels,
        lang=lang,
    )
    return _stream(db, blobs, settings, caller, project_id, xml_form_id, options)


@get(
    f"{FORM}/submissions.geojson",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    opt=UI_LINKED,
    summary="GeoJSON: a Point Feature per submission with a location",
)
def export_geojson(
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    blobs: Blobs,
    settings: Config,
    caller: Caller,
    odata_filter: Filter = None,
    approved_only: ApprovedOnly = False,
) -> Stream:
    options = ExportOptions("geojson", parse_filter(odata_filter, approved_only))
    return _stream(db, blobs, settings, caller, project_id, xml_form_id, options)


@get(
    f"{FORM}/media.zip",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    opt=UI_LINKED,
    summary="The photos as a ZIP named {OPD}/{date}_{instanceName}_{question}_{n}.{ext}",
)
def export_media(
    project_id: ProjectId,
    xml_form_id: PathText,
    db: DB,
    blobs: Blobs,
    settings: Config,
    caller: Caller,
    approved_only: ApprovedOnly = False,
    question: Annotated[str | None, QueryParameter(max_length=255)] = None,
    since: Annotated[date | None, QueryParameter(description="First day (submission date)")] = None,
    until: Annotated[date | None, QueryParameter(description="Last day, included")] = None,
    review_state: Annotated[
        str | None, QueryParameter(name="state", max_length=16, description="A review state")
    ] = None,
    opd: Annotated[str | None, QueryParameter(max_length=255)] = None,
) -> Stream:
    filters = ExportFilters.of_days(
        since, until, review_state=review_state, opd=opd, approved_only=approved_only
    )
    options = ExportOptions("media", filters, question=question)
    return _stream(db, blobs, settings, caller, project_id, xml_form_id, options)


def _stream(
    db: DB,
    blobs: Blobs,
    settings: Config,
    caller: Caller,
    project_id: int,
    xml_form_id: str,
    options: ExportOptions,
) -> Stream:
    export = exports.open_export(
        db,
        blobs,
        project_id,
        xml_form_id,
        options,
        tmp_dir=settings.tmp_dir,
        actor_id=caller.actor_id,
        split_rows=settings.export_split_rows,
    )
    return Stream(
        export.chunks,
        media_type=export.media_type,
        headers={
            "Content-Disposition": content_disposition(export.filename),
            "Cache-Control": "no-store",
        },
    )


# ---- $filter -----------------------------------------------------------------------------------

_CLAUSE = re.compile(
    r"""\s*(?P<open>\(\s*)?(?P<field>[\w/]+)\s+(?P<op>[a-z]+)\s+
                         (?P<value>'(?:[^']|'')*'|[^\s()']+)\s*(?P<close>\))?\s*""",
    re.X,
)
_AND = re.compile(r"and\b")
_BOUNDS = {
    "ge": ("since", timedelta(0)),
    "gt": ("since", timedelta(microseconds=1)),
    "lt": ("until", timedelta(0)),
    "le": ("until", timedelta(microseconds=1)),
}
SUPPORTED = (
    "__system/submissionDate ge|gt|le|lt 2026-01-01 (or a timestamp), "
    "__system/reviewState eq 'approved' (or null), __system/submitterId eq 5, "
    "joined by `and`"
)


def parse_filter(text: str | None, approved_only: bool = False) -> ExportFilters:
    """The small part of OData `$filter` that exports understand, as ExportFilters.
    Anything else is a 400 that says what is supported."""
    bounds: dict[str, datetime] = {}
    state: str | None = None
    submitter: int | None = None
    position, text = 0, (text or "").strip()
    while position < len(text):
        match = _CLAUSE.match(text, position)
        if match is None or bool(match.group("open")) != bool(match.group("close")):
            raise _bad_filter(text)
        field, op, value = match.group("field", "op", "value")
        if field == "__system/submissionDate" and op in _BOUNDS:
            side, shift = _BOUNDS[op]
            moment = _timestamp(value, text) + shift
            current = bounds.get(side)
            bounds[side] = (
                moment
                if current is None
                else (max(current, moment) if side == "since" else min(current, moment))
            )
        elif field == "__system/reviewState" and op == "eq":
            wanted = "received" if value == "null" else _string(value, text)
            if state is not None and state != wanted:
                raise UnexpectedValue("The $filter asks for two different review states.")
            state = wanted
        elif field == "__system/submitterId" and op == "eq" and _is_id(value):
            if submitter is not None and submitter != int(value):
                raise UnexpectedValue("The $filter asks for two different submitters.")
            submitter = int(value)
        else:
            raise _bad_filter(text)
        position = match.end()
        if position < len(text):
            joiner = _AND.match(text, position)
            if joiner is None:
                raise _bad_filter(text)
            position = joiner.end()
            if position >= len(text.rstrip()):
                raise _bad_filter(text)
    return ExportFilters(
        since=bounds.get("since"),
        until=bounds.get("until"),
        review_state=state,
        submitter_id=submitter,
        approved_only=approved_only,
    )


def _timestamp(value: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _bad_filter(text) from None
    try:  # an offset can carry a valid local time out of range in UTC
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise _bad_filter(text) from None


def _is_id(value: str) -> bool:
    """Digits that fit a database id (a 5,000-digit number is not one)."""
    return value.isascii() and value.isdigit() and len(value) <= 18


def _string(value: str, text: str) -> str:
    if len(value) < 2 or not (value.startswith("'") and value.endswith("'")):
        raise _bad_filter(text)
    return value[1:-1].replace("''", "'")


def _bad_filter(text: str) -> UnexpectedValue:
    return UnexpectedValue(
        f"The $filter {text!r} is not supported by exports; they understand {SUPPORTED}.",
    )


HANDLERS = [export_csv_zip, export_csv, export_xlsx, export_geojson, export_media]
