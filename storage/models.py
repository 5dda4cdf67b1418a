"""The tables. Plain SQLModel classes; the rules live in the modules named after each aggregate.

Text a phone or a client sends is `sa.Text`, unbounded on every database (migration 0005):
PostgreSQL enforces a VARCHAR(n) and SQLite does not, so a limit in the schema alone made the
same request a 400 on one and a 201 on the other. A column that keeps a length (an indexed
name or id) has it checked by `_check_text` before any row is written, as is a NUL character
(which PostgreSQL cannot store in text): the same refusal, InvalidInput (400), on both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import AutoString, Field, SQLModel

from .errors import InvalidInput


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """A time read from the database as UTC-aware (aggregates such as MAX lose the column's
    type, and SQLite keeps no offset)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """Timestamps are stored in UTC and always come back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def _at(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


def _now() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Actor(SQLModel, table=True):
    """Anyone who acts: a web user or an app user (a phone). Submitters and audit entries point here."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # user | app_user
    display_name: str = Field(sa_type=sa.Text)
    created_at: datetime = _now()
    deleted_at: datetime | None = _at(default=None, nullable=True)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    actor_id: int = Field(foreign_key="actor.id", unique=True)
    email: str = Field(max_length=320, unique=True)
    password_hash: str | None = Field(default=None, max_length=255)
    is_admin: bool = False
    created_at: datetime = _now()


