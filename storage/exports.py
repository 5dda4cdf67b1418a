"""Exports: submissions read in keyset batches, written by `forms.exports` as they come.

`open_export` is the one code path behind the HTTP routes and `jebol export`: it resolves the
form and checks the options (so every 4xx happens before the first byte), records the export
in the audit log, and returns the file name, type and a lazy iterator of `bytes` chunks.

`iter_rows` reads the current versions of a form's submissions in batches (keyset on
submission id, ascending), each batch in its own short read transaction, so an export never
holds one huge result or one long transaction, and memory stays flat whatever the count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa

from forms import exports as writers
from forms.instruments import SIPERA
from forms.odata_filter import Expr, parse_filter
from forms.tabular import Layout
from forms.xform import Field, Schema

from . import audit, search
from .blobs import BlobStore, blob_key
from .browse import FILTER_STATES, date_field, day_range, opd_names, opd_path
from .db import Database
from .errors import InvalidInput, NotFound
from .forms import locate_form, schema_of
from .models import (
    Form,
    FormVersion,
    Submission,
    SubmissionAttachment,
    SubmissionVersion,
)
from .odata import BatchReader, SubmissionRow, filter_where
from .submissions import RECEIVED

FORMATS = ("csv.zip", "csv", "xlsx", "geojson", "media")
ZIP_TYPE = "application/zip"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BATCH = 1000


@dataclass(frozen=True)
class ExportFilters:
    """Which submissions go out. Times are UTC; `until` is exclusive. `odata_filter`: an OData
    `$filter` (forms.odata_filter's grammar, turned into SQL by `storage.odata.filter_where`,
    as on `.svc/Submissions`), kept as its text."""

    odata_filter: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    review_state: str | None = None  # one of browse.FILTER_STATES; "received" = not reviewed
    approved_only: bool = False
    submitter_id: int | None = None
    opd: str | None = None
    with_files: bool = False  # only submissions with a stored attachment (the media export)
    #: Whole days, both included, of the form's date answer (`browse.date_field`: the visit
    #: date), as the submissions page filters; nothing matches in a form without one.
    first_day: date | None = None
    last_day: date | None = None
    text: str | None = None  # searched in the answers, as on the submissions page

    @classmethod
    def of_days(
        cls, since: date | None = None, until: date | None = None, **others: Any
    ) -> ExportFilters:
        """Whole days, both inclusive (the UI's and the CLI's date range)."""
        return cls(
            since=_midnight(since) if since else None,
            until=_midnight(until) + timedelta(days=1) if until else None,
            **others,
        )


@dataclass(frozen=True)
class ExportOptions:
    format: str  # one of FORMATS
    filters: ExportFilters = field(default_factory=ExportFilters)
    attachments: bool = True  # csv.zip: the media/ folder
    group_paths: bool = True
    split_select_multiples: bool = False
    labels: bool = False  # xlsx: headers as labels
    choice_labels: bool = False  # xlsx: answers as choice labels
    lang: str | None = None  # xlsx labels: a language code (`id`, `en`)
    question: str | None = None  # media: one photo question (name or path)
    excel: bool = False  # csv, csv.zip: `;` and a BOM, for Excel with Indonesian settings


@dataclass
class Export:
    filename: str
    media_type: str
    chunks: Iterator[bytes]


@dataclass(frozen=True)
class ExportSource:
    form: Form
    version: FormVersion  # the current published version: its fields are the columns
    schema: Schema


def get_source(db: Database, project_id: int, xml_form_id: str) -> ExportSource:
    with db.read() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        version = (
            tx.execute(
                sa.select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.is_current)
            )
            .scalars()
            .first()
        )
    if version is None:
        raise NotFound("published form version")
    return ExportSource(form, version, schema_of(version))


def open_export(
    db: Database,
    blobs: BlobStore,
    project_id: int,
    xml_form_id: str,
    options: ExportOptions,
    *,
    tmp_dir: str | None = None,
    actor_id: int | None = None,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
    zone: tzinfo = UTC,
) -> Export:
    """Check everything, then hand back the export as a lazy stream of chunks. `zone`: the
    time zone of the exports people open (XLSX date-times, the media ZIP's days); CSV and
    GeoJSON keep Central's ISO UTC."""
    if options.format not in FORMATS:
        raise InvalidInput(
            f"Unknown export format {options.format!r}; one of {', '.join(FORMATS)}."
        )
    _check(options.filters)  # before anything is read: a bad $filter is a 400 for any form
    source = get_source(db, project_id, xml_form_id)
    schema = source.schema
    questions: list[Field] | None = None
    if options.format == "media" and options.question:
        found = writers.find_photo_field(schema, options.question)
        if found is None:
            names = ", ".join(f.name for f in writers.photo_fields(schema)) or "none"
            raise InvalidInput(
                f"The form has no photo question {options.question!r}; its photo "
                f"questions: {names}."
            )
        questions = [found]
    with db.transaction() as tx:
        audit.record(
            tx,
            actor_id,
            "form.submission.export",
            "form",
            source.form.id,
            {"format": options.format, "approvedOnly": options.filters.approved_only},
        )

    rows = iter_rows(
        db,
        source.form,
        filters_for(options),
        batch=batch,
        schema=schema,
        files=needs_files(options),
    )
    if progress is not None:
        rows = _counted(rows, progress)
    form_id = xml_form_id
    open_blob = blob_opener(blobs)
    kind = options.format
    if kind == "media":
        return Export(
            f"{form_id}-media.zip",
            ZIP_TYPE,
            writers.write_media_zip(
                schema,
                rows,
                open_blob=open_blob,
                questions=questions,
                opd_of=names.name if (names := opd_names(schema)) else None,
                no_opd_folder=SIPERA.no_opd_folder,
                zone=zone,
            ),
        )
    layout = layout_for(schema, options)
    if kind == "csv":
        return Export(
            f"{form_id}.csv",
            "text/csv; charset=utf-8",
            writers.write_csv(layout, rows, excel=options.excel),
        )
    if kind == "geojson":
        return Export(
            f"{form_id}.geojson", "application/geo+json", writers.write_geojson(layout, rows)
        )
    if kind == "xlsx":
        return Export(
            f"{form_id}.xlsx",
            XLSX_TYPE,
            writers.write_xlsx(
                layout,
                rows,
                labels=options.labels,
                choice_labels=options.choice_labels,
                lang=options.lang,
                tmp_dir=tmp_dir,
                zone=zone,
            ),
        )
    # csv.zip: Central names it .zip with media and .csv.zip without.
    return Export(
        f"{form_id}.zip" if options.attachments else f"{form_id}.csv.zip",
        ZIP_TYPE,
        writers.write_csv_zip(
            layout,
            rows,
            tmp_dir=tmp_dir,
            open_blob=open_blob if options.attachments else None,
            excel=options.excel,
        ),
    )


def layout_for(schema: Schema, options: ExportOptions) -> Layout:
    """The tables an export writes."""
    kind = options.format
    return Layout(
        schema,
        group_paths=options.group_paths,
        split_select_multiples=options.split_select_multiples and kind in ("csv.zip", "csv"),
        root_only=kind in ("csv", "geojson"),
    )


def needs_files(options: ExportOptions) -> bool:
    """Whether the writer needs each attachment (media, the CSV zip's media/ folder), not just
    how many there are."""
    return options.format == "media" or (options.format == "csv.zip" and options.attachments)


def filters_for(options: ExportOptions) -> ExportFilters:
    """The filters an export reads with (a media export skips submissions without files)."""
    if options.format == "media":
        return replace(options.filters, with_files=True)
    return options.filters


def count_rows(
    db: Database, form: Form, filters: ExportFilters = ExportFilters(), schema: Schema | None = None
) -> int:
    """How many submissions `iter_rows` would give (for a progress bar)."""
    query = (
        sa.select(sa.func.count())
        .select_from(Submission)
        .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
    )
    with db.read() as tx:
        return tx.execute(_filtered(query, form, filters, schema, db.dialect)).scalar_one()


def iter_rows(
    db: Database,
    form: Form,
    filters: ExportFilters = ExportFilters(),
    *,
    batch: int = BATCH,
    schema: Schema | None = None,
    files: bool = True,
) -> Iterator[SubmissionRow]:
    """The current version of every matching submission, oldest id first, read `batch` at a
    time by `storage.odata.BatchReader`, each batch in its own short read transaction. The next
    batch is read by a helper thread while this one is handed out (at most two batches in
    memory), so the database's time overlaps the writer's. `files=False`: attachments are only
    counted (the database counts them), `SubmissionRow.attachments` stays empty."""
    reader = BatchReader(db, form.id, _where(filters, schema, db.dialect), batch=batch, files=files)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-read") as pool:
        pending = pool.submit(reader.read, 0)
        while pending is not None:
            found = pending.result()
            if not found:
                return
            pending = pool.submit(reader.read, found[-1].id) if len(found) == batch else None
            yield from found


def _filtered(
    query: Any, form: Form, filters: ExportFilters, schema: Schema | None, dialect: str
) -> Any:
    return query.where(
        Submission.form_id == form.id,
        SubmissionVersion.is_current,
        _where(filters, schema, dialect),
    )


def _where(filters: ExportFilters, schema: Schema | None, dialect: str) -> Any:
    """The filters as one condition on `submission` and its current `submission_version`."""
    clauses = [filter_where(_parsed(filters), dialect)]
    if filters.since is not None:
        clauses.append(Submission.created_at >= filters.since)
    if filters.until is not None:
        clauses.append(Submission.created_at < filters.until)
    if filters.review_state:
        clauses.append(
            Submission.review_state.is_(None)
            if filters.review_state == RECEIVED
            else Submission.review_state == filters.review_state
        )
    if filters.approved_only:
        clauses.append(Submission.review_state == "approved")
    if filters.submitter_id is not None:
        clauses.append(Submission.submitter_id == filters.submitter_id)
    if filters.with_files:
        clauses.append(
            sa.exists().where(
                SubmissionAttachment.submission_version_id == SubmissionVersion.id,
                SubmissionAttachment.blob_sha256.is_not(None),
            )
        )
    if filters.opd:
        path = opd_path(schema, SIPERA.opd_name)
        if path is None:
            return sa.false()
        clauses.append(SubmissionVersion.values[path].as_string() == filters.opd)
    if filters.first_day or filters.last_day:
        answer = date_field(schema)
        if answer is None:
            return sa.false()
        answer_path = tuple(answer.path.strip("/").split("/"))
        clauses += day_range(filters.first_day, filters.last_day, answer_path)
    if filters.text:
        clauses.append(search.matches(SubmissionVersion.search_text, filters.text))
    return sa.and_(*clauses)


def _parsed(filters: ExportFilters) -> Expr | None:
    """The `$filter` as a tree; FilterInvalid (400.18) says what is wrong with it."""
    text = filters.odata_filter
    return parse_filter(text) if text and text.strip() else None


def _check(filters: ExportFilters) -> None:
    _parsed(filters)
    if filters.review_state and filters.review_state not in FILTER_STATES:
        raise InvalidInput(
            f"Unknown review state {filters.review_state!r}; one of {', '.join(FILTER_STATES)}."
        )
    for moment in (filters.since, filters.until):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput("Export date filters need a time zone.")


def blob_opener(blobs: BlobStore) -> Callable[[str], Iterator[bytes]]:
    def open_blob(sha256: str) -> Iterator[bytes]:
        return blobs.iter_chunks(blob_key(sha256), writers.CHUNK)

    return open_blob


def _counted(
    rows: Iterator[SubmissionRow], progress: Callable[[int], None], every: int = 100
) -> Iterator[SubmissionRow]:
    done = 0
    for row in rows:
        yield row
        done += 1
        if done == every:
            progress(done)
            done = 0
    if done:
        progress(done)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
