"""The reads behind OData: a form's schema, counts, and submissions in keyset batches; and
`BatchReader`, the one keyset reader of submissions (exports read with it too).

Batches come newest first (`ORDER BY submission.id DESC`, Central's order) and each next
batch starts below the last id seen (`id < last`), so the thousandth page costs what the first
does; `$skip` alone uses OFFSET, as Central does, and only on the first batch. A `$filter` is
turned from its parsed tree (forms.odata_filter) into SQLAlchemy expressions on the submission
columns by `filter_where`, which exports use too: values travel as bound parameters, never as
SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import func, select

from forms.exports import MediaRef
from forms.odata import Record
from forms.odata_filter import And, Call, Compare, Expr, Field, Literal, Not, Or, names_in
from forms.tabular import RowMeta
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
    aware,
    utcnow,
)

BATCH = 250
_JSON = msgspec.json.Decoder()

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


def filter_where(
    expr: Expr | None,
    dialect: str,
    columns: Mapping[str, Any] = _COLUMNS,
    deleted_at: Any = Submission.deleted_at,
) -> Any:
    """A parsed `$filter` (forms.odata_filter) as a SQLAlchemy condition on `submission`: the
    one translation, used by OData and by exports (and, with an entity list's `columns` and
    `deleted_at`, by the Entities feed). Deleted rows are left out unless the filter names
    `__system/deletedAt` (as Central does); None keeps every other one.
    `dialect`: the database's (`Database.dialect`)."""
    clauses = []
    if expr is None or "__system/deletedAt" not in names_in(expr):
        clauses.append(deleted_at.is_(None))
    if expr is not None:
        clauses.append(_sql(expr, dialect == "postgresql", columns))
    return sa.and_(*clauses)


def count(db: Database, where: Scope) -> int:
    with db.read() as tx:
        return int(tx.exec(select(func.count()).select_from(Submission).where(where.where)).one())


@dataclass(slots=True)
class SubmissionRow:
    """One submission as a keyset batch gives it: its id, system facts (`meta`), current
    values and (with `files`) its stored attachments. The values JSON is read as text and
    decoded when first asked for (a media export skips submissions without photos first)."""

    id: int
    meta: RowMeta
    values_json: str | None
    attachments: tuple[MediaRef, ...] = ()
    _values: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def values(self) -> dict[str, Any]:
        if self._values is None:
            decoded = _JSON.decode(self.values_json) if self.values_json else None
            self._values = decoded if isinstance(decoded, dict) else {}
        return self._values

    @property
    def instance_id(self) -> str:
        return self.meta.instance_id

    @property
    def instance_name(self) -> str | None:
        return self.meta.instance_name

    @property
    def created_at(self) -> datetime:
        return self.meta.created_at


