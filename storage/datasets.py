"""Entity lists (Central's datasets) of a project and their properties.

Created by REST, as Central's `POST /datasets` and `POST /datasets/{name}/properties`, or by
publishing a form that saves entities (`declare_from_form`); each name is unique in its
project (lists) or list (properties), also ignoring case. Which forms fill a list (source),
save to a property, or read the list as `LIST.csv` (linked) is read from the forms' schemas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session as Tx
from sqlmodel import col, select

from forms.entities import valid_list_name, valid_property_name
from forms.xform import Schema

from . import audit
from .db import Database
from .errors import AlreadyExists, InvalidInput, ListNameClash, NotFound, PendingSubmissions
from .models import (
    Audit,
    Dataset,
    DatasetProperty,
    Entity,
    Form,
    FormVersion,
    Project,
    aware,
)


@dataclass(frozen=True)
class FormRef:
    xml_form_id: str
    name: str


@dataclass(frozen=True)
class FormUse:
    """The forms that use a list: published and draft, as sources and as readers."""

    source: list[FormRef] = field(default_factory=list)
    linked: list[FormRef] = field(default_factory=list)
    draft_source: list[FormRef] = field(default_factory=list)
    draft_linked: list[FormRef] = field(default_factory=list)
    by_property: dict[str, list[FormRef]] = field(default_factory=dict)


@dataclass(frozen=True)
class EntityList:
    dataset: Dataset
    properties: list[DatasetProperty]
    last_update: datetime | None
    forms: FormUse = field(default_factory=FormUse)


@dataclass(frozen=True)
class ListCounts:
    entities: int = 0
    last_entity: datetime | None = None
    conflicts: int = 0


def list_lists(db: Database, project_id: int) -> list[Dataset]:
    with db.read() as tx:
        _project(tx, project_id)
        return list(
            tx.exec(select(Dataset).where(Dataset.project_id == project_id).order_by(Dataset.name))
        )


def counts(db: Database, project_id: int) -> dict[int, ListCounts]:
    """Per list: its (not deleted) entities, the newest one's time and those in conflict."""
    with db.read() as tx:
        rows = tx.exec(
            select(
                Entity.dataset_id,
                sa.func.count(),
                sa.func.max(Entity.created_at),
                sa.func.count(Entity.conflict),
            )
            .join(Dataset, col(Dataset.id) == Entity.dataset_id)
            .where(Dataset.project_id == project_id, col(Entity.deleted_at).is_(None))
            .group_by(Entity.dataset_id)
        ).all()
    return {
        dataset_id: ListCounts(n, aware(last) if last else None, conflicts)
        for dataset_id, n, last, conflicts in rows
    }


def get_list(db: Database, project_id: int, name: str) -> EntityList:
    with db.read() as tx:
        dataset = find_list(tx, project_id, name)
        properties = properties_of(tx, dataset)
        return EntityList(dataset, properties, last_update(tx, dataset), _form_use(tx, dataset))


def last_update(tx: Tx, dataset: Dataset) -> datetime | None:
    """The time of the list's newest audit event: any change to it or to its entities."""
    assert dataset.id is not None
    return latest_audits(tx, [dataset.id]).get(dataset.id)


def latest_audits(tx: Tx, dataset_ids: list[int]) -> dict[int, datetime]:
    """Each list's newest audit time (one index range per list, audit_subject_idx).

    Writers of a list's entities lock the list first (`find_list(lock=True)`), so these
    times follow commit order: a change never commits with a time older than one already
    seen, and a phone comparing this time never misses it."""
    if not dataset_ids:
        return {}
    rows = tx.exec(
        select(Audit.subject_id, sa.func.max(Audit.logged_at))
        .where(Audit.subject_type == "dataset", col(Audit.subject_id).in_(dataset_ids))
        .group_by(Audit.subject_id)
    ).all()
    return {int(subject): aware(at) for subject, at in rows if subject is not None and at}


