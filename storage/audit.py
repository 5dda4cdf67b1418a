"""The audit log: each write records itself here, in the same transaction as the write."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from .models import Audit


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
