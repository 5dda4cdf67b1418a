"""Entities of an entity list and their versions, created and changed by REST as Central's
`/datasets/{name}/entities` routes do (entities from submissions come later).

A body is read as Central's extractEntity reads it: only `label`, `uuid` and `data`; every
value of `data` a string and a property the list declares; a new entity needs a label; an
update keeps what it does not name. Every change makes a version (1, 2, …); the newest is the
current one. An update names the version it was made from (`baseVersion`) or says `force`:
a stale baseVersion is EntityVersionConflict (409.15). Deleting only marks the entity.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session as Tx
from sqlmodel import col, select

from forms.entities import EntityRow
from forms.odata import timestamp
from forms.odata_filter import Expr

from . import audit
from .datasets import find_list, properties_of
from .db import Database
from .errors import (
    AlreadyExists,
    EntityInvalid,
    EntityVersionConflict,
    MissingParameter,
    NoConflict,
    NotFound,
    UnexpectedAttributes,
    UuidOfDeleted,
    WrongType,
)
from .models import (
    Actor,
    Dataset,
    Entity,
    EntityLink,
    EntityVersion,
    Form,
    Submission,
    SubmissionVersion,
    utcnow,
)
from .odata import filter_where

BODY_KEYS = ["label", "uuid", "data"]
# Entity ids are UUID v4 (the XForms entities spec), optionally written `uuid:…`.
_UUID = re.compile(
    r"(?:uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})", re.I
)
# OData `$filter` names -> columns (Central's odataToColumnMap).
FILTER_COLUMNS: dict[str, Any] = {
    "__id": Entity.uuid,
    "__system/createdAt": Entity.created_at,
    "__system/updatedAt": Entity.updated_at,
    "__system/deletedAt": Entity.deleted_at,
    "__system/creatorId": Entity.creator_id,
    "__system/conflict": Entity.conflict,
}


@dataclass(frozen=True)
class Found:
    """An entity and its current version; `data`, when set, is what to show of the version's
    data (only the list's properties, as Central's GET of one entity)."""

    entity: Entity
    version: EntityVersion
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class Parsed:
    uuid: str
    label: str
    data: dict[str, str]
    received: dict[str, Any]


def normalize_uuid(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MissingParameter("uuid")
    if not isinstance(value, str):
        raise WrongType("uuid", "string")
    match = _UUID.fullmatch(value)
    if match is None:
        raise WrongType("uuid", "valid version 4 UUID")
    return match.group(1).lower()


def parse_body(body: Any, properties: list[str], current: Found | None = None) -> Parsed:
    """A create (`current` None) or update body, as Central's extractEntity."""
    if not isinstance(body, dict):
        raise WrongType("body", "object")
    unexpected = [k for k in body if k not in BODY_KEYS]
    if unexpected:
        raise UnexpectedAttributes(BODY_KEYS, list(body))
    label, data = body.get("label"), body.get("data")
    if current is None:
        uid = normalize_uuid(body["uuid"]) if body.get("uuid") else str(uuidlib.uuid4())
        new_label, values = None, {}
    else:
        uid = current.entity.uuid
        new_label, values = current.version.label, dict(current.version.data)
    if label is not None:
        if not isinstance(label, str):
            raise WrongType("label", "string")
        if not label.strip():
            raise EntityInvalid("Label cannot be blank.")
        new_label = label
    elif current is None:
        raise MissingParameter("label")
    if data is None and label is None:
        raise EntityInvalid("No entity data or label provided.")
    if data is not None and not isinstance(data, dict):
        raise WrongType("data", "object")
    for key, value in (data or {}).items():
        if not isinstance(value, str):
            raise WrongType(key, "string")
        if key not in properties:
            raise EntityInvalid(f"You specified the dataset property [{key}] which does not exist.")
        values[key] = value
    received = {**(data or {}), **({"label": label} if label is not None else {})}
    assert new_label is not None
    return Parsed(uid, new_label, values, received)


# ---- writes ---------------------------------------------------------------------------------


def create(
    db: Database,
    project_id: int,
    list_name: str,
    body: Any,
    *,
    actor_id: int | None = None,
    user_agent: str | None = None,
) -> Found:
    with db.transaction() as tx:
        dataset = find_list(tx, project_id, list_name, lock=True)
        parsed = parse_body(body, _property_names(tx, dataset))
        found = _insert(tx, dataset, [parsed], actor_id, user_agent, None)[0]
        _audit(tx, actor_id, "entity.create", dataset, found)
        return found