def set_approval_required(
    db: Database,
    project_id: int,
    name: str,
    required: bool,
    *,
    convert: bool | None = None,
    actor_id: int | None = None,
) -> EntityList:
    """Turning approval off while submissions wait for it needs `convert`: True makes their
    entities now, False leaves them without (PendingSubmissions when it is not given)."""
    from . import entity_submissions  # it reads lists through this module

    with db.transaction() as tx:
        dataset = find_list(tx, project_id, name)
        if dataset.approval_required and not required:
            if convert is None:
                waiting = len(entity_submissions.pending(tx, dataset))
                if waiting:
                    raise PendingSubmissions(waiting)
        if dataset.approval_required != required:
            dataset.approval_required = required
            tx.add(dataset)
            tx.flush()
            audit.record(
                tx,
                actor_id,
                "dataset.update",
                "dataset",
                dataset.id,
                {"data": {"approvalRequired": required}},
            )
            if not required and convert:
                entity_submissions.convert_pending(tx, dataset, actor_id)
    return get_list(db, project_id, name)


def _form_use(tx: Tx, dataset: Dataset) -> FormUse:
    """Read from the schemas of the project's forms' current and draft versions."""
    from .forms import cached_schema  # storage.forms imports this module

    use = FormUse()
    rows = tx.exec(
        select(Form, FormVersion)
        .join(FormVersion, col(FormVersion.form_id) == Form.id)
        .where(
            Form.project_id == dataset.project_id,
            col(Form.deleted_at).is_(None),
            sa.or_(col(FormVersion.is_current), col(FormVersion.published_at).is_(None)),
        )
        .order_by(Form.xml_form_id)
    ).all()
    csv_name = f"{dataset.name}.csv"
    for form, version in rows:
        schema = cached_schema(version)
        ref = FormRef(form.xml_form_id, version.title or form.xml_form_id)
        draft = version.published_at is None
        decls = [d for d in schema.entities if d.dataset == dataset.name]
        if decls:
            (use.draft_source if draft else use.source).append(ref)
        if any(m.name == csv_name for m in schema.media):
            (use.draft_linked if draft else use.linked).append(ref)
        if not draft:
            for decl in decls:
                for prop in decl.properties:
                    use.by_property.setdefault(prop, []).append(ref)
    return use


def create_list(
    db: Database,
    project_id: int,
    name: str,
    *,
    approval_required: bool = False,
    actor_id: int | None = None,
) -> EntityList:
    with db.transaction() as tx:
        _project(tx, project_id)
        same = _same_name(tx, project_id, name)
        if same is not None and same.name == name:
            raise AlreadyExists("datasets", {"name": name, "projectId": project_id})
        _new_list(tx, project_id, name, same, approval_required, actor_id)
    return get_list(db, project_id, name)


def add_property(
    db: Database, project_id: int, list_name: str, name: str, *, actor_id: int | None = None
) -> DatasetProperty:
    with db.transaction() as tx:
        dataset = find_list(tx, project_id, list_name)
        same = _same_property(tx, dataset, name)
        if same is not None:
            raise AlreadyExists("ds_properties", {"name": same.name, "datasetId": dataset.id})
        prop = _new_properties(tx, dataset, [name], actor_id)[0]
        return prop


def ensure_list(
    db: Database,
    project_id: int,
    name: str,
    properties: list[str] | tuple[str, ...],
    *,
    actor_id: int | None = None,
) -> tuple[bool, list[str]]:
    """The list `name` with at least these properties: made when missing, its missing
    properties added (as `create_list` and `add_property` would, audits included). Returns
    (made now, properties added now); a second call changes nothing, so the list's hash stays.
    A list whose name differs only in case is ListNameClash, as for `create_list`."""
    with db.transaction() as tx:
        _project(tx, project_id)
        same = _same_name(tx, project_id, name)
        made = same is None or same.name != name
        dataset = _new_list(tx, project_id, name, same, False, actor_id) if made else same
        assert dataset is not None
        known = {p.name.lower() for p in properties_of(tx, dataset)}
        added = [n for n in dict.fromkeys(properties) if n.lower() not in known]
        if added:
            _new_properties(tx, dataset, added, actor_id)
    return made, added


