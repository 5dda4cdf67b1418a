"""/v1/audits: the server's audit log, newest first (admins)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import get

from storage import audit
from storage.errors import InvalidInput
from storage.models import Audit

from ..deps import DB, Caller, QueryParameter
from ..guards import requires
from .schemas import Wire


class AuditOut(Wire):
    actor_id: int | None
    action: str
    actee_id: int | None
    details: dict[str, Any]
    logged_at: datetime

    @classmethod
    def of(cls, entry: Audit) -> AuditOut:
        return cls(
            actor_id=entry.actor_id,
            action=entry.action,
            actee_id=entry.subject_id,
            details=entry.details or {},
            logged_at=entry.logged_at,
        )


@get(
    "/audits",
    guards=[requires(admin=True)],
    sync_to_thread=True,
    tags=["Audits"],
    summary="The audit log (admins); filter by action or category, start and end dates",
)
def list_audits(
    db: DB,
    caller: Caller,
    action: Annotated[str | None, QueryParameter(name="action")] = None,
    start: Annotated[str | None, QueryParameter(name="start")] = None,
    end: Annotated[str | None, QueryParameter(name="end")] = None,
    limit: Annotated[int, QueryParameter(name="limit")] = 100,
    offset: Annotated[int, QueryParameter(name="offset")] = 0,
) -> list[AuditOut]:
    entries = audit.list_audits(
        db,
        action=action,
        start=_moment(start, "start"),
        end=_moment(end, "end"),
        limit=limit,
        offset=offset,
    )
    return [AuditOut.of(entry) for entry in entries]


def _moment(text: str | None, which: str) -> datetime | None:
    """An ISO date or date-time (UTC when no zone is given). A bare `end` date includes that
    whole day: the storage bound is exclusive, so it becomes the next midnight."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{which} must be an ISO date or date-time, like 2024-05-31.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if which == "end" and len(text.strip()) == 10:
        when += timedelta(days=1)
    return when


HANDLERS = [list_audits]
