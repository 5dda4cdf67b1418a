"""The reads behind OData: a form's schema, counts, and submissions in keyset batches.

Batches come newest first (`ORDER BY submission.id DESC`, Central's order) and each next
batch starts below the last id seen (`id < last`), so the thousandth page costs what the first
does; `$skip` alone uses OFFSET, as Central does, and only on the first batch. A `$filter` is
turned from its parsed tree (forms.odata_filter) into SQLAlchemy expressions on the submission
columns by `filter_where`, which exports use too: values travel as bound parameters, never as
SQL text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import func, select

from forms.odata import Record, System
from forms.odata_filter import And, Call, Compare, Expr, Field, Literal, Not, Or, names_in
from forms.xform import Schema

from .db import Database
from .errors import NotFound
from .forms import locate_form
from .models import (
    Actor,
    FormVersion,
    Submission,
    SubmissionAttachment,
    SubmissionVersion,
    UTCDateTime,
    utcnow,
)

BATCH = 250

_COLUMNS: dict[str, Any] = {
    "__id": Submission.instance_id,
    "__system/submissionDate": Submission.created_at,
    "__system/updatedAt": Submission.updated_at,
    "__system/deletedAt": Submission.deleted_at,
    "__system/submitterId": Submission.submitter_id,
    "__system/reviewState": Submission.review_state,
}
_LITERAL_TYPES: dict[str, Any] = {
    "datetime": UTCDateTime(),
    "int": sa.Integer(),
    "string": sa.String(),
    "number": sa.Float(),
    "bool": sa.Boolean(),
}


@dataclass(frozen=True)
class ODataForm:
    form_id: int
    xml_form_id: str
    schema: Schema  # of the current published version: every submission is read with it


@dataclass(frozen=True)
class Scope:
    """Which submissions of a form a request reads: a SQLAlchemy condition on `submission`."""

    where: Any


def get_form(db: Database, project_id: int, xml_form_id: str) -> ODataForm:
    """The form and the schema of its published version; NotFound when there is none."""
    with db.read() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        fields_json = tx.exec(
            select(FormVersion.fields_json).where(
                FormVersion.form_id == form.id, FormVersion.is_current
            )
        ).first()
    if fields_json is None:
        raise NotFound("published form version")
    return ODataForm(form.id, form.xml_form_id, Schema.from_json(fields_json))


def scope(
    db: Database, form: ODataForm, expr: Expr | None = None, instance_id: str | None = None
) -> Scope:
    """The form's current submissions matching `expr` (see `filter_where`)."""
    clauses = [Submission.form_id == form.form_id, filter_where(expr, db.dialect)]
    if instance_id is not None:
        clauses.append(Submission.instance_id == instance_id)
    return Scope(sa.and_(*clauses))


def filter_where(expr: Expr | None, dialect: str) -> Any:
    """A parsed `$filter` (forms.odata_filter) as a SQLAlchemy condition on `submission`: the
    one translation, used by OData and by exports. Deleted submissions are left out unless
    the filter names `__system/deletedAt` (as Central does); None keeps every other one.
    `dialect`: the database's (`Database.dialect`)."""
    clauses = []
    if expr is None or "__system/deletedAt" not in names_in(expr):
        clauses.append(Submission.deleted_at.is_(None))
    if expr is not None:
        clauses.append(_sql(expr, dialect == "postgresql"))
    return sa.and_(*clauses)


def count(db: Database, where: Scope) -> int:
    with db.read() as tx:
        return int(tx.exec(select(func.count()).select_from(Submission).where(where.where)).one())


def iter_batches(
    db: Database,
    where: Scope,
    *,
    through_id: int | None = None,
    offset: int = 0,
    limit: int | None = None,
    system: bool = True,
    batch: int = BATCH,
) -> Iterator[list[Record]]:
    """Submissions newest first, in lists of at most `batch`, each list read in its own short
    transaction. `through_id`: start at this submission (inclusive, a skiptoken's). `offset`
    skips that many first (`$skip`), `limit` stops after that many. `system`: also read what
    `__system` needs (submitter name, attachment counts, edits, first form version)."""
    last = through_id + 1 if through_id is not None else None
    remaining = limit
    while remaining is None or remaining > 0:
        size = batch if remaining is None else min(batch, remaining)
        query = _rows_query(where)
        if last is not None:
            query = query.where(*_before(last))
        elif offset:
            query = query.offset(offset)
        with db.read() as tx:
            rows = tx.exec(query.limit(size)).all()
            facts = _system_facts(tx, rows) if system and rows else None
        if not rows:
            return
        yield [_record(row, facts) for row in rows]
        if len(rows) < size:
            return
        last = rows[-1][0]
        if remaining is not None:
            remaining -= len(rows)


