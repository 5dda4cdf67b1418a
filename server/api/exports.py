"""/v1 exports: Central's CSV zip and CSV, plus XLSX, GeoJSON and a ZIP of the photos.

Managers and supervisors export (REVIEW, checked by the guard); data collectors (formfill)
never do. `$filter` is OData's (the same parser and SQL as `.svc/Submissions`, as in Central).
Every refusal (a bad `$filter`, an unknown form or question) happens before the first byte;
then the body streams from `storage.exports.open_export`, the same code path `jebol export` uses.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import get
from litestar.response import Stream

from storage import browse, exports
from storage.exports import ExportFilters, ExportOptions

from ..auth import REVIEW, UI_LINKED
from ..deps import DB, Blobs, Caller, Config, PathText, ProjectId, QueryParameter
from ..files import content_disposition
from ..guards import requires

FORM = "/projects/{project_id:int}/forms/{xml_form_id:str}"
TAGS = ["Exports"]

Filter = Annotated[
    str | None,
    QueryParameter(
        name="$filter",
        required=False,
        description="OData $filter, as on .svc/Submissions: __id and the __system fields "
        "(submissionDate, updatedAt, deletedAt, submitterId, reviewState), "
        "eq ne gt ge lt le, and or not, parentheses, year() … second(), now()",
    ),
]
ApprovedOnly = Annotated[
    bool, QueryParameter(name="approvedOnly", description="Only approved submissions")
]
Excel = Annotated[
    bool,
    QueryParameter(
        name="excel",
        description="For Excel with Indonesian regional settings: `;` between fields and a "
        "UTF-8 byte-order mark (default: Central's CSV)",
    ),
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
    excel: Excel = False,
) -> Stream:
    options = ExportOptions(
        "csv.zip",
        _filters(odata_filter, approved_only),
        attachments=attachments,
        group_paths=group_paths,
        split_select_multiples=split_select_multiples,
        excel=excel,
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
    excel: Excel = False,
) -> Stream:
    options = ExportOptions(
        "csv",
        _filters(odata_filter, approved_only),
        group_paths=group_paths,
        split_select_multiples=split_select_multiples,
        excel=excel,
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
        _filters(odata_filter, approved_only),
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
    options = ExportOptions("geojson", _filters(odata_filter, approved_only))
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
    since: Annotated[
        date | None,
        QueryParameter(
            description="First day: of the visit date (the form's date question), "
            "or with dateby=received of the local day the submission arrived"
        ),
    ] = None,
    until: Annotated[date | None, QueryParameter(description="Last day, included")] = None,
    dateby: Annotated[
        str | None,
        QueryParameter(
            max_length=16,
            description="answer (default) or received: what "
            "since/until are days of (a form without a date question: received)",
        ),
    ] = None,
    review_state: Annotated[
        str | None, QueryParameter(name="state", max_length=16, description="A review state")
    ] = None,
    opd: Annotated[str | None, QueryParameter(max_length=255)] = None,
    submitter: Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1)] = None,
    text: Annotated[
        str | None, QueryParameter(name="q", max_length=255, description="Text in the answers")
    ] = None,
) -> Stream:
    """The same filters as the submissions page (its "Photos (zip, current filters)" link)."""
    by_answer = dateby != "received" and browse.date_field(
        exports.get_source(db, project_id, xml_form_id).schema
    )
    start, end = (None, None) if by_answer else settings.clock.day_bounds(since, until)
    filters = ExportFilters(
        since=start,
        until=end,
        first_day=since if by_answer else None,
        last_day=until if by_answer else None,
        review_state=review_state or None,
        opd=opd or None,
        submitter_id=submitter,
        text=text or None,
        approved_only=approved_only,
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
        zone=settings.clock.zone,
    )
    return Stream(
        export.chunks,
        media_type=export.media_type,
        headers={
            "Content-Disposition": content_disposition(export.filename),
            "Cache-Control": "no-store",
        },
    )


def _filters(odata_filter: str | None, approved_only: bool) -> ExportFilters:
    """The `$filter` goes to storage as text: it is parsed there by forms.odata_filter, the
    parser OData uses (a bad one is FilterInvalid, 400.18, before the first byte)."""
    return ExportFilters(odata_filter=odata_filter, approved_only=approved_only)


HANDLERS = [export_csv_zip, export_csv, export_xlsx, export_geojson, export_media]