def create_many(
    db: Database,
    project_id: int,
    list_name: str,
    entities: Any,
    source: Any,
    *,
    actor_id: int | None = None,
    user_agent: str | None = None,
) -> int:
    """`{"entities": [...], "source": {"name", "size"}}`: all or none are created."""
    if not isinstance(entities, list):
        raise UnexpectedAttributes(["entities: [...]"], ["not an array"])
    if not entities:
        raise UnexpectedAttributes(["entities: [...]"], ["empty array"])
    with db.transaction() as tx:
        dataset = find_list(tx, project_id, list_name, lock=True)
        names = _property_names(tx, dataset)
        parsed = [parse_body(e, names) for e in entities]
        details = bulk_source(source, len(parsed), user_agent)
        _insert(tx, dataset, parsed, actor_id, user_agent, details)
        _audit(tx, actor_id, "entity.bulk.create", dataset, source=details)
        return len(parsed)


def bulk_source(source: Any, count: int, user_agent: str | None) -> dict[str, Any]:
    """The `source` of a bulk create, as Central's extractBulkSource."""
    if not source:
        raise MissingParameter("source")
    if not isinstance(source, dict) or not source.get("name"):
        raise MissingParameter("source.name")
    name, size = source["name"], source.get("size")
    if not isinstance(name, str):
        raise WrongType("name", "string")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int | float)):
        raise WrongType("size", "number")
    return {
        "name": name,
        **({"size": size} if size else {}),
        "count": count,
        "userAgent": user_agent or None,
    }


def update(
    db: Database,
    project_id: int,
    list_name: str,
    entity_uuid: str,
    body: Any,
    *,
    base_version: str | None,
    force: bool,
    resolve: bool = False,
    actor_id: int | None = None,
    user_agent: str | None = None,
) -> Found:
    """A new version from a REST body; with `resolve` the entity's conflict is also marked
    resolved (an empty body only resolves it, as Central's `?resolve=true`)."""
    with db.transaction() as tx:
        dataset = find_list(tx, project_id, list_name, lock=True)
        current = _found(tx, dataset, entity_uuid, for_update=True)
        if resolve and current.entity.conflict is None:
            raise NoConflict()
        version = current.version.version
        if base_version != str(version) and not force:
            raise EntityVersionConflict(version, base_version)
        if resolve and not body:
            return _resolve(tx, dataset, current, actor_id)
        parsed = parse_body(body, _property_names(tx, dataset), current)
        current.version.is_current = False
        tx.add(current.version)
        tx.flush()
        now = utcnow()
        new = new_version(current.entity, version + 1, parsed, actor_id, user_agent, now)
        new.base_version = version
        current.entity.updated_at = now
        tx.add_all([new, current.entity])
        tx.flush()
        updated = Found(current.entity, new)
        _audit(tx, actor_id, "entity.update.version", dataset, updated)
        return _resolve(tx, dataset, updated, actor_id) if resolve else updated


def _resolve(tx: Tx, dataset: Dataset, found: Found, actor_id: int | None) -> Found:
    """Clear the entity's conflict and mark its versions so far resolved."""
    found.entity.conflict = None
    found.entity.updated_at = utcnow()
    tx.add(found.entity)
    for version in tx.exec(select(EntityVersion).where(EntityVersion.entity_id == found.entity.id)):
        version.resolved = True
        tx.add(version)
    tx.flush()
    _audit(tx, actor_id, "entity.update.resolve", dataset, found)
    return found


def delete(
    db: Database, project_id: int, list_name: str, entity_uuid: str, *, actor_id: int | None = None
) -> None:
    with db.transaction() as tx:
        dataset = find_list(tx, project_id, list_name, lock=True)
        found = _found(tx, dataset, entity_uuid, for_update=True)
        found.entity.deleted_at = utcnow()
        tx.add(found.entity)
        _audit(tx, actor_id, "entity.delete", dataset, found)


def link(tx: Tx, submission_id: int, entity_id: int, how: str, actor_id: int | None = None) -> bool:
    """Record that a submission is about an entity (EntityLink's `how`); False when it already
    was (the first reason is kept)."""
    exists = tx.exec(
        select(EntityLink.id).where(
            EntityLink.submission_id == submission_id, EntityLink.entity_id == entity_id
        )
    ).first()
    if exists is not None:
        return False
    tx.add(EntityLink(submission_id=submission_id, entity_id=entity_id, how=how, actor_id=actor_id))
    tx.flush()
    return True


