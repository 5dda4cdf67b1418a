"""Forms and their versions: publish, look up, list for phones, media attachments."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from forms.errors import XLSFormWarnings
from forms.xform import Schema, read_xform, set_version

from . import audit, content, datasets
from .blobs import BlobStore
from .db import Database
from .errors import AlreadyExists, InvalidInput, NotFound, VersionTaken
from .models import Blob, Form, FormAttachment, FormVersion, Project, utcnow

STATES = ("open", "closing", "closed")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Published:
    form: Form
    version: FormVersion
    outcome: str  # created | updated | unchanged
    warnings: list[str]


@dataclass(frozen=True)
class MediaFile:
    attachment: FormAttachment
    blob: Blob | None


def publish_xlsform(
    db: Database,
    blobs: BlobStore,
    project_id: int,
    data: bytes,
    filename: str | None = None,
    *,
    media: dict[str, Path] | None = None,
    form_id_fallback: str | None = None,
    ignore_warnings: bool = True,
    publish: bool = True,
    expect_form_id: str | None = None,
    new_form: bool = False,
    actor_id: int | None = None,
) -> Published:
    """Compile and publish an XLSForm: a new form, a new version of it, or nothing if unchanged.

    With `publish=False` the result is the form's draft (replacing any earlier draft).
    `new_form`: the form must not exist yet (AlreadyExists), as Central's form create.
    """
    # pyxform (and the openpyxl and numpy it loads) is imported when a form is compiled, not
    # with this module: processes that never compile one (an export's helper) start faster.
    from forms.compile import compile_xlsform

    compiled = compile_xlsform(data, filename, form_id_fallback)
    if compiled.warnings and not ignore_warnings:
        raise XLSFormWarnings(compiled.warnings)
    xlsform = content.put_data(
        blobs, data, XLSX_TYPE if data[:2] == b"PK" else "application/vnd.ms-excel"
    )
    return _publish(
        db,
        blobs,
        project_id,
        compiled.xml,
        compiled.warnings,
        xlsform,
        filename,
        media or {},
        actor_id,
        publish,
        expect_form_id,
        new_form=new_form,
    )


def publish_xform(
    db: Database,
    blobs: BlobStore,
    project_id: int,
    xml: bytes,
    *,
    media: dict[str, Path] | None = None,
    publish: bool = True,
    expect_form_id: str | None = None,
    new_form: bool = False,
    actor_id: int | None = None,
) -> Published:
    return _publish(
        db,
        blobs,
        project_id,
        xml,
        [],
        None,
        None,
        media or {},
        actor_id,
        publish,
        expect_form_id,
        new_form=new_form,
    )


def _publish(
    db: Database,
    blobs: BlobStore,
    project_id: int,
    xml: bytes,
    warnings: list[str],
    xlsform: content.StoredBlob | None,
    xlsform_name: str | None,
    media: dict[str, Path],
    actor_id: int | None,
    publish: bool = True,
    expect_form_id: str | None = None,
    *,
    new_form: bool = False,
) -> Published:
    schema = read_xform(xml)
    datasets.check_declarations(schema)
    if expect_form_id is not None and schema.form_id != expect_form_id:
        raise InvalidInput(
            f"The uploaded form's id is {schema.form_id!r}, but this is form {expect_form_id!r}."
        )
    expected = {m.name: m.kind for m in schema.media}
    unknown = sorted(set(media) - set(expected))
    if unknown:
        raise InvalidInput(
            f"The form does not use the media file(s) {', '.join(unknown)}; "
            f"it expects: {', '.join(sorted(expected)) or 'none'}."
        )
    stored = {
        name: content.put_data(blobs, path.read_bytes(), content.guess_type(name))
        for name, path in media.items()
    }
    sha256 = hashlib.sha256(xml).hexdigest()
    with db.transaction() as tx:
        if tx.get(Project, project_id) is None:
            raise NotFound("project")
        form = tx.exec(
            select(Form).where(Form.project_id == project_id, Form.xml_form_id == schema.form_id)
        ).first()
        if new_form and form is not None and form.deleted_at is None:
            raise AlreadyExists("forms", {"projectId": project_id, "xmlFormId": schema.form_id})
        previous = _current(tx, form.id) if form else None
        if not publish:
            return _save_draft(
                tx,
                project_id,
                form,
                schema,
                xml,
                sha256,
                warnings,
                xlsform,
                xlsform_name,
                previous,
                expected,
                stored,
                actor_id,
            )
        if previous is not None and previous.sha256 == sha256 and not stored:
            return Published(form, previous, "unchanged", previous.warnings)
        if form is None:
            form = Form(project_id=project_id, xml_form_id=schema.form_id)
            tx.add(form)
            tx.flush()
            outcome = "created"
        else:
            outcome = "updated"
            taken = tx.exec(
                select(FormVersion.id).where(
                    FormVersion.form_id == form.id,
                    FormVersion.version == schema.version,
                    FormVersion.published_at.is_not(None),
                )
            ).first()
            if taken is not None and (previous is None or previous.sha256 != sha256):
                raise VersionTaken(
                    f"Version {schema.version!r} of form {schema.form_id!r} is already "
                    "published; change the version in the settings sheet."
                )
            if previous is not None:
                previous.is_current = False
                tx.flush()
            form.deleted_at = None
            form.updated_at = utcnow()
        if xlsform is not None:
            content.record(tx, xlsform)
        for blob in stored.values():
            content.record(tx, blob)
        version = _version_row(form, schema, xml, warnings, xlsform, xlsform_name, published=True)
        if previous is not None and previous.sha256 == sha256:
            version = previous  # same XML, new media: attach to the current version
            version.is_current = True
        else:
            tx.add(version)
            tx.flush()
        _attach_media(tx, version, previous, expected, stored)
        warnings = [*warnings, *datasets.declare_from_form(tx, project_id, schema, actor_id)]
        audit.record(
            tx,
            actor_id,
            "form.create" if outcome == "created" else "form.update.publish",
            "form",
            form.id,
            {"xmlFormId": schema.form_id, "version": schema.version},
        )
        return Published(form, version, outcome, warnings)


def _version_row(
    form: Form,
    schema: Schema,
    xml: bytes,
    warnings: list[str],
    xlsform: content.StoredBlob | None,
    xlsform_name: str | None,
    *,
    published: bool,
) -> FormVersion:
    return FormVersion(
        form_id=form.id,
        version=schema.version,
        title=schema.title,
        xml=xml,
        md5=hashlib.md5(xml).hexdigest(),
        sha256=hashlib.sha256(xml).hexdigest(),
        fields_json=schema.to_json(),
        warnings=warnings,
        xlsform_sha256=xlsform.sha256 if xlsform else None,
        xlsform_name=xlsform_name,
        is_current=published,
        published_at=utcnow() if published else None,
    )


def _save_draft(
    tx: Session,
    project_id: int,
    form: Form | None,
    schema: Schema,
    xml: bytes,
    sha256: str,
    warnings: list[str],
    xlsform: content.StoredBlob | None,
    xlsform_name: str | None,
    previous: FormVersion | None,
    expected: dict[str, str],
    stored: dict[str, content.StoredBlob],
    actor_id: int | None,
) -> Published:
    outcome = "draft"
    if form is None:
        form = Form(project_id=project_id, xml_form_id=schema.form_id)
        tx.add(form)
        tx.flush()
        outcome = "created"
    for old in tx.exec(
        select(FormVersion).where(
            FormVersion.form_id == form.id, FormVersion.published_at.is_(None)
        )
    ):
        for attachment in tx.exec(
            select(FormAttachment).where(FormAttachment.form_version_id == old.id)
        ):
            tx.delete(attachment)
        tx.delete(old)
    tx.flush()
    if xlsform is not None:
        content.record(tx, xlsform)
    for blob in stored.values():
        content.record(tx, blob)
    draft = _version_row(form, schema, xml, warnings, xlsform, xlsform_name, published=False)
    tx.add(draft)
    tx.flush()
    _attach_media(tx, draft, previous, expected, stored)
    audit.record(
        tx,
        actor_id,
        "form.update.draft.set",
        "form",
        form.id,
        {"xmlFormId": schema.form_id, "version": schema.version},
    )
    return Published(form, draft, outcome, warnings)


def _attach_media(
    tx: Session,
    version: FormVersion,
    previous: FormVersion | None,
    expected: dict[str, str],
    stored: dict[str, content.StoredBlob],
) -> None:
    carried: dict[str, str | None] = {}
    if previous is not None:
        carried = {
            a.name: a.blob_sha256
            for a in tx.exec(
                select(FormAttachment).where(FormAttachment.form_version_id == previous.id)
            )
        }
    existing = {
        a.name: a
        for a in tx.exec(select(FormAttachment).where(FormAttachment.form_version_id == version.id))
    }
    for name, kind in expected.items():
        sha = stored[name].sha256 if name in stored else carried.get(name)
        row = existing.get(name)
        if row is None:
            tx.add(
                FormAttachment(
                    form_version_id=version.id,
                    name=name,
                    kind=kind,
                    blob_sha256=sha,
                    updated_at=utcnow() if sha else None,
                )
            )
        elif name in stored:
            row.blob_sha256, row.updated_at = sha, utcnow()


def _current(tx: Session, form_id: int) -> FormVersion | None:
    return tx.exec(
        select(FormVersion).where(FormVersion.form_id == form_id, FormVersion.is_current)
    ).first()


def get_form(db: Database, project_id: int, xml_form_id: str) -> Form:
    with db.read() as tx:
        return locate_form(tx, project_id, xml_form_id)


def current_version(db: Database, form: Form) -> FormVersion:
    with db.read() as tx:
        version = _current(tx, form.id)
    if version is None:
        raise NotFound("published form version")
    return version


def find_published_version(db: Database, form: Form, version: str) -> FormVersion | None:
    with db.read() as tx:
        return tx.exec(
            select(FormVersion).where(
                FormVersion.form_id == form.id,
                FormVersion.version == version,
                FormVersion.published_at.is_not(None),
            )
        ).first()


def schema_of(version: FormVersion) -> Schema:
    return Schema.from_json(version.fields_json)


def list_forms(
    db: Database,
    project_id: int,
    *,
    for_phones: bool = False,
    xml_form_id: str | None = None,
    include_drafts: bool = False,
) -> list[tuple[Form, FormVersion]]:
    """Forms with their current published version; phones see only open ones.

    With `include_drafts`, a form that has never been published comes with its draft.
    """
    query = (
        select(Form, FormVersion)
        .join(FormVersion, FormVersion.form_id == Form.id)
        .where(Form.project_id == project_id, Form.deleted_at.is_(None))
        .order_by(Form.xml_form_id)
    )
    if include_drafts:
        published = select(FormVersion.form_id).where(FormVersion.is_current)
        query = query.where(
            (FormVersion.is_current)
            | (FormVersion.published_at.is_(None) & Form.id.not_in(published))
        )
    else:
        query = query.where(FormVersion.is_current)
    if for_phones:
        query = query.where(Form.state == "open")
    if xml_form_id is not None:
        query = query.where(Form.xml_form_id == xml_form_id)
    with db.read() as tx:
        return [(form, version) for form, version in tx.exec(query).all()]


def list_media(db: Database, version: FormVersion) -> list[MediaFile]:
    with db.read() as tx:
        rows = tx.exec(
            select(FormAttachment, Blob)
            .join(Blob, Blob.sha256 == FormAttachment.blob_sha256, isouter=True)
            .where(FormAttachment.form_version_id == version.id)
            .order_by(FormAttachment.name)
        ).all()
    return [MediaFile(attachment, blob) for attachment, blob in rows]


def get_media(db: Database, version: FormVersion, name: str) -> MediaFile:
    media = next((m for m in list_media(db, version) if m.attachment.name == name), None)
    if media is None or media.blob is None:
        raise NotFound("form attachment")
    return media


def set_state(
    db: Database, project_id: int, xml_form_id: str, state: str, actor_id: int | None = None
) -> Form:
    if state not in STATES:
        raise InvalidInput(f"Unknown form state {state!r}; states are {', '.join(STATES)}.")
    with db.transaction() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        form.state, form.updated_at = state, utcnow()
        audit.record(tx, actor_id, "form.update", "form", form.id, {"state": state})
        return form


# ---- drafts and versions ---------------------------------------------------------------------


def locate_form(tx: Session, project_id: int, xml_form_id: str) -> Form:
    """The form inside an open transaction; NotFound when absent or deleted."""
    form = tx.exec(
        select(Form).where(
            Form.project_id == project_id,
            Form.xml_form_id == xml_form_id,
            Form.deleted_at.is_(None),
        )
    ).first()
    if form is None:
        raise NotFound("form")
    return form


def _draft(tx: Session, form_id: int) -> FormVersion | None:
    return tx.exec(
        select(FormVersion).where(
            FormVersion.form_id == form_id, FormVersion.published_at.is_(None)
        )
    ).first()


def get_draft(db: Database, project_id: int, xml_form_id: str) -> tuple[Form, FormVersion]:
    with db.read() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        draft = _draft(tx, form.id)
    if draft is None:
        raise NotFound("draft")
    return form, draft


def draft_from_published(
    db: Database, project_id: int, xml_form_id: str, actor_id: int | None = None
) -> FormVersion:
    """A new draft that copies the published version and its media (POST .../draft, no body)."""
    with db.transaction() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        current = _current(tx, form.id)
        if current is None:
            raise NotFound("published form version")
        schema = Schema.from_json(current.fields_json)
        result = _save_draft(
            tx,
            project_id,
            form,
            schema,
            current.xml,
            current.sha256,
            current.warnings,
            None,
            current.xlsform_name,
            current,
            {m.name: m.kind for m in schema.media},
            {},
            actor_id,
        )
        result.version.xlsform_sha256 = current.xlsform_sha256
        return result.version


def set_draft_attachment(
    db: Database,
    blobs: BlobStore,
    project_id: int,
    xml_form_id: str,
    name: str,
    path: Path,
    *,
    sha256: str,
    size: int,
    actor_id: int | None = None,
) -> MediaFile:
    """Upload one media file the draft expects (POST .../draft/attachments/{name})."""
    with db.read() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        draft = _draft(tx, form.id)
        row = (
            tx.exec(
                select(FormAttachment).where(
                    FormAttachment.form_version_id == draft.id, FormAttachment.name == name
                )
            ).first()
            if draft
            else None
        )
    if draft is None:
        raise NotFound("draft")
    if row is None:
        raise NotFound(f"form attachment {name!r} (the draft does not expect it)")
    stored = content.put_path(
        blobs,
        path,
        sha256=sha256,
        size=size,
        content_type=content.guess_type(name),
        md5=_md5_of(path),
    )
    with db.transaction() as tx:
        content.record(tx, stored)
        row = tx.get(FormAttachment, row.id)
        row.blob_sha256, row.updated_at = stored.sha256, utcnow()
        audit.record(
            tx,
            actor_id,
            "form.attachment.update",
            "form",
            form.id,
            {"name": name, "sha256": stored.sha256},
        )
        blob = tx.get(Blob, stored.sha256)
        return MediaFile(row, blob)


def clear_draft_attachment(
    db: Database, project_id: int, xml_form_id: str, name: str, actor_id: int | None = None
) -> None:
    with db.transaction() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        draft = _draft(tx, form.id)
        row = (
            tx.exec(
                select(FormAttachment).where(
                    FormAttachment.form_version_id == draft.id, FormAttachment.name == name
                )
            ).first()
            if draft
            else None
        )
        if row is None or row.blob_sha256 is None:
            raise NotFound("form attachment")
        row.blob_sha256, row.updated_at = None, utcnow()
        audit.record(tx, actor_id, "form.attachment.update", "form", form.id, {"name": name})


def publish_draft(
    db: Database,
    project_id: int,
    xml_form_id: str,
    version: str | None = None,
    actor_id: int | None = None,
) -> FormVersion:
    """Publish the draft, optionally under a new version string (the XML is rewritten)."""
    with db.transaction() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        draft = _draft(tx, form.id)
        if draft is None:
            raise NotFound("draft")
        if version is not None and version != draft.version:
            xml = set_version(draft.xml, version)
            schema = read_xform(xml)
            draft.xml, draft.version = xml, version
            draft.md5, draft.sha256 = hashlib.md5(xml).hexdigest(), hashlib.sha256(xml).hexdigest()
            draft.fields_json = schema.to_json()
        taken = tx.exec(
            select(FormVersion.id).where(
                FormVersion.form_id == form.id,
                FormVersion.version == draft.version,
                FormVersion.published_at.is_not(None),
            )
        ).first()
        if taken is not None:
            raise VersionTaken(
                f"Version {draft.version!r} of form {xml_form_id!r} is already "
                "published; publish with another ?version=."
            )
        current = _current(tx, form.id)
        if current is not None:
            current.is_current = False
            tx.flush()
        draft.published_at, draft.is_current = utcnow(), True
        form.updated_at = utcnow()
        datasets.declare_from_form(tx, project_id, schema_of(draft), actor_id)
        audit.record(
            tx, actor_id, "form.update.publish", "form", form.id, {"version": draft.version}
        )
        return draft


def delete_draft(
    db: Database, project_id: int, xml_form_id: str, actor_id: int | None = None
) -> None:
    with db.transaction() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        draft = _draft(tx, form.id)
        if draft is None:
            raise NotFound("draft")
        for attachment in tx.exec(
            select(FormAttachment).where(FormAttachment.form_version_id == draft.id)
        ):
            tx.delete(attachment)
        tx.delete(draft)
        tx.flush()
        if _current(tx, form.id) is None:
            form.deleted_at = utcnow()  # a form that only ever had this draft goes with it
        audit.record(tx, actor_id, "form.update.draft.delete", "form", form.id, {})


def list_versions(db: Database, project_id: int, xml_form_id: str) -> list[FormVersion]:
    with db.read() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        return list(
            tx.exec(
                select(FormVersion)
                .where(FormVersion.form_id == form.id, FormVersion.published_at.is_not(None))
                .order_by(FormVersion.published_at.desc(), FormVersion.id.desc())
            )
        )


def get_version(db: Database, project_id: int, xml_form_id: str, version: str) -> FormVersion:
    with db.read() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        row = tx.exec(
            select(FormVersion).where(
                FormVersion.form_id == form.id,
                FormVersion.version == version,
                FormVersion.published_at.is_not(None),
            )
        ).first()
    if row is None:
        raise NotFound("form version")
    return row


def delete_form(
    db: Database, project_id: int, xml_form_id: str, actor_id: int | None = None
) -> None:
    with db.transaction() as tx:
        form = locate_form(tx, project_id, xml_form_id)
        form.deleted_at = utcnow()
        audit.record(tx, actor_id, "form.delete", "form", form.id, {})


def get_blob(db: Database, sha256: str) -> Blob:
    with db.read() as tx:
        blob = tx.get(Blob, sha256)
    if blob is None:
        raise NotFound("file")
    return blob


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def get_version_by_id(db: Database, version_id: int) -> FormVersion:
    with db.read() as tx:
        row = tx.get(FormVersion, version_id)
    if row is None:
        raise NotFound("form version")
    return row


def resolve_version(
    db: Database, project_id: int, xml_form_id: str, version: str
) -> tuple[Form, FormVersion]:
    """The form and its published version `version`, in one read."""
    with db.read() as tx:
        return resolve_in(tx, project_id, xml_form_id, version)


def resolve_in(
    tx: Session, project_id: int, xml_form_id: str, version: str
) -> tuple[Form, FormVersion]:
    """`resolve_version` inside a read or transaction the caller holds (the ingest hot path
    checks the app user's assignment in the same read)."""
    row = tx.exec(
        select(Form, FormVersion)
        .join(
            FormVersion,
            (FormVersion.form_id == Form.id)
            & (FormVersion.version == version)
            & FormVersion.published_at.is_not(None),
            isouter=True,
        )
        .where(
            Form.project_id == project_id,
            Form.xml_form_id == xml_form_id,
            Form.deleted_at.is_(None),
        )
    ).first()
    if row is None:
        raise NotFound("form")
    if row[1] is None:
        raise NotFound(f"version {version!r} of form {xml_form_id!r}")
    return row[0], row[1]


_SCHEMAS: dict[tuple[int, str], Schema] = {}


def cached_schema(version: FormVersion) -> Schema:
    """A published version's schema, parsed once per process (a published XForm never
    changes; the key includes its digest all the same)."""
    key = (version.id, version.sha256)
    schema = _SCHEMAS.get(key)
    if schema is None:
        if len(_SCHEMAS) > 1000:
            _SCHEMAS.clear()
        schema = _SCHEMAS[key] = schema_of(version)
    return schema


def binary_paths(version: FormVersion) -> frozenset[str]:
    return cached_schema(version).binary_paths
