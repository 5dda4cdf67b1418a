"""A submission's history for people: who did what and when (its audit entries and the entity
versions it made), and who wrote each comment, with the actors' display names.

Entity versions are audited on their entity list (`subject_type` "dataset"), not on the
submission; they are found here through `entity_version.submission_version_id` instead of the
audit's JSON details, so one indexed join serves SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import select

from .db import Database
from .models import (
    Actor,
    Audit,
    Comment,
    Dataset,
    Entity,
    EntityVersion,
    SubmissionVersion,
    aware,
)

#: Actions of entity versions a submission made (an audit's action names, as Central's).
ENTITY_CREATE = "entity.create"
ENTITY_UPDATE = "entity.update.version"


@dataclass(frozen=True)
class Event:
    """One thing that happened to a submission. `actor` is a display name (None: no one
    known, e.g. an anonymous web-form sender or the server itself)."""

    at: datetime
    action: str
    actor: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CommentEntry:
    body: str
    at: datetime
    author: str | None


def actor_names(db: Database, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    with db.read() as tx:
        return dict(tx.exec(select(Actor.id, Actor.display_name).where(Actor.id.in_(wanted))).all())


def comments(db: Database, submission_id: int) -> list[CommentEntry]:
    """The submission's comments with their authors' names, newest first."""
    with db.read() as tx:
        rows = tx.exec(
            select(Comment.body, Comment.created_at, Actor.display_name)
            .join(Actor, Actor.id == Comment.actor_id, isouter=True)
            .where(Comment.submission_id == submission_id)
            .order_by(Comment.id.desc())
        ).all()
    return [CommentEntry(body, aware(at), name) for body, at, name in rows]


def events(db: Database, submission_id: int) -> list[Event]:
    """Audit entries about the submission and the entity versions its versions made (their
    `details`: `label`, `list`, `version`, `uuid`), newest first. An `entity.link` entry gets
    the innovation's current `label` added."""
    with db.read() as tx:
        audits = tx.exec(
            select(Audit, Actor.display_name)
            .join(Actor, Actor.id == Audit.actor_id, isouter=True)
            .where(Audit.subject_type == "submission", Audit.subject_id == submission_id)
            .order_by(Audit.id.desc())
        ).all()
        made = tx.exec(
            select(EntityVersion, Entity.uuid, Dataset.name, Actor.display_name)
            .join(SubmissionVersion, SubmissionVersion.id == EntityVersion.submission_version_id)
            .join(Entity, Entity.id == EntityVersion.entity_id)
            .join(Dataset, Dataset.id == Entity.dataset_id)
            .join(Actor, Actor.id == EntityVersion.creator_id, isouter=True)
            .where(SubmissionVersion.submission_id == submission_id)
        ).all()
        linked = sorted(
            {
                entity_id
                for audit, _ in audits
                if isinstance(entity_id := (audit.details or {}).get("entityId"), int)
            }
        )
        labels = (
            dict(
                tx.exec(
                    select(EntityVersion.entity_id, EntityVersion.label).where(
                        EntityVersion.entity_id.in_(linked), EntityVersion.is_current
                    )
                ).all()
            )
            if linked
            else {}
        )
    out = []
    for audit, name in audits:
        details = dict(audit.details or {})
        if details.get("entityId") in labels:
            details["label"] = labels[details["entityId"]]
        out.append(Event(aware(audit.logged_at), audit.action, name, details))
    for version, uuid, list_name, name in made:
        out.append(
            Event(
                aware(version.created_at),
                ENTITY_CREATE if version.version == 1 else ENTITY_UPDATE,
                name,
                {
                    "label": version.label,
                    "list": list_name,
                    "version": version.version,
                    "uuid": uuid,
                },
            )
        )
    return sorted(out, key=lambda e: e.at, reverse=True)