def restore(
    db: Database, project_id: int, list_name: str, entity_uuid: str, *, actor_id: int | None = None
) -> None:
    """Undo a delete (Central's `POST …/entities/{uuid}/restore`); NotFound unless deleted."""
    with db.transaction() as tx:
        dataset = find_list(tx, project_id, list_name, lock=True)
        entity = tx.exec(
            select(Entity).where(
                Entity.dataset_id == dataset.id,
                Entity.uuid == entity_uuid.lower(),
                col(Entity.deleted_at).is_not(None),
            )
        ).first()
        if entity is None:
            raise NotFound("entity")
        entity.deleted_at = None
        tx.add(entity)
        tx.flush()
        version = tx.exec(
            select(EntityVersion).where(
                EntityVersion.entity_id == entity.id, EntityVersion.is_current
            )
        ).one()
        _audit(tx, actor_id, "entity.restore", dataset, Found(entity, version))


# ---- reads ----------------------------------------------------------------------------------


def list_entities(
    db: Database, project_id: int, list_name: str, *, deleted: bool = False
) -> list[Found]:
    """Newest first; `deleted`: the deleted ones instead (as Central's `?deleted=true`)."""
    with db.read() as tx:
        dataset = find_list(tx, project_id, list_name)
        gone = col(Entity.deleted_at).is_not(None) if deleted else col(Entity.deleted_at).is_(None)
        rows = tx.exec(
            _current().where(Entity.dataset_id == dataset.id, gone).order_by(*_newest_first())
        ).all()
        return [Found(e, v) for e, v in rows]


def get_entity(db: Database, project_id: int, list_name: str, entity_uuid: str) -> Found:
    """The entity and its current version, whose data holds only the list's properties."""
    with db.read() as tx:
        dataset = find_list(tx, project_id, list_name)
        found = _found(tx, dataset, entity_uuid)
        names = set(_property_names(tx, dataset))
        data = {k: v for k, v in found.version.data.items() if k in names}
        return Found(found.entity, found.version, data)


def list_versions(
    db: Database, project_id: int, list_name: str, entity_uuid: str
) -> list[EntityVersion]:
    """Every version of a (not deleted) entity, oldest first."""
    with db.read() as tx:
        dataset = find_list(tx, project_id, list_name)
        found = _found(tx, dataset, entity_uuid)
        return list(
            tx.exec(
                select(EntityVersion)
                .where(EntityVersion.entity_id == found.entity.id)
                .order_by(col(EntityVersion.version))
            ).all()
        )


def submission_sources(db: Database, versions: list[EntityVersion]) -> dict[int, dict[str, Any]]:
    """Each submission-made version's source, as Central shows it: the submission's instance
    id, form and submitter."""
    ids = [v.submission_version_id for v in versions if v.submission_version_id is not None]
    if not ids:
        return {}
    with db.read() as tx:
        rows = tx.exec(
            select(SubmissionVersion, Form.xml_form_id, Submission.submitter_id)
            .join(Submission, col(Submission.id) == SubmissionVersion.submission_id)
            .join(Form, col(Form.id) == SubmissionVersion.form_id)
            .where(col(SubmissionVersion.id).in_(ids))
        ).all()
    by_id = {
        sv.id: {
            "submission": {
                "instanceId": sv.instance_id,
                "xmlFormId": xml_form_id,
                "submitterId": submitter_id,
                "createdAt": timestamp(sv.created_at),
            },
        }
        for sv, xml_form_id, submitter_id in rows
    }
    return {
        v.id: by_id[v.submission_version_id]
        for v in versions
        if v.id is not None and v.submission_version_id in by_id
    }


@dataclass(frozen=True)
class Feed:
    """What the Entities feed reads from: the list and its property names (oldest first)."""

    dataset: Dataset
    properties: list[str]


def feed_of(db: Database, project_id: int, list_name: str) -> Feed:
    with db.read() as tx:
        dataset = find_list(tx, project_id, list_name)
        return Feed(dataset, _property_names(tx, dataset))


def feed_where(db: Database, feed: Feed, expr: Expr | None) -> Any:
    """The list's entities matching a `$filter` (deleted ones only when it names deletedAt)."""
    return sa.and_(
        Entity.dataset_id == feed.dataset.id,
        filter_where(expr, db.dialect, FILTER_COLUMNS, Entity.deleted_at),
    )


def feed_count(db: Database, where: Any) -> int:
    with db.read() as tx:
        return int(tx.exec(select(sa.func.count()).select_from(Entity).where(where)).one())


