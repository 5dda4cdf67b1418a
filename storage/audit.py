"""The audit log: each write records itself here, in the same transaction as the write;
`list_audits` reads it back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from .db import Database
from .errors import InvalidInput
from .models import Audit

MAX_AUDIT_PAGE = 1000


def record(
    tx: Session,
    actor_id: int | None,
    action: str,
    subject_type: str | None = None,
    subject_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    tx.add(
        Audit(
            actor_id=actor_id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            details=details or {},
        )
    )


def list_audits(
    db: Database,
    *,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Audit]:
    """Newest first. `action` is one action ("user.create") or a category ("user" matches
    "user.*"); `start` is inclusive, `end` exclusive."""
    if not 1 <= limit <= MAX_AUDIT_PAGE or offset < 0:
        raise InvalidInput(f"limit must be 1 to {MAX_AUDIT_PAGE} and offset at least 0.")
    query = select(Audit)
    if action:
        query = query.where(
            or_(Audit.action == action, col(Audit.action).startswith(action + ".", autoescape=True))
        )
    if start is not None:
        query = query.where(col(Audit.logged_at) >= start)
    if end is not None:
        query = query.where(col(Audit.logged_at) < end)
    query = query.order_by(col(Audit.logged_at).desc(), col(Audit.id).desc())
    with db.read() as tx:
        return list(tx.exec(query.offset(offset).limit(limit)).all())
