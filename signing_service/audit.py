"""Audit trail: one row per state change (who, what, when, channel, document hash).

Who (`actor`) has one format, made only by the functions below: `system` (the service itself),
`staff:<login>` (a staff login, or `staff` when the caller gave none), `customer:<chat channel>:<chat
user>` (`-` for a call without a chat user). Readers (the `/audit` answer, docs/api.md) split on ":".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .models import AuditEvent


def record(
    session: AsyncSession,
    *,
    at: datetime,
    request_id: int | None,
    actor: str,
    action: str,
    channel: str | None = None,
    document_id: int | None = None,
    document_sha256: str | None = None,
    **details: Any,
) -> None:
    """Add an event to the caller's transaction, so it commits (or not) with the change it records."""
    session.add(
        AuditEvent(
            request_id=request_id,
            at=at,
            actor=actor,
            action=action,
            channel=channel,
            document_id=document_id,
            document_sha256=document_sha256,
            details=details,
        )
    )


SYSTEM = "system"
DEFAULT_STAFF_LOGIN = "staff"  # what staff calls record when they name no login


def staff_actor(login: str | None) -> str:
    return f"staff:{login or DEFAULT_STAFF_LOGIN}"


def customer_actor(chat_channel: str, chat_user: str | None) -> str:
    return f"customer:{chat_channel}:{chat_user or '-'}"
