"""Who gets notified, and the fan-out of notification events into deliveries (issue 16).

Subscribing needs a chat user verified for the request; the fan-out skips a subscriber whose
verification has since expired or been revoked, so nothing reaches anyone else. Events are claimed
with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers share them; an event's
deliveries commit with its `dispatched_at`, so a restart never fans it out twice, and the unique
(event, subscription) pair refuses a second delivery should anything try.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import audit, verification
from .context import Context
from .models import NotificationDelivery, NotificationEvent, NotificationSubscription
from .quiet_hours import release_time
from .requests_query import load_request
from .subscriptions import cancel_pending
from .verification import ChatUser

log = logging.getLogger(__name__)
FAN_OUT_BATCH = 200


async def _subscription(s: AsyncSession, request_id: int, who: ChatUser) -> NotificationSubscription | None:
    return (
        await s.execute(
            select(NotificationSubscription).where(
                NotificationSubscription.request_id == request_id,
                NotificationSubscription.chat_channel == who.channel,
                NotificationSubscription.chat_user == who.user,
            )
        )
    ).scalar_one_or_none()


async def subscription_status(c: Context, code: str, who: ChatUser) -> dict[str, Any]:
    async with c.db.read() as s:
        req = await load_request(s, code)
        await verification.require(c, s, req, who)
        sub = await _subscription(s, req.id, who)
    return {"subscribed": sub is not None and sub.stopped_at is None}


async def set_subscribed(c: Context, code: str, who: ChatUser, on: bool) -> dict[str, Any]:
    """Yes to "Nhận thông báo" (on, needs a live verification) or "dừng thông báo" (off, always
    allowed for one's own subscription); idempotent, audited when it changes. Stopping also
    cancels what was queued and not yet sent (held over the night, say)."""
    now = c.clock.now()
    async with c.db.write() as s:
        # Two taps on "Nhận thông báo" at once: the second waits here instead of hitting the unique key.
        req = await load_request(s, code, lock=True)
        if on:
            await verification.require(c, s, req, who)
        sub = await _subscription(s, req.id, who)
        was = sub is not None and sub.stopped_at is None
        if on and sub is None:
            s.add(
                NotificationSubscription(
                    request_id=req.id, chat_channel=who.channel, chat_user=who.user, created_at=now
                )
            )
        elif sub is not None:
            sub.stopped_at = None if on else (sub.stopped_at or now)
            if not on:
                await cancel_pending(s, [sub.id])
        if was != on:
            audit.record(
                s,
                at=now,
                request_id=req.id,
                actor=who.actor,
                action="notifications_on" if on else "notifications_off",
                channel=who.channel,
            )
    return {"subscribed": on, "changed": was != on}


async def fan_out(c: Context, limit: int = FAN_OUT_BATCH) -> int:
    """Turn undispatched events into deliveries for their current, still verified subscribers.
    Returns the number of events dispatched."""
    now = c.clock.now()
    async with c.db.write() as s:
        claimed = (
            (
                await s.execute(
                    select(NotificationEvent)
                    .where(NotificationEvent.dispatched_at.is_(None))
                    .order_by(NotificationEvent.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        if not claimed:
            return 0
        due = release_time(c.settings.quiet_hours, now)
        made = 0
        receivers: dict[int, list[NotificationSubscription]] = {}  # a request's events share them
        for event in claimed:
            if event.request_id not in receivers:
                receivers[event.request_id] = await _receivers(s, event.request_id, now)
            skip = (event.payload or {}).get("skip_channel"), (event.payload or {}).get("skip_user")
            for sub in receivers[event.request_id]:
                if (sub.chat_channel, sub.chat_user) == skip:
                    continue  # the chat where it happened has been told already
                s.add(
                    NotificationDelivery(
                        event_id=event.id,
                        subscription_id=sub.id,
                        state="pending",
                        not_before=due,
                        created_at=now,
                    )
                )
                made += 1
            event.dispatched_at = now
    log.info("notification fan-out: %d events, %d deliveries", len(claimed), made)
    return len(claimed)


async def _receivers(s: AsyncSession, request_id: int, now: datetime) -> list[NotificationSubscription]:
    subs = (
        (
            await s.execute(
                select(NotificationSubscription).where(
                    NotificationSubscription.request_id == request_id,
                    NotificationSubscription.stopped_at.is_(None),
                )
            )
        )
        .scalars()
        .all()
    )
    out = []
    for sub in subs:
        who = ChatUser(sub.chat_channel, sub.chat_user)
        if await verification.active(s, request_id, who, now) is not None:
            out.append(sub)
    return out