class Session(SQLModel, table=True):
    __tablename__ = "session"
    id: int | None = Field(default=None, primary_key=True)
    actor_id: int = Field(foreign_key="actor.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    csrf: str | None = Field(default=None, max_length=64)
    created_at: datetime = _now()
    expires_at: datetime = _at(nullable=False)


class Project(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=sa.Text)
    description: str | None = None
    archived: bool = False
    created_at: datetime = _now()
    updated_at: datetime | None = _at(default=None, nullable=True)


class AppUser(SQLModel, table=True):
    """A phone's identity. The token is kept as a hash (lookup) and sealed (to show its URL again)."""

    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    actor_id: int = Field(foreign_key="actor.id", unique=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    token_sealed: str | None = Field(default=None, max_length=512)
    created_at: datetime = _now()
    revoked_at: datetime | None = _at(default=None, nullable=True)


class RoleAssignment(SQLModel, table=True):
    __tablename__ = "role_assignment"
    __table_args__ = (sa.UniqueConstraint("actor_id", "project_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    actor_id: int = Field(foreign_key="actor.id", index=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    role: str = Field(max_length=32)  # manager | supervisor | formfill | form:{form id}
    created_at: datetime = _now()


class Blob(SQLModel, table=True):
    sha256: str = Field(primary_key=True, max_length=64)
    md5: str | None = Field(default=None, max_length=32)
    size: int = Field(sa_type=sa.BigInteger)
    content_type: str = Field(default="application/octet-stream", sa_type=sa.Text)
    created_at: datetime = _now()


class Form(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("project_id", "xml_form_id"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    xml_form_id: str = Field(max_length=255)
    state: str = Field(default="open", max_length=16)  # open | closing | closed
    created_at: datetime = _now()
    updated_at: datetime | None = _at(default=None, nullable=True)
    deleted_at: datetime | None = _at(default=None, nullable=True)


class FormVersion(SQLModel, table=True):
    """One compiled version of a form; the XML is kept byte-for-byte (the formList hash is its md5)."""

    __tablename__ = "form_version"
    __table_args__ = (
        sa.Index(
            "form_version_published_uq",
            "form_id",
            "version",
            unique=True,
            sqlite_where=sa.text("published_at IS NOT NULL"),
            postgresql_where=sa.text("published_at IS NOT NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    form_id: int = Field(foreign_key="form.id", index=True)
    version: str = Field(default="", max_length=255)
    title: str = Field(default="", sa_type=sa.Text)
    xml: bytes = Field(sa_type=sa.LargeBinary)
    md5: str = Field(max_length=32)
    sha256: str = Field(max_length=64)
    fields_json: bytes = Field(sa_type=sa.LargeBinary)
    warnings: list[str] = Field(default_factory=list, sa_type=JSONType)
    xlsform_sha256: str | None = Field(default=None, foreign_key="blob.sha256", max_length=64)
    xlsform_name: str | None = Field(default=None, sa_type=sa.Text)
    is_current: bool = False
    created_at: datetime = _now()
    published_at: datetime | None = _at(default=None, nullable=True)


class FormAttachment(SQLModel, table=True):
    __tablename__ = "form_attachment"
    __table_args__ = (sa.UniqueConstraint("form_version_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    form_version_id: int = Field(foreign_key="form_version.id", index=True)
    name: str = Field(max_length=255)
    kind: str = Field(default="file", max_length=16)
    blob_sha256: str | None = Field(default=None, foreign_key="blob.sha256", max_length=64)
    updated_at: datetime | None = _at(default=None, nullable=True)


class Submission(SQLModel, table=True):
    """A logical submission: its first instanceID, review state and who sent it."""

    __table_args__ = (
        sa.UniqueConstraint("form_id", "instance_id"),
        # Keyset pages: the supervisor's table (newest first) and exports/OData (by id).
        sa.Index("submission_form_created_idx", "form_id", "created_at", "id"),
        sa.Index("submission_form_id_idx", "form_id", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    form_id: int = Field(foreign_key="form.id", index=True)
    instance_id: str = Field(max_length=255)
    review_state: str | None = Field(default=None, max_length=16)
    submitter_id: int | None = Field(default=None, foreign_key="actor.id", index=True)
    device_id: str | None = Field(default=None, sa_type=sa.Text)
    user_agent: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = _now()
    updated_at: datetime | None = _at(default=None, nullable=True)
    deleted_at: datetime | None = _at(default=None, nullable=True)


class SubmissionVersion(SQLModel, table=True):
    """One XML of a submission, exactly as received, and its parsed values."""

    __tablename__ = "submission_version"
    __table_args__ = (
        sa.UniqueConstraint("form_id", "instance_id"),
        sa.Index(
            "submission_version_current_uq",
            "submission_id",
            unique=True,
            sqlite_where=sa.text("is_current"),
            postgresql_where=sa.text("is_current"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    form_id: int = Field(foreign_key="form.id")
    form_version_id: int = Field(foreign_key="form_version.id", index=True)
    instance_id: str = Field(max_length=255)
    deprecated_id: str | None = Field(default=None, max_length=255)
    instance_name: str | None = Field(default=None, sa_type=sa.Text)
    xml: bytes = Field(sa_type=sa.LargeBinary)
    xml_sha256: str = Field(max_length=64)
    # `json`, not `jsonb`, on PostgreSQL: read back as stored, not re-serialised (migration 0004)
    values: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON())
    # The answers casefolded for the pages' free-text search (storage.search; migration 0010)
    search_text: str | None = Field(default=None, sa_type=sa.Text)
    submitter_id: int | None = Field(default=None, foreign_key="actor.id")
    device_id: str | None = Field(default=None, sa_type=sa.Text)
    user_agent: str | None = Field(default=None, sa_type=sa.Text)
    is_current: bool = True
    created_at: datetime = _now()


class SubmissionAttachment(SQLModel, table=True):
    __tablename__ = "submission_attachment"
    __table_args__ = (sa.UniqueConstraint("submission_version_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_version_id: int = Field(foreign_key="submission_version.id", index=True)
    name: str = Field(max_length=255)
    blob_sha256: str | None = Field(
        default=None, foreign_key="blob.sha256", max_length=64, index=True
    )
    content_type: str | None = Field(default=None, sa_type=sa.Text)
    size: int | None = Field(default=None, sa_type=sa.BigInteger)
    updated_at: datetime | None = _at(default=None, nullable=True)


class Comment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    actor_id: int = Field(foreign_key="actor.id")
    body: str
    created_at: datetime = _now()


class Audit(SQLModel, table=True):
    # The newest entry of one subject in one index lookup (an entity list's lastUpdate and the
    # hash phones compare before downloading its CSV).
    __table_args__ = (sa.Index("audit_subject_idx", "subject_type", "subject_id", "logged_at"),)
    id: int | None = Field(default=None, primary_key=True)
    actor_id: int | None = Field(default=None, foreign_key="actor.id", index=True)
    action: str = Field(max_length=64, index=True)
    subject_type: str | None = Field(default=None, max_length=32)
    subject_id: int | None = Field(default=None)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    logged_at: datetime = _now()


class Dataset(SQLModel, table=True):
    """An entity list of a project (Central's dataset). Names are unique in a project, also
    ignoring case (storage/datasets.py checks that; the constraint keeps exact duplicates out)."""

    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=255)
    approval_required: bool = False
    created_at: datetime = _now()


class DatasetProperty(SQLModel, table=True):
    __tablename__ = "dataset_property"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    name: str = Field(max_length=255)
    published_at: datetime = _now()


class Entity(SQLModel, table=True):
    """An entity of an entity list; its label and data are in its versions (EntityVersion),
    one of which is current. `uuid` is unique in its list; deleting sets `deleted_at`."""

    __table_args__ = (sa.UniqueConstraint("dataset_id", "uuid"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    uuid: str = Field(max_length=36)
    creator_id: int | None = Field(default=None, foreign_key="actor.id")
    conflict: str | None = Field(default=None, max_length=8)  # null | soft | hard (Central's)
    created_at: datetime = _now()
    updated_at: datetime | None = _at(default=None, nullable=True)
    deleted_at: datetime | None = _at(default=None, nullable=True)


class EntityVersion(SQLModel, table=True):
    """One version of an entity (Central's entity def): its label and property values as of
    that version; `source` says where it came from (`{"name", "size", "count"}` of a bulk
    create), `submission_version_id` the submission XML that made it.

    From offline phones (entities spec 2024.1): `branch_id` names a run of updates made on one
    phone without the server, `trunk_version` the server version that run started from and
    `branch_base_version` the version of the branch it was made on. `conflicting_properties`
    are the properties a stale update changed that the server had also changed since its base
    (Central's hard conflict); `resolved` is set when a supervisor marks the conflict resolved.
    """

    __tablename__ = "entity_version"
    __table_args__ = (
        sa.UniqueConstraint("entity_id", "version"),
        sa.Index(
            "entity_version_current_uq",
            "entity_id",
            unique=True,
            sqlite_where=sa.text("is_current"),
            postgresql_where=sa.text("is_current"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    entity_id: int = Field(foreign_key="entity.id", index=True)
    version: int
    base_version: int | None = None
    label: str = Field(sa_type=sa.Text)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    data_received: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    source: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    creator_id: int | None = Field(default=None, foreign_key="actor.id")
    user_agent: str | None = Field(default=None, sa_type=sa.Text)
    submission_version_id: int | None = Field(
        default=None, foreign_key="submission_version.id", index=True
    )
    branch_id: str | None = Field(default=None, max_length=36)
    trunk_version: int | None = None
    branch_base_version: int | None = None
    conflicting_properties: list[str] | None = Field(default=None, sa_type=JSONType)
    resolved: bool = False
    is_current: bool = True
    created_at: datetime = _now()


class EntityLink(SQLModel, table=True):
    """A submission about an entity: it created or updated it (`how` = created | updated), a
    question chose it from an entity list (chosen), or a typed name from before entities was
    matched to it (matched: by `jebol entities link`; resolved: by a supervisor)."""

    __tablename__ = "entity_link"
    __table_args__ = (sa.UniqueConstraint("submission_id", "entity_id"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    entity_id: int = Field(foreign_key="entity.id", index=True)
    how: str = Field(max_length=16)
    actor_id: int | None = Field(default=None, foreign_key="actor.id")
    created_at: datetime = _now()


class EntityBacklog(SQLModel, table=True):
    """A submission's entity update held until the offline update it was made after arrives
    (Central's entity_submission_backlog): `branch_base_version` is the version within the
    phone's branch it was made on. Applied when that version arrives, or forced after days."""

    __tablename__ = "entity_backlog"
    id: int | None = Field(default=None, primary_key=True)
    submission_version_id: int = Field(foreign_key="submission_version.id", unique=True)
    dataset_id: int = Field(foreign_key="dataset.id")
    entity_uuid: str = Field(max_length=36, index=True)
    branch_id: str | None = Field(default=None, max_length=36)
    branch_base_version: int | None = None
    held_at: datetime = _now()


class LoginAttempt(SQLModel, table=True):
    """Failed logins, for throttling by email and by client address."""

    __tablename__ = "login_attempt"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, index=True)
    client: str = Field(max_length=64, index=True)
    at: datetime = _now()


class PhotoMeta(SQLModel, table=True):
    """What a stored photo says about itself, worked out once per blob (storage/photos.py).

    EXIF DateTimeOriginal has no time zone: it is kept as the phone's local wall-clock time
    (`taken_local`, 'YYYY-MM-DDTHH:MM:SS') and its date (`taken_date`, 'YYYY-MM-DD'), which is
    what a visit date is compared with. `width`/`height` are as displayed (EXIF orientation
    applied). `error` says why a file could not be read as an image; the other facts are then
    empty. `phash` (64-bit pHash) and `dhash` (256-bit dHash) find near-duplicates together; a
    row from before `dhash` was kept is analysed again when a page next shows its photo.
    """

    __tablename__ = "photo_meta"
    sha256: str = Field(primary_key=True, foreign_key="blob.sha256", max_length=64)
    width: int | None = None
    height: int | None = None
    has_exif: bool = False
    taken_local: str | None = Field(default=None, max_length=19)
    taken_date: str | None = Field(default=None, max_length=10)
    gps_lat: float | None = None
    gps_lon: float | None = None
    phash: str | None = Field(default=None, max_length=16)
    dhash: str | None = Field(default=None, max_length=64)  # 256 bits: printed pages apart
    error: str | None = Field(default=None, sa_type=sa.Text)
    analyzed_at: datetime = _now()


# ---- the same text rules on every database --------------------------------------------------

# What a refusal calls the bounded columns a client fills; others are named table.column.
_LABELS = {
    ("form", "xml_form_id"): "The form id",
    ("form_version", "version"): "The form version",
    ("form_attachment", "name"): "A form media file name",
    ("submission", "instance_id"): "The instanceID",
    ("submission_version", "instance_id"): "The instanceID",
    ("submission_version", "deprecated_id"): "The deprecatedID",
    ("submission_attachment", "name"): "An attachment name",
    ("dataset", "name"): "The entity list name",
    ("dataset_property", "name"): "The property name",
}
_TEXT_COLUMNS: dict[Any, list[tuple[str, int | None, str]]] = {}


@event.listens_for(SQLModel, "before_insert", propagate=True)
@event.listens_for(SQLModel, "before_update", propagate=True)
def _check_text(mapper: Any, _connection: Any, target: Any) -> None:
    """Refuse, before the statement, a text value PostgreSQL would refuse and SQLite keep: one
    longer than its column's declared length, or holding NUL."""
    columns = _TEXT_COLUMNS.get(mapper)
    if columns is None:
        columns = _TEXT_COLUMNS[mapper] = [
            (
                attr.key,
                getattr(column.type, "length", None),
                _LABELS.get((column.table.name, column.name), f"{column.table.name}.{column.name}"),
            )
            for attr in mapper.column_attrs
            for column in attr.columns[:1]
            if isinstance(column.type, (sa.String, AutoString))
        ]
    for key, length, label in columns:
        value = getattr(target, key, None)
        if not isinstance(value, str):
            continue
        if length is not None and len(value) > length:
            raise InvalidInput(f"{label} is longer than {length} characters.")
        if "\x00" in value:
            raise InvalidInput(f"{label} holds a NUL character, which cannot be stored.")
