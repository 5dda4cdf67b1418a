"""Login throttling: failed password logins are recorded and counted per email and per client.

A login is refused (before its password is even checked) while the email has EMAIL_LIMIT or
more failures within WINDOW, or the client address has CLIENT_LIMIT or more. Refused attempts
are not recorded, so the lock lifts WINDOW after the failures that caused it; a success clears
nothing (one person's good login never wipes an attacker's record). These functions take an
open transaction; `users.log_in` composes them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlmodel import Session as Tx
from sqlmodel import col, delete, select

from .models import LoginAttempt, utcnow

EMAIL_LIMIT = 5  # failures of one email within WINDOW
CLIENT_LIMIT = 20  # failures from one client address within WINDOW
WINDOW = timedelta(minutes=15)
KEEP = timedelta(days=1)  # failures older than this are deleted as new ones arrive


def wait_seconds(tx: Tx, email: str, client: str, now: datetime | None = None) -> int | None:
    """Seconds until this email and client may try again, or None when they may try now."""
    now = now or utcnow()
    until = max(
        (
            t
            for t in (
                _locked_until(tx, LoginAttempt.email == email, EMAIL_LIMIT, now),
                _locked_until(tx, LoginAttempt.client == client, CLIENT_LIMIT, now),
            )
            if t is not None
        ),
        default=None,
    )
    if until is None or until <= now:
        return None
    return max(1, math.ceil((until - now).total_seconds()))


def record_failure(tx: Tx, email: str, client: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    tx.exec(delete(LoginAttempt).where(col(LoginAttempt.at) < now - KEEP))
    tx.add(LoginAttempt(email=email, client=client, at=now))


def _locked_until(tx: Tx, match: object, limit: int, now: datetime) -> datetime | None:
    """The lock lasts until the limit-th newest failure in the window leaves the window."""
    at = tx.exec(
        select(LoginAttempt.at)
        .where(match, col(LoginAttempt.at) > now - WINDOW)
        .order_by(col(LoginAttempt.at).desc())
        .offset(limit - 1)
        .limit(1)
    ).first()
    return at + WINDOW if at is not None else None
