"""The scheduled scan: notices no change raises, for requests somebody is subscribed to.

- Late: the request passed its committed time while someone was subscribed, and has not been
  reported late yet (once per request).
- Reminders to sign: documents awaiting signature 2 working days after they were ready (or after
  the customer subscribed, if later), then every 3 working days, at most 3 times.

Each request is locked (`SKIP LOCKED`) while it is looked at, so notifier replicas scanning at the
same time raise each notice once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import events
from .context import Context
from .models import Document, NotificationEvent, NotificationSubscription, Request
from .timeline import Timeline, shift_days
from .workdays import VN_TZ, working_days_between

FIRST_REMINDER_DAYS = 2
REMINDER_EVERY_DAYS = 3
MAX_REMINDERS = 3
SCAN_BATCH = 500


async def scan(c: Context) -> int:
    """Raise the notices due now; returns how many. Walks every subscribed open request, a batch
    (one transaction) at a time."""
    now = c.clock.now()
    shift = shift_days(c.anchor, now)
    raised, after = 0, 0
    while True:
        async with c.db.write() as s:
            since = (
                select(
                    NotificationSubscription.request_id,
                    func.min(NotificationSubscription.created_at).label("since"),
                )
                .where(NotificationSubscription.stopped_at.is_(None))
                .group_by(NotificationSubscription.request_id)
                .subquery()
            )
            rows = (
                await s.execute(
                    select(Request, since.c.since)
                    .join(since, since.c.request_id == Request.id)
                    .where(Request.completed_at.is_(None), Request.id > after)
                    .order_by(Request.id)
                    .limit(SCAN_BATCH)
                    .with_for_update(skip_locked=True, of=Request)
                )
            ).all()
            for req, subscribed_at in rows:
                raised += await _late(s, req, subscribed_at, shift, now)
                raised += await _reminder(s, req, subscribed_at, shift, now)
        if len(rows) < SCAN_BATCH:
            break
        after = rows[-1][0].id
    if raised:
        logging.getLogger(__name__).info("notice scan raised %d notices", raised)
    return raised


async def _count(s: AsyncSession, request_id: int, kind: str, since: datetime | None = None) -> int:
    query = select(func.count(NotificationEvent.id)).where(
        NotificationEvent.request_id == request_id, NotificationEvent.kind == kind
    )
    if since is not None:
        query = query.where(NotificationEvent.created_at >= since)
    return int((await s.execute(query)).scalar_one())


async def _late(s: AsyncSession, req: Request, subscribed_at: datetime, shift: int, now: datetime) -> int:
    tl = Timeline(req, shift)
    if tl.late_days(now) == 0 or tl.due_at < subscribed_at:
        return 0  # on time, or already late when the customer subscribed (the status said so)
    if await _count(s, req.id, events.REQUEST_LATE):
        return 0
    events.raise_event(s, request_id=req.id, kind=events.REQUEST_LATE, at=now, due_at=tl.due_at.isoformat())
    return 1


async def _reminder(s: AsyncSession, req: Request, subscribed_at: datetime, shift: int, now: datetime) -> int:
    oldest = (
        await s.execute(
            select(func.min(Document.created_at)).where(
                Document.request_id == req.id, Document.status == "awaiting_signature"
            )
        )
    ).scalar()
    if oldest is None:
        return 0
    ready = Timeline(req, shift).ts(oldest)
    assert ready is not None
    start = max(ready, subscribed_at)
    sent = await _count(s, req.id, events.SIGN_REMINDER, since=start)
    if sent >= MAX_REMINDERS:
        return 0
    waited = working_days_between(start.astimezone(VN_TZ).date(), now.astimezone(VN_TZ).date())
    if waited < FIRST_REMINDER_DAYS + REMINDER_EVERY_DAYS * sent:
        return 0
    events.raise_event(s, request_id=req.id, kind=events.SIGN_REMINDER, at=now, number=sent + 1)
    return 1
