"""Notification events (the transactional outbox of issue 16): what a subscribed customer may be told.

`raise_event` adds the row to the caller's session, so it commits with the change it describes or not
at all: a crash between the change and the event cannot lose one or invent one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from .models import NotificationEvent

STEP_CHANGED: Final = "step_changed"
REQUEST_COMPLETED: Final = "request_completed"
DOCUMENTS_READY: Final = "documents_ready"
AMENDMENT_ANSWERED: Final = "amendment_answered"
SIGNED_COPIES: Final = "signed_copies"
# Raised by the scheduled scan (notice_scan.py), not by a change.
REQUEST_LATE: Final = "request_late"
SIGN_REMINDER: Final = "sign_reminder"
KINDS: Final = frozenset(
    {
        STEP_CHANGED,
        REQUEST_COMPLETED,
        DOCUMENTS_READY,
        AMENDMENT_ANSWERED,
        SIGNED_COPIES,
        REQUEST_LATE,
        SIGN_REMINDER,
    }
)


def raise_event(
    session: AsyncSession, *, request_id: int, kind: str, at: datetime, **payload: Any
) -> NotificationEvent:
    if kind not in KINDS:
        raise ValueError(f"unknown notification event {kind!r}")
    event = NotificationEvent(request_id=request_id, kind=kind, payload=payload, created_at=at)
    session.add(event)
    return event