class BatchReader:
    """The one reader of a form's current submissions in keyset batches (exports, OData and
    the IID report).

    `where`: a condition on `submission` and its current `submission_version`. Oldest first
    (`id > last`), or newest first (`id < last`, Central's OData order). Each batch is three
    statements in one short read transaction: the rows, the batch's version history (edits,
    first form version) and its attachments (`files`: each stored file; else only counted by
    the database). `system=False` reads the rows alone (counts and edits stay 0)."""

    def __init__(
        self,
        db: Database,
        form_id: int,
        where: Any,
        *,
        batch: int,
        newest_first: bool = False,
        files: bool = False,
        system: bool = True,
    ) -> None:
        self.db, self.form_id, self.batch = db, form_id, batch
        self.newest_first, self.system = newest_first, system
        self.query = (
            sa.select(
                Submission.id,
                Submission.instance_id,
                Submission.created_at,
                Submission.updated_at,
                Submission.deleted_at,
                Submission.review_state,
                Submission.submitter_id,
                Submission.device_id,
                SubmissionVersion.id,
                SubmissionVersion.instance_id,
                SubmissionVersion.instance_name,
                sa.cast(SubmissionVersion.values, sa.Text),
                Actor.display_name,
            )
            .select_from(Submission)
            .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
            .join(Actor, Actor.id == Submission.submitter_id, isouter=True)
            .where(Submission.form_id == form_id, SubmissionVersion.is_current, where)
            .order_by(Submission.id.desc() if newest_first else Submission.id)
        )
        # The batch's versions by a range of submission ids (a fixed statement, prepared once).
        # On SQLite the form is matched as an expression, not by its index: the planner would
        # otherwise walk every version of the form (4 ms for a 100-row page at 5k) instead of
        # the submission-id range (0.1 ms).
        form_of = SubmissionVersion.form_id
        if db.dialect != "postgresql":
            form_of = sa.func.coalesce(form_of, 0)
        in_range = (
            form_of == sa.bindparam("form"),
            SubmissionVersion.submission_id > sa.bindparam("low"),
            SubmissionVersion.submission_id <= sa.bindparam("high"),
        )
        self.versions_query = sa.select(
            SubmissionVersion.submission_id, SubmissionVersion.id, SubmissionVersion.form_version_id
        ).where(*in_range)
        # Its files by the current versions' ids, as one array parameter on PostgreSQL (which
        # planned a join over the range as a scan of every attachment: 40 ms a batch at 100k,
        # 3 ms this way); SQLite joins over the range well.
        attached = SubmissionAttachment.submission_version_id
        files_query = sa.select(
            attached,
            SubmissionAttachment.name,
            SubmissionAttachment.blob_sha256,
            SubmissionAttachment.size,
            SubmissionAttachment.content_type,
        )
        if not files:  # (version, present, expected): a row per submission, not per file
            files_query = sa.select(
                attached, sa.func.count(SubmissionAttachment.blob_sha256), sa.func.count()
            ).group_by(attached)
        self.by_versions = db.dialect == "postgresql"
        if self.by_versions:
            files_query = files_query.where(
                attached
                == sa.func.any(sa.bindparam("versions", type_=postgresql.ARRAY(sa.Integer)))
            )
        else:
            files_query = files_query.join(
                SubmissionVersion, SubmissionVersion.id == attached
            ).where(*in_range, SubmissionVersion.is_current)
        self.files_query = files_query
        if files:
            self.files_query = self.files_query.order_by(SubmissionAttachment.id)
        self.files = files
        with db.read() as tx:
            self.form_versions: dict[int, str] = dict(
                tx.execute(
                    sa.select(FormVersion.id, FormVersion.version).where(
                        FormVersion.form_id == form_id
                    )
                ).all()
            )

    def read(
        self, last: int | None, *, offset: int = 0, size: int | None = None
    ) -> list[SubmissionRow]:
        """The batch after the submission id `last` (exclusive; None: from the start)."""
        query = self.query
        if last is not None:
            # The bound on both sides of the join lets the planner start both index scans at
            # the batch (PostgreSQL otherwise merge-joins every earlier version again).
            if self.newest_first:
                query = query.where(Submission.id < last, SubmissionVersion.submission_id < last)
            else:
                query = query.where(Submission.id > last, SubmissionVersion.submission_id > last)
        elif offset:
            query = query.offset(offset)
        with self.db.read() as tx:
            run = tx.connection().execute  # plain rows: no ORM bookkeeping per row
            found = run(query.limit(size or self.batch)).all()
            if not found or not self.system:
                return list(self._rows(found, (), ()))
            ids = [row[0] for row in found]
            span = {"form": self.form_id, "low": min(ids) - 1, "high": max(ids)}
            which = {"versions": [row[8] for row in found]} if self.by_versions else span
            history = run(self.versions_query, span).all()
            files = run(self.files_query, which).all()
        return list(self._rows(found, history, files))

    def each(self) -> Iterator[SubmissionRow]:
        """Every row from the start, batch after batch (each in its own read transaction)."""
        last: int | None = None
        while found := self.read(last):
            yield from found
            if len(found) < self.batch:
                return
            last = found[-1].id

    def _rows(
        self, found: list[Any], history: Iterable[Any], files: Iterable[Any]
    ) -> Iterator[SubmissionRow]:
        first: dict[int, tuple[int, int]] = {}  # submission -> (first version id, form version)
        edits: dict[int, int] = {}
        for submission_id, version_id, form_version_id in history:
            edits[submission_id] = edits.get(submission_id, -1) + 1
            if submission_id not in first or version_id < first[submission_id][0]:
                first[submission_id] = (version_id, form_version_id)
        attached: dict[int, list[tuple[Any, ...]]] = {}
        counts: dict[int, tuple[int, int]] = {}
        for entry in files:
            if self.files:
                attached.setdefault(entry[0], []).append(entry)
            else:
                counts[entry[0]] = (entry[1], entry[2])
        for (
            sub_id,
            instance_id,
            created_at,
            updated_at,
            deleted_at,
            review_state,
            submitter_id,
            device_id,
            version_id,
            current_id,
            instance_name,
            values,
            submitter_name,
        ) in found:
            refs = []
            expected = 0
            for _, name, sha, size, content_type in attached.get(version_id, ()):
                expected += 1
                if sha:
                    refs.append(MediaRef(name, sha, size or 0, content_type))
            present = len(refs)
            if not self.files:
                present, expected = counts.get(version_id, (0, 0))
            form_version = first.get(sub_id)
            meta = RowMeta(
                instance_id,
                aware(created_at),
                submitter_id,
                submitter_name,
                int(present),
                int(expected),
                review_state,
                device_id,
                max(edits.get(sub_id, 0), 0),
                self.form_versions.get(form_version[1], "") if form_version else None,
                updated_at=aware(updated_at) if updated_at else None,
                deleted_at=aware(deleted_at) if deleted_at else None,
                instance_name=instance_name,
                current_instance_id=current_id,
            )
            yield SubmissionRow(sub_id, meta, values, tuple(refs))


