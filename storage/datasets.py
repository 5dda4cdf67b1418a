"""Entity lists (Central's datasets) of a project and their properties.

Created by REST, as Central's `POST /datasets` and `POST /datasets/{name}/properties`; each
name is unique in its project (lists) or list (properties), also ignoring case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session as Tx
from sqlmodel import col, select

from forms.entities import valid_list_name, valid_property_name

from . import audit
from .db import Database
from .errors import AlreadyExists, InvalidInput, ListNameClash, NotFound
from .models import Audit, Dataset, DatasetProperty, Project


@dataclass(frozen=True)
class EntityList:
    dataset: Dataset
    properties: list[DatasetProperty]
    last_update: datetime | None


def list_lists(db: Database, project_id: int) -> list[Dataset]:
    with db.read() as tx:
        _project(tx, project_id)
        return list(
            tx.exec(select(Dataset).where(Dataset.project_id == project_id).order_by(Dataset.name))
        )


def get_list(db: Database, project_id: int, name: str) -> EntityList:
    with db.read() as tx:
        dataset = find_list(tx, project_id, name)
        properties = properties_of(tx, dataset)
        last_update = tx.exec(
            select(sa.func.max(Audit.logged_at)).where(
                Audit.subject_type == "dataset", Audit.subject_id == dataset.id
            )
        ).one()
        return EntityList(dataset, properties, last_update)


def create_list(
    db: Database,
    project_id: int,
    name: str,
    *,
    approval_required: bool = False,
    actor_id: int | None = None,
) -> EntityList:
    if not valid_list_name(name):
        raise InvalidInput(f"{name!r} is not a valid entity list name.")
    with db.transaction() as tx:
        _project(tx, project_id)
        same = tx.exec(
            select(Dataset).where(
                Dataset.project_id == project_id,
                sa.func.lower(Dataset.name) == name.lower(),
            )
        ).first()
        if same is not None and same.name == name:
            raise AlreadyExists("datasets", {"name": name, "projectId": project_id})
        if same is not None:
            raise ListNameClash(same.name, name)
        dataset = Dataset(project_id=project_id, name=name, approval_required=approval_required)
        tx.add(dataset)
        tx.flush()
        audit.record(tx, actor_id, "dataset.create", "dataset", dataset.id, {"properties": []})
    return get_list(db, project_id, name)


def add_property(
    db: Database, project_id: int, list_name: str, name: str, *, actor_id: int | None = None
) -> DatasetProperty:
    if not valid_property_name(name):
        raise InvalidInput(f"{name!r} is not a valid property name.")
    with db.transaction() as tx:
        dataset = find_list(tx, project_id, list_name)
        same = tx.exec(
            select(DatasetProperty).where(
                DatasetProperty.dataset_id == dataset.id,
                sa.func.lower(DatasetProperty.name) == name.lower(),
            )
        ).first()
        if same is not None:
            raise AlreadyExists("ds_properties", {"name": same.name, "datasetId": dataset.id})
        prop = DatasetProperty(dataset_id=dataset.id, name=name)
        tx.add(prop)
        tx.flush()
        audit.record(tx, actor_id, "dataset.update", "dataset", dataset.id, {"properties": [name]})
        return prop


def _project(tx: Tx, project_id: int) -> Project:
    project = tx.get(Project, project_id)
    if project is None:
        raise NotFound("project")
    return project


def find_list(tx: Tx, project_id: int, name: str) -> Dataset:
    """The project's entity list of that name, or NotFound."""
    dataset = tx.exec(
        select(Dataset).where(Dataset.project_id == project_id, col(Dataset.name) == name)
    ).first()
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