def check_declarations(schema: Schema) -> None:
    """A form's entity declarations name valid lists and properties (InvalidInput if not),
    checked before anything of the form is stored, draft or published."""
    for decl in schema.entities:
        if not valid_list_name(decl.dataset):
            raise InvalidInput(
                f"The form saves entities to {decl.dataset!r}, which is not a valid entity "
                "list name."
            )
        for name in decl.properties:
            if not valid_property_name(name):
                raise InvalidInput(
                    f"The form saves {name!r} to the entity list {decl.dataset!r}; that is "
                    "not a valid property name."
                )


def declare_from_form(tx: Tx, project_id: int, schema: Schema, actor_id: int | None) -> list[str]:
    """Publishing a form that saves entities creates its lists and their new properties, as
    Central does. Returns warnings for an existing list the form changes (new properties)."""
    warnings = []
    for decl in schema.entities:
        same = _same_name(tx, project_id, decl.dataset)
        if same is not None and same.name == decl.dataset:
            dataset, existed = same, True
        else:
            dataset, existed = _new_list(tx, project_id, decl.dataset, same, False, actor_id), False
        known = {p.name.lower() for p in properties_of(tx, dataset)}
        added = [n for n in decl.properties if n.lower() not in known]
        if added:
            _new_properties(tx, dataset, added, actor_id)
        if existed and added:
            warnings.append(
                f"This form adds the properties {', '.join(added)} to the entity list "
                f"{dataset.name!r}."
            )
    return warnings


def _same_name(tx: Tx, project_id: int, name: str) -> Dataset | None:
    return tx.exec(
        select(Dataset).where(
            Dataset.project_id == project_id, sa.func.lower(Dataset.name) == name.lower()
        )
    ).first()


def _same_property(tx: Tx, dataset: Dataset, name: str) -> DatasetProperty | None:
    return tx.exec(
        select(DatasetProperty).where(
            DatasetProperty.dataset_id == dataset.id,
            sa.func.lower(DatasetProperty.name) == name.lower(),
        )
    ).first()


def _new_list(
    tx: Tx,
    project_id: int,
    name: str,
    same: Dataset | None,
    approval_required: bool,
    actor_id: int | None,
) -> Dataset:
    if not valid_list_name(name):
        raise InvalidInput(f"{name!r} is not a valid entity list name.")
    if same is not None:
        raise ListNameClash(same.name, name)
    dataset = Dataset(project_id=project_id, name=name, approval_required=approval_required)
    tx.add(dataset)
    tx.flush()
    audit.record(tx, actor_id, "dataset.create", "dataset", dataset.id, {"properties": []})
    return dataset


def _new_properties(
    tx: Tx, dataset: Dataset, names: list[str], actor_id: int | None
) -> list[DatasetProperty]:
    for name in names:
        if not valid_property_name(name):
            raise InvalidInput(f"{name!r} is not a valid property name.")
    props = [DatasetProperty(dataset_id=dataset.id, name=name) for name in names]
    tx.add_all(props)
    tx.flush()
    audit.record(tx, actor_id, "dataset.update", "dataset", dataset.id, {"properties": names})
    return props


def _project(tx: Tx, project_id: int) -> Project:
    project = tx.get(Project, project_id)
    if project is None:
        raise NotFound("project")
    return project


def find_list(tx: Tx, project_id: int, name: str, *, lock: bool = False) -> Dataset:
    """The project's entity list of that name, or NotFound. `lock` (PostgreSQL): for writing
    its entities, one transaction at a time (see `latest_audits`)."""
    query = select(Dataset).where(Dataset.project_id == project_id, col(Dataset.name) == name)
    dataset = tx.exec(query.with_for_update() if lock else query).first()
    if dataset is None:
        raise NotFound("entity list")
    return dataset


def properties_of(tx: Tx, dataset: Dataset) -> list[DatasetProperty]:
    """A list's properties in the order they were added."""
    return list(
        tx.exec(
            select(DatasetProperty)
            .where(DatasetProperty.dataset_id == dataset.id)
            .order_by(DatasetProperty.published_at, DatasetProperty.id)
        ).all()
    )
