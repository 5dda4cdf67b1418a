"""The reads behind the supervisor's pages: form statistics, OPD coverage, filtered pages.

Pages use keyset paging (the last row's sort key and id), never OFFSET, so page 500 costs what
page 1 costs. Filters on answers use the JSON `values` column through SQLAlchemy's JSON paths,
which both SQLite and PostgreSQL index the same way. The date range is on the form's date
answer (`date_field`: the visit date) when it has one, else on the local day the submission
arrived; the free text is searched in `search_text` (storage.search).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, func, select

from forms.clock import Clock
from forms.instance import value_at
from forms.instruments import SIPERA, Instruments, VisitForm
from forms.tabular import label_in
from forms.tokens import InvalidToken, decode_token, encode_token
from forms.xform import Field, Schema

from . import search
from .db import Database
from .entity_links import LIST_NAME as INNOVATIONS
from .forms import schema_of
from .models import (
    Actor,
    Dataset,
    Entity,
    EntityLink,
    Form,
    FormVersion,
    Submission,
    SubmissionVersion,
    UTCDateTime,
    aware,
)
from .submissions import RECEIVED, REVIEW_STATES

#: The states the pages and exports filter on: RECEIVED (not reviewed), then the review states
#: (the one list: submissions.REVIEW_STATES).
FILTER_STATES = (RECEIVED, *REVIEW_STATES)
SORTS = ("newest", "oldest")
MAX_PAGE = 200


@dataclass
class FormStats:
    form: Form
    version: FormVersion
    total: int = 0
    last_at: datetime | None = None
    by_state: dict[str, int] = field(default_factory=dict)


def form_stats(db: Database, project_id: int) -> list[FormStats]:
    with db.read() as tx:
        rows = tx.exec(
            select(Form, FormVersion)
            .join(FormVersion, FormVersion.form_id == Form.id)
            .where(Form.project_id == project_id, Form.deleted_at.is_(None), FormVersion.is_current)
            .order_by(Form.xml_form_id)
        ).all()
        stats = {form.id: FormStats(form, version) for form, version in rows}
        counts = tx.exec(
            select(
                Submission.form_id,
                Submission.review_state,
                func.count(),
                func.max(Submission.created_at),
            )
            .where(Submission.form_id.in_(list(stats)), Submission.deleted_at.is_(None))
            .group_by(Submission.form_id, Submission.review_state)
        ).all()
    for form_id, state, count, last in counts:
        entry = stats[form_id]
        entry.total += count
        entry.by_state[state or RECEIVED] = count
        if last is not None and (entry.last_at is None or aware(last) > entry.last_at):
            entry.last_at = aware(last)
    return list(stats.values())


@dataclass
class OpdCoverage:
    opd: str
    label: str
    visits: int = 0
    last_visit: str | None = None
    innovations: int = 0
    follow_up: str | None = None
    overdue: bool = False


def opd_coverage(
    db: Database,
    project_id: int,
    lang_label: Any,
    today: date,
    *,
    visit: VisitForm = SIPERA.visit,
    other: str = SIPERA.opd_other,
) -> list[OpdCoverage]:
    """For the visit form (`visit`: the shipped one's names): each OPD's visits, last visit,
    innovations and follow-up; answers of the OPD choice `other` and unanswered ones together.
    Innovations: each registered innovation the OPD's visits are linked to, once; plus the
    rows of visits linked to none (typed names from before entities, until linked).

    Aggregated in SQL over the few JSON answers it needs, so the page does not decode every
    visit's answers (10,000 visits: ~0.5 s in Python, a few tens of ms in the database).
    """
    with db.read() as tx:
        form = tx.exec(
            select(Form).where(
                Form.project_id == project_id,
                Form.xml_form_id == visit.form_id,
                Form.deleted_at.is_(None),
            )
        ).first()
        if form is None:
            return []
        current = tx.exec(
            select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.is_current)
        ).first()
        values = SubmissionVersion.values
        opd = values[visit.opd].as_string()
        visited = values[visit.date].as_string()
        follow_up = values[visit.follow_up].as_string()
        # Links to innovations only: a visit also links the officers it chose (`petugas`).
        innovations = (
            select(Entity.id)
            .join(Dataset, Dataset.id == Entity.dataset_id)
            .where(Dataset.project_id == project_id, Dataset.name == INNOVATIONS)
        )
        about_innovation = EntityLink.entity_id.in_(innovations)
        linked = (
            select(EntityLink.id)
            .where(EntityLink.submission_id == Submission.id, about_innovation)
            .exists()
        )
        unlinked_rows = sa.case((linked, 0), else_=_row_count(tx, visit.innovations))

        def per_opd(*columns: Any) -> Any:
            return (
                select(opd, *columns)
                .join(Submission, Submission.id == SubmissionVersion.submission_id)
                .where(
                    Submission.form_id == form.id,
                    Submission.deleted_at.is_(None),
                    SubmissionVersion.is_current,
                )
                .group_by(opd)
            )

        rows = tx.exec(
            per_opd(func.count(), func.max(visited), func.sum(unlinked_rows), func.max(follow_up))
        ).all()
        # Innovations a visit is linked to (chosen, registered on the spot, or matched from a
        # typed name) are counted once per OPD however many visits discussed them.
        distinct = dict(
            tx.exec(
                per_opd(func.count(sa.distinct(EntityLink.entity_id)))
                .join(EntityLink, EntityLink.submission_id == Submission.id)
                .where(about_innovation)
            ).all()
        )
    schema = schema_of(current) if current else None
    opd_field = schema.field("/" + "/".join(visit.opd)) if schema else None
    labels = {
        c.value: lang_label(c.labels, c.value) for c in (opd_field.choices if opd_field else [])
    }
    coverage: dict[str, OpdCoverage] = {
        value: OpdCoverage(value, text) for value, text in labels.items() if value != other
    }
    for value, visits, last_visit, unlinked, planned in rows:
        key = value or other
        entry = coverage.setdefault(key, OpdCoverage(key, labels.get(key, key)))
        entry.visits += visits
        entry.innovations += int(unlinked or 0) + int(distinct.get(value) or 0)
        if last_visit and (entry.last_visit is None or last_visit > entry.last_visit):
            entry.last_visit = last_visit
        if planned and (entry.follow_up is None or planned > entry.follow_up):
            entry.follow_up = planned
    for entry in coverage.values():
        # Overdue: the planned follow-up date has passed and no visit came on or after it.
        entry.overdue = bool(
            entry.follow_up
            and entry.follow_up < today.isoformat()
            and (entry.last_visit or "") < entry.follow_up
        )
    return sorted(coverage.values(), key=lambda e: (e.last_visit is not None, e.last_visit or ""))


def _row_count(tx: Session, path: tuple[str, ...]) -> Any:
    """How many rows a repeat at `path` has in a version's answers: a list, or one object."""
    if tx.get_bind().dialect.name == "postgresql":
        return sa.text(
            'CASE json_typeof(submission_version."values" #> :path) '
            "WHEN 'array' THEN json_array_length(submission_version.\"values\" #> :path) "
            "WHEN 'object' THEN 1 ELSE 0 END"
        ).bindparams(sa.bindparam("path", list(path), type_=postgresql.ARRAY(sa.Text)))
    where = "$" + "".join(f'."{part}"' for part in path)
    return sa.text(
        'CASE json_type(submission_version."values", :path) '
        "WHEN 'array' THEN json_array_length(submission_version.\"values\", :path) "
        "WHEN 'object' THEN 1 ELSE 0 END"
    ).bindparams(path=where)


@dataclass(frozen=True)
class Filters:
    """`since`/`until`: whole days, both included, of the date answer at `date_path` (a date
    question outside repeats, see `date_field`) or, without one, of the day the submission
    arrived in `clock`'s zone. `text`: searched in the answers (storage.search)."""

    since: date | None = None
    until: date | None = None
    date_path: tuple[str, ...] | None = None
    clock: Clock = field(default_factory=Clock.named)
    state: str | None = None
    submitter_id: int | None = None
    opd: str | None = None
    text: str | None = None
    only_actor: int | None = None  # data collectors (formfill) see their own submissions only


@dataclass
class Row:
    submission: Submission
    version: SubmissionVersion
    submitter: str | None


@dataclass
class Page:
    rows: list[Row]
    next_cursor: str | None
    total: int


def page_submissions(
    db: Database,
    form: Form,
    filters: Filters,
    *,
    sort: str = "newest",
    cursor: str | None = None,
    limit: int = 50,
    schema: Schema | None = None,
    count: bool = True,
) -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    newest = sort != "oldest"
    query = (
        select(Submission, SubmissionVersion, Actor.display_name)
        .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
        .join(Actor, Actor.id == Submission.submitter_id, isouter=True)
        .where(
            Submission.form_id == form.id,
            SubmissionVersion.is_current,
            Submission.deleted_at.is_(None),
        )
    )
    query = _filtered(query, filters, schema)
    with db.read() as tx:
        total = _count(tx, form, filters, schema) if count else -1
        if cursor is not None:  # `?after=` (empty) is not a cursor either
            at, last_id = _decode(cursor)
            key = sa.tuple_(Submission.created_at, Submission.id)
            bound = sa.tuple_(sa.literal(at, UTCDateTime()), sa.literal(last_id))
            query = query.where(key < bound if newest else key > bound)
        order = (
            (Submission.created_at.desc(), Submission.id.desc())
            if newest
            else (Submission.created_at.asc(), Submission.id.asc())
        )
        found = tx.exec(query.order_by(*order).limit(limit + 1)).all()
    rows = [Row(s, v, name) for s, v, name in found[:limit]]
    next_cursor = _encode(rows[-1].submission) if len(found) > limit else None
    return Page(rows, next_cursor, total)


def recent_values(db: Database, form: Form, limit: int = 50) -> list[dict[str, Any]]:
    """The answers of the form's latest submissions (which questions people fill in)."""
    with db.read() as tx:
        return list(
            tx.exec(
                select(SubmissionVersion.values)
                .join(Submission, Submission.id == SubmissionVersion.submission_id)
                .where(
                    Submission.form_id == form.id,
                    Submission.deleted_at.is_(None),
                    SubmissionVersion.is_current,
                )
                .order_by(Submission.created_at.desc(), Submission.id.desc())
                .limit(limit)
            ).all()
        )


def submitters(db: Database, form: Form) -> list[tuple[int, str]]:
    """Who submitted to the form (app users and web users): (actor id, display name), by name;
    a name two of them share is told apart by the id."""
    with db.read() as tx:
        found = tx.exec(
            select(Actor.id, Actor.display_name)
            .where(
                Actor.id.in_(
                    select(Submission.submitter_id).where(
                        Submission.form_id == form.id,
                        Submission.deleted_at.is_(None),
                        Submission.submitter_id.is_not(None),
                    )
                )
            )
            .order_by(Actor.display_name, Actor.id)
        ).all()
    names = [name for _, name in found]
    return [
        (actor_id, name if names.count(name) == 1 else f"{name} (#{actor_id})")
        for actor_id, name in found
    ]


def opd_path(schema: Schema | None, name: str = SIPERA.opd_name) -> tuple[str, ...] | None:
    """Where a form keeps its OPD answer: a field called `name`, at the top or in a group."""
    if schema is None:
        return None
    for candidate in schema.fields:
        parts = candidate.path.strip("/").split("/")
        if parts[-1] == name and not any(p in schema.repeat_paths for p in _prefixes(parts)):
            return tuple(parts)
    return None


@dataclass(frozen=True)
class OpdNames:
    """A form's OPD answers by name (`opd_names`): the OPD choice's label, and for the "another
    OPD" choice the name typed beside it."""

    path: tuple[str, ...]
    labels: dict[str, str]
    typed_at: tuple[str, ...]
    other: str

    def code(self, values: Any) -> str:
        value = value_at(values, self.path)
        return value if isinstance(value, str) else ""

    def name(self, values: Any) -> str:
        """The OPD's name ("" when unanswered; an answer the choices lack stays as it is)."""
        code = self.code(values)
        typed = value_at(values, self.typed_at) if code == self.other else None
        if isinstance(typed, str) and typed.strip():
            return typed.strip()
        return self.labels.get(code, code)

    def title(self, instance_name: str | None, values: Any) -> str | None:
        """A submission's instance name for people: one that starts with the OPD's code (the
        instruments before 2026120502 named a visit "dinkes 2026-10-06") starts with the OPD's
        name instead. Only what is shown changes; the stored name stays the phone's."""
        code = self.code(values)
        if not instance_name or not code or not instance_name.startswith(code):
            return instance_name
        rest = instance_name[len(code) :]
        if rest and not rest[0].isspace():
            return instance_name  # "dinkes2" is not "dinkes"
        return self.name(values) + rest


def opd_names(
    schema: Schema | None, lang: str = "id", instruments: Instruments = SIPERA
) -> OpdNames | None:
    """The form's OPD answers by name, labels in `lang`; None when it has no OPD question."""
    path = opd_path(schema, instruments.opd_name)
    found = opd_field(schema, instruments.opd_name)
    if path is None or found is None:
        return None
    return OpdNames(
        path,
        {c.value: label_in(c.labels, lang, c.value) for c in found.choices},
        (*path[:-1], instruments.opd_other_name),
        instruments.opd_other,
    )


def opd_field(schema: Schema | None, name: str = SIPERA.opd_name) -> Field | None:
    """The field `opd_path` finds, for its choices (the pages' OPD filter)."""
    path = opd_path(schema, name)
    return schema.field("/" + "/".join(path)) if schema is not None and path else None


def _prefixes(parts: list[str]) -> list[str]:
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def date_field(
    schema: Schema | None, names: tuple[str, ...] = SIPERA.visit_date_names
) -> Field | None:
    """The date question a form's pages filter on: one called like the visit date (`names`),
    else the form's first `date` question; outside repeats, with a label. None: the form has
    none (its pages filter on the day a submission arrived)."""
    if schema is None:
        return None
    dates = [
        f
        for f in schema.fields
        if f.type == "date"
        and f.labels
        and not any(p in schema.repeat_paths for p in _prefixes(f.path.strip("/").split("/")))
    ]
    named = [f for f in dates if f.name in names]
    return (named or dates or [None])[0]


def day_range(
    since: date | None,
    until: date | None,
    date_path: tuple[str, ...] | None = None,
    clock: Clock | None = None,
) -> list[Any]:
    """The conditions for whole days `since`..`until` (both included): on the date answer at
    `date_path` (ISO text: compared as text, the day after `until` excluded), or on the
    arrival time's local day (`clock.day_bounds`: [start, end) in its zone)."""
    clauses: list[Any] = []
    if date_path:
        day = SubmissionVersion.values[date_path].as_string()
        if since:
            clauses.append(day >= since.isoformat())
        if until:
            clauses.append(day < (until + timedelta(days=1)).isoformat())
        return clauses
    start, end = (clock or Clock.named()).day_bounds(since, until)
    if start is not None:
        clauses.append(Submission.created_at >= start)
    if end is not None:
        clauses.append(Submission.created_at < end)
    return clauses


def _filtered(query: Any, filters: Filters, schema: Schema | None) -> Any:
    for clause in day_range(filters.since, filters.until, filters.date_path, filters.clock):
        query = query.where(clause)
    if filters.state:
        query = query.where(
            Submission.review_state.is_(None)
            if filters.state == RECEIVED
            else Submission.review_state == filters.state
        )
    if filters.submitter_id:
        query = query.where(Submission.submitter_id == filters.submitter_id)
    if filters.only_actor is not None:
        query = query.where(Submission.submitter_id == filters.only_actor)
    path = opd_path(schema)
    if filters.opd and path:
        query = query.where(SubmissionVersion.values[path].as_string() == filters.opd)
    if filters.text:
        query = query.where(search.matches(SubmissionVersion.search_text, filters.text))
    return query


def _count(tx: Session, form: Form, filters: Filters, schema: Schema | None) -> int:
    query = (
        select(func.count())
        .select_from(Submission)
        .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
        .where(
            Submission.form_id == form.id,
            SubmissionVersion.is_current,
            Submission.deleted_at.is_(None),
        )
    )
    return tx.exec(_filtered(query, filters, schema)).one()


# A page cursor: the last row's (created_at, id), in a closed shape (see forms.tokens).
_Cursor = tuple[
    Annotated[datetime, msgspec.Meta(tz=True)], Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
]


def _encode(submission: Submission) -> str:
    return encode_token((aware(submission.created_at), submission.id))


def _decode(cursor: str) -> tuple[datetime, int]:
    """The cursor's (created_at in UTC, id); anything else (not ours, damaged, hostile) is
    InvalidInput: the pages' 400 error page, as for a filter they cannot use."""
    try:
        at, last_id = decode_token(cursor, _Cursor)
        return at.astimezone(UTC), last_id  # an offset past year 9999 overflows
    except (InvalidToken, OverflowError):
        from .errors import InvalidInput

        raise InvalidInput("The page cursor is not valid; start from the first page.") from None


def neighbors(
    db: Database, form: Form, submission: Submission, only_actor: int | None = None
) -> tuple[str | None, str | None]:
    """The instanceIDs of the previous (older) and next (newer) submissions of the form."""
    key = sa.tuple_(Submission.created_at, Submission.id)
    here = sa.tuple_(sa.literal(submission.created_at, UTCDateTime()), sa.literal(submission.id))
    base = select(Submission.instance_id).where(
        Submission.form_id == form.id, Submission.deleted_at.is_(None)
    )
    if only_actor is not None:
        base = base.where(Submission.submitter_id == only_actor)
    with db.read() as tx:
        older = tx.exec(
            base.where(key < here)
            .order_by(Submission.created_at.desc(), Submission.id.desc())
            .limit(1)
        ).first()
        newer = tx.exec(
            base.where(key > here)
            .order_by(Submission.created_at.asc(), Submission.id.asc())
            .limit(1)
        ).first()
    return older, newer