def iter_batches(
    db: Database,
    form: ODataForm,
    where: Scope,
    *,
    through_id: int | None = None,
    offset: int = 0,
    limit: int | None = None,
    system: bool = True,
    batch: int = BATCH,
) -> Iterator[list[Record]]:
    """Submissions newest first, in lists of at most `batch`, each list read in its own short
    transaction (`BatchReader`). `through_id`: start at this submission (inclusive, a
    skiptoken's). `offset` skips that many first (`$skip`), `limit` stops after that many.
    `system`: also read what `__system` needs (attachment counts, edits, first form version)."""
    reader = BatchReader(
        db, form.form_id, where.where, batch=batch, newest_first=True, system=system
    )
    last = through_id + 1 if through_id is not None else None
    remaining = limit
    while remaining is None or remaining > 0:
        size = batch if remaining is None else min(batch, remaining)
        rows = reader.read(last, offset=offset, size=size)
        if not rows:
            return
        yield [Record(r.id, r.instance_id, r.values, r.meta if system else None) for r in rows]
        if len(rows) < size:
            return
        last = rows[-1].id
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


# ---- $filter -> SQL --------------------------------------------------------------------------


def _sql(expr: Expr, postgres: bool, columns: Mapping[str, Any] = _COLUMNS) -> Any:
    if isinstance(expr, And):
        return sa.and_(_sql(expr.left, postgres, columns), _sql(expr.right, postgres, columns))
    if isinstance(expr, Or):
        return sa.or_(_sql(expr.left, postgres, columns), _sql(expr.right, postgres, columns))
    if isinstance(expr, Not):
        return sa.not_(_sql(expr.operand, postgres, columns))
    if isinstance(expr, Compare):
        return _compare(expr, postgres, columns)
    if isinstance(expr, Literal) and expr.kind == "bool":
        return sa.true() if expr.value else sa.false()
    raise ValueError(f"not a condition: {expr!r}")  # parse_filter checked this


def _compare(expr: Compare, postgres: bool, columns: Mapping[str, Any]) -> Any:
    left_null = isinstance(expr.left, Literal) and expr.left.kind == "null"
    right_null = isinstance(expr.right, Literal) and expr.right.kind == "null"
    if left_null and right_null:
        return sa.true() if expr.op == "eq" else sa.false()
    if left_null or right_null:
        other = _value(expr.right if left_null else expr.left, postgres, columns)
        return other.is_(None) if expr.op == "eq" else other.is_not(None)
    left, right = _value(expr.left, postgres, columns), _value(expr.right, postgres, columns)
    if expr.op == "eq":
        return left.is_not_distinct_from(right)
    if expr.op == "ne":
        return left.is_distinct_from(right)
    return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[
        expr.op
    ]


def _value(expr: Expr, postgres: bool, columns: Mapping[str, Any]) -> Any:
    if isinstance(expr, Field):
        return columns[expr.name]
    if isinstance(expr, Literal):
        return sa.literal(expr.value, _LITERAL_TYPES.get(expr.kind, sa.String()))
    if isinstance(expr, Call):
        if expr.name == "now":
            return sa.literal(utcnow(), UTCDateTime())
        moment = _value(expr.args[0], postgres, columns)
        if not postgres:  # SQLite keeps UTC text; extract reads it with strftime
            return sa.extract(expr.name, moment)
        # PostgreSQL: the part as seen in UTC whatever the session's time zone, and whole
        # seconds (extract gives 59.7 for a fraction, which a cast would round up).
        return sa.cast(
            sa.func.floor(sa.extract(expr.name, sa.func.timezone("UTC", moment))), sa.Integer
        )
    raise ValueError(f"not a value: {expr!r}")  # parse_filter checked this