def feed_rows(
    db: Database, where: Any, *, before_id: int | None, offset: int, limit: int | None
) -> list[EntityRow]:
    """Rows newest first (by id, Central's createdAt order), below `before_id` if given."""
    query = (
        select(Entity, EntityVersion, Actor.display_name)
        .join(EntityVersion, col(EntityVersion.entity_id) == Entity.id)
        .join(Actor, col(Actor.id) == Entity.creator_id, isouter=True)
        .where(where, col(EntityVersion.is_current))
    )
    if before_id is not None:
        query = query.where(col(Entity.id) < before_id)
    query = query.order_by(col(Entity.id).desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as tx:
        return [
            EntityRow(
                id=e.id,
                uuid=e.uuid,
                label=v.label,
                data=v.data,
                version=v.version,
                created_at=e.created_at,
                creator_id=e.creator_id,
                creator_name=name,
                updated_at=e.updated_at,
                deleted_at=e.deleted_at,
                conflict=e.conflict,
            )
            for e, v, name in tx.exec(query).all()
        ]


# ---- helpers --------------------------------------------------------------------------------


def _insert(
    tx: Tx,
    dataset: Dataset,
    parsed: list[Parsed],
    actor_id: int | None,
    user_agent: str | None,
    source: dict[str, Any] | None,
) -> list[Found]:
    uuids = [p.uuid for p in parsed]
    taken = tx.exec(
        select(Entity.uuid, Entity.deleted_at).where(
            Entity.dataset_id == dataset.id, col(Entity.uuid).in_(uuids)
        )
    ).all()
    deleted = sorted(u for u, at in taken if at is not None)
    if deleted:
        raise UuidOfDeleted(deleted)
    repeated = next((u for i, u in enumerate(uuids) if u in uuids[:i]), None)
    if taken or repeated is not None:
        raise AlreadyExists("entities", {"uuid": taken[0][0] if taken else repeated})
    now = utcnow()
    entities = [
        Entity(dataset_id=dataset.id, uuid=p.uuid, creator_id=actor_id, created_at=now)
        for p in parsed
    ]
    tx.add_all(entities)
    tx.flush()
    versions = [
        new_version(e, 1, p, actor_id, user_agent, now, source)
        for e, p in zip(entities, parsed, strict=True)
    ]
    tx.add_all(versions)
    tx.flush()
    return [Found(e, v) for e, v in zip(entities, versions, strict=True)]


def new_version(
    entity: Entity,
    number: int,
    parsed: Parsed,
    actor_id: int | None,
    user_agent: str | None,
    now: datetime,
    source: dict[str, Any] | None = None,
) -> EntityVersion:
    assert entity.id is not None
    return EntityVersion(
        entity_id=entity.id,
        version=number,
        label=parsed.label,
        data=parsed.data,
        data_received=parsed.received,
        source=source,
        creator_id=actor_id,
        user_agent=user_agent or None,
        created_at=now,
    )


def _audit(
    tx: Tx,
    actor_id: int | None,
    action: str,
    dataset: Dataset,
    found: Found | None = None,
    source: dict[str, Any] | None = None,
) -> None:
    """An entity change, logged on its list as Central logs it (with the entity's ids)."""
    details: dict[str, Any] = {"entity": {"dataset": dataset.name}}
    if found is not None:
        details["entity"]["uuid"] = found.entity.uuid
        details.update(entityId=found.entity.id, entityDefId=found.version.id)
    if source is not None:
        details["source"] = source
    audit.record(tx, actor_id, action, "dataset", dataset.id, details)


def _current() -> Any:
    return select(Entity, EntityVersion).join(
        EntityVersion, sa.and_(col(EntityVersion.entity_id) == Entity.id, EntityVersion.is_current)
    )


def _newest_first() -> tuple[Any, ...]:
    return col(Entity.created_at).desc(), col(Entity.id).desc()


def _found(tx: Tx, dataset: Dataset, entity_uuid: str, *, for_update: bool = False) -> Found:
    query = _current().where(
        Entity.dataset_id == dataset.id,
        Entity.uuid == entity_uuid.lower(),
        col(Entity.deleted_at).is_(None),
    )
    if for_update:
        query = query.with_for_update(of=Entity)
    row = tx.exec(query).first()
    if row is None:
        raise NotFound("entity")
    return Found(*row)


def _property_names(tx: Tx, dataset: Dataset) -> list[str]:
    return [p.name for p in properties_of(tx, dataset)]