def iter_values(
    db: Database, where: Scope, batch: int = 500
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Only the first instanceID and current values of every submission in scope (to count
    repeat rows)."""
    last: int | None = None
    while True:
        query = (
            select(Submission.id, Submission.instance_id, SubmissionVersion.values)
            .join(
                SubmissionVersion,
                (SubmissionVersion.submission_id == Submission.id) & SubmissionVersion.is_current,
            )
            .where(where.where)
            .order_by(Submission.id.desc())
            .limit(batch)
        )
        if last is not None:
            query = query.where(*_before(last))
        with db.read() as tx:
            rows = tx.exec(query).all()
        for _, instance_id, values in rows:
            yield instance_id, values if isinstance(values, dict) else {}
        if len(rows) < batch:
            return
        last = rows[-1][0]


def _before(last: int) -> tuple[Any, ...]:
    """The keyset bound, on both sides of the submission/version join: PostgreSQL otherwise
    merge-joins from the newest version down to the page (a page 90,000 rows deep cost 130 ms
    instead of under 1 ms)."""
    return Submission.id < last, SubmissionVersion.submission_id < last


# ---- queries ---------------------------------------------------------------------------------

_ROW_COLUMNS = (
    Submission.id,
    Submission.instance_id,
    Submission.created_at,
    Submission.updated_at,
    Submission.deleted_at,
    Submission.submitter_id,
    Submission.review_state,
    Submission.device_id,
    SubmissionVersion.id.label("version_id"),
    SubmissionVersion.values,
    Actor.display_name,
)


def _rows_query(where: Scope) -> Any:
    return (
        select(*_ROW_COLUMNS)
        .join(
            SubmissionVersion,
            (SubmissionVersion.submission_id == Submission.id) & SubmissionVersion.is_current,
        )
        .join(Actor, Actor.id == Submission.submitter_id, isouter=True)
        .where(where.where)
        .order_by(Submission.id.desc())
    )


@dataclass(frozen=True)
class _Facts:
    attachments: dict[int, tuple[int, int]]  # current version id -> (present, expected)
    edits: dict[int, tuple[int, str | None]]  # submission id -> (edits, first form version)


def _system_facts(tx: Any, rows: list[Any]) -> _Facts:
    version_ids = [row.version_id for row in rows]
    submission_ids = [row.id for row in rows]
    attachments = {
        version_id: (int(present), int(expected))
        for version_id, present, expected in tx.exec(
            select(
                SubmissionAttachment.submission_version_id,
                func.count(SubmissionAttachment.blob_sha256),
                func.count(),
            )
            .where(SubmissionAttachment.submission_version_id.in_(version_ids))
            .group_by(SubmissionAttachment.submission_version_id)
        ).all()
    }
    versions = (
        select(
            SubmissionVersion.submission_id,
            func.count().label("versions"),
            func.min(SubmissionVersion.id).label("first_id"),
        )
        .where(SubmissionVersion.submission_id.in_(submission_ids))
        .group_by(SubmissionVersion.submission_id)
        .subquery()
    )
    first = aliased(SubmissionVersion)
    edits = {
        submission_id: (int(n) - 1, version)
        for submission_id, n, version in tx.exec(
            select(versions.c.submission_id, versions.c.versions, FormVersion.version)
            .join(first, first.id == versions.c.first_id)
            .join(FormVersion, FormVersion.id == first.form_version_id)
        ).all()
    }
    return _Facts(attachments, edits)


def _record(row: Any, facts: _Facts | None) -> Record:
    (
        submission_id,
        instance_id,
        created_at,
        updated_at,
        deleted_at,
        submitter_id,
        review_state,
        device_id,
        version_id,
        values,
        submitter_name,
    ) = row
    system = None
    if facts is not None:
        present, expected = facts.attachments.get(version_id, (0, 0))
        edits, form_version = facts.edits.get(submission_id, (0, None))
        system = System(
            submission_date=created_at,
            updated_at=updated_at,
            deleted_at=deleted_at,
            submitter_id=submitter_id,
            submitter_name=submitter_name,
            attachments_present=present,
            attachments_expected=expected,
            review_state=review_state,
            device_id=device_id,
            edits=edits,
            form_version=form_version,
        )
    return Record(submission_id, instance_id, values if isinstance(values, dict) else {}, system)


# ---- $filter -> SQL --------------------------------------------------------------------------


def _sql(expr: Expr, postgres: bool) -> Any:
    if isinstance(expr, And):
        return sa.and_(_sql(expr.left, postgres), _sql(expr.right, postgres))
    if isinstance(expr, Or):
        return sa.or_(_sql(expr.left, postgres), _sql(expr.right, postgres))
    if isinstance(expr, Not):
        return sa.not_(_sql(expr.operand, postgres))
    if isinstance(expr, Compare):
        return _compare(expr, postgres)
    if isinstance(expr, Literal) and expr.kind == "bool":
        return sa.true() if expr.value else sa.false()
    raise ValueError(f"not a condition: {expr!r}")  # parse_filter checked this


def _compare(expr: Compare, postgres: bool) -> Any:
    left_null = isinstance(expr.left, Literal) and expr.left.kind == "null"
    right_null = isinstance(expr.right, Literal) and expr.right.kind == "null"
    if left_null and right_null:
        return sa.true() if expr.op == "eq" else sa.false()
    if left_null or right_null:
        other = _value(expr.right if left_null else expr.left, postgres)
        return other.is_(None) if expr.op == "eq" else other.is_not(None)
    left, right = _value(expr.left, postgres), _value(expr.right, postgres)
    if expr.op == "eq":
        return left.is_not_distinct_from(right)
    if expr.op == "ne":
        return left.is_distinct_from(right)
    return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[
        expr.op
    ]


def _value(expr: Expr, postgres: bool) -> Any:
    if isinstance(expr, Field):
        return _COLUMNS[expr.name]
    if isinstance(expr, Literal):
        return sa.literal(expr.value, _LITERAL_TYPES.get(expr.kind, sa.String()))
    if isinstance(expr, Call):
        if expr.name == "now":
            return sa.literal(utcnow(), UTCDateTime())
        moment = _value(expr.args[0], postgres)
        if not postgres:  # SQLite keeps UTC text; extract reads it with strftime
            return sa.extract(expr.name, moment)
        # PostgreSQL: the part as seen in UTC whatever the session's time zone, and whole
        # seconds (extract gives 59.7 for a fraction, which a cast would round up).
        return sa.cast(
            sa.func.floor(sa.extract(expr.name, sa.func.timezone("UTC", moment))), sa.Integer
        )
    raise ValueError(f"not a value: {expr!r}")  # parse_filter checked this
