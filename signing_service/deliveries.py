"""The notifier's side of the delivery table: claim what is due, then record what happened.

A delivery goes pending -> claimed -> sending -> sent | failed, each step committed:
- `claim` takes due rows with `FOR UPDATE SKIP LOCKED` (several notifiers share the table on
  PostgreSQL) and leases them; a notifier that dies leaves leases that `recover` hands back, so a
  restart loses nothing.
- `start` marks one row `sending` just before its API call. A row still `sending` after its lease
  belongs to a notifier that died during the call: the message may have arrived, so `recover` marks
  it `interrupted` rather than send it twice (the desk shows it).
- the daily cap and the quiet hours move `not_before`, never drop a notice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from . import notices
from .context import Context
from .db import rowcount
from .models import (
    ChatVerification,
    NotificationDelivery,
    NotificationEvent,
    NotificationSubscription,
    Request,
)
from .quiet_hours import release_time
from .requests_query import contacts_of
from .timeline import shift_days
from .workdays import VN_TZ

log = logging.getLogger(__name__)
SENDING_LEASE_FACTOR = 3
BACKOFF_BASE_S = 30  # 30 s, 1 min, 2 min, ... at most an hour
BACKOFF_MAX_S = 3600


@dataclass(frozen=True)
class Job:
    """One notice to one chat user, with everything needed to send it."""

    delivery_id: int
    attempts: int
    kind: str
    chat_channel: str
    chat_user: str
    params: dict[str, str]
    phone: str | None  # the registered phone: ZNS and SMS fall-backs
    event_at: datetime
    lease_until: datetime | None = None  # this claim's own mark: a claim taken back and re-made differs


def _lease(c: Context) -> timedelta:
    return timedelta(seconds=c.settings.notify_lease_seconds)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


def _next_morning(c: Context, now: datetime) -> datetime:
    """The start of the next Vietnam day, after the quiet hours if they cover it."""
    local = now.astimezone(VN_TZ)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return release_time(c.settings.quiet_hours, midnight)


async def _sent_today(
    s: AsyncSession, users: set[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], int]:
    """Notices sent today (Vietnam day) or on their way now, per chat user of the batch."""
    local = now.astimezone(VN_TZ)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = await s.execute(
        select(NotificationSubscription.chat_channel, NotificationSubscription.chat_user, func.count())
        .join(NotificationDelivery, NotificationDelivery.subscription_id == NotificationSubscription.id)
        .where(
            NotificationSubscription.chat_user.in_({u for _, u in users}),
            ((NotificationDelivery.state == "sent") & (NotificationDelivery.sent_at >= day_start))
            | NotificationDelivery.state.in_(("sending", "claimed")),
        )
        .group_by(NotificationSubscription.chat_channel, NotificationSubscription.chat_user)
    )
    counts = {(ch, u): int(n) for ch, u, n in rows.all()}
    return {who: counts.get(who, 0) for who in users}


async def _verified(
    s: AsyncSession, pairs: set[tuple[int, str, str]], now: datetime
) -> set[tuple[int, str, str]]:
    """Which (request, channel, user) of the batch hold a live verification (one query)."""
    rows = await s.execute(
        select(ChatVerification.request_id, ChatVerification.chat_channel, ChatVerification.chat_user).where(
            ChatVerification.request_id.in_({r for r, _, _ in pairs}),
            ChatVerification.chat_user.in_({u for _, _, u in pairs}),
            ChatVerification.revoked_at.is_(None),
            ChatVerification.expires_at > now,
        )
    )
    return {(r, ch, u) for r, ch, u in rows.all()} & pairs


async def claim(c: Context, limit: int) -> list[Job]:
    now = c.clock.now()
    shift = shift_days(c.anchor, now)
    jobs: list[Job] = []
    async with c.db.write() as s:
        rows = (
            await s.execute(
                select(NotificationDelivery, NotificationEvent, NotificationSubscription)
                .join(NotificationEvent, NotificationEvent.id == NotificationDelivery.event_id)
                .join(
                    NotificationSubscription,
                    NotificationSubscription.id == NotificationDelivery.subscription_id,
                )
                .where(NotificationDelivery.state == "pending", NotificationDelivery.not_before <= now)
                .order_by(NotificationDelivery.not_before, NotificationDelivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=NotificationDelivery)
            )
        ).all()
        if not rows:
            return []
        # Asked once per batch, not per notice: the fan-out of one event to many chats is the common case.
        used = await _sent_today(s, {(sub.chat_channel, sub.chat_user) for _, _, sub in rows}, now)
        live = await _verified(
            s, {(sub.request_id, sub.chat_channel, sub.chat_user) for _, _, sub in rows}, now
        )
        requests: dict[int, tuple[Request, dict[str, str]]] = {}
        said: dict[int, dict[str, str] | None] = {}  # what each event says, for all its subscribers
        for delivery, event, sub in rows:
            who = (sub.chat_channel, sub.chat_user)
            if used[who] >= c.settings.notify_daily_cap:
                delivery.not_before = _next_morning(c, now)
                continue
            if sub.stopped_at is not None or (sub.request_id, *who) not in live:
                _close(delivery, "cancelled", "not_subscribed", now)
                continue
            if event.request_id not in requests:
                req = await s.get(Request, event.request_id)
                assert req is not None
                requests[event.request_id] = (req, await contacts_of(s, req.id))
            req, contacts = requests[event.request_id]
            if event.id not in said:
                said[event.id] = await notices.params(s, req, event.kind, event.payload or {}, shift, now)
            values = said[event.id]
            if values is None:
                _close(delivery, "cancelled", "outdated", now)
                continue
            used[who] += 1
            delivery.state = "claimed"
            delivery.lease_until = lease = now + _lease(c)
            jobs.append(
                Job(
                    delivery_id=delivery.id,
                    attempts=delivery.attempts,
                    kind=event.kind,
                    chat_channel=sub.chat_channel,
                    chat_user=sub.chat_user,
                    params=values,
                    phone=contacts.get("sms"),
                    event_at=event.created_at,
                    lease_until=lease,
                )
            )
    return jobs


def _close(delivery: NotificationDelivery, state: str, reason: str, now: datetime) -> None:
    delivery.state = state
    delivery.last_error = reason
    delivery.lease_until = None


async def start(c: Context, job: Job) -> bool:
    """Just before the API call. False: the lease was lost (another notifier took the notice back,
    and may have claimed it again: the lease mark tells the two claims apart)."""
    now = c.clock.now()
    async with c.db.write() as s:
        done = await s.execute(
            update(NotificationDelivery)
            .where(
                NotificationDelivery.id == job.delivery_id,
                NotificationDelivery.state == "claimed",
                NotificationDelivery.lease_until == job.lease_until,
            )
            # A call chain (Zalo, its retries, ZNS, SMS) may take minutes: the sending lease is longer.
            .values(state="sending", lease_until=now + SENDING_LEASE_FACTOR * _lease(c))
            .execution_options(synchronize_session=False)
        )
    return rowcount(done) == 1


async def finish(c: Context, job: Job, outcome: str, via: str | None, error: str | None = None) -> str:
    """outcome: sent | retry | failed | uncertain (the call may have arrived: not repeated, shown
    as interrupted). A retry past NOTIFY_MAX_ATTEMPTS fails. Returns the state."""
    now = c.clock.now()
    attempts = job.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "lease_until": None, "via": via, "last_error": error}
    if outcome == "sent":
        values.update(state="sent", sent_at=now)
    elif outcome == "retry" and attempts < c.settings.notify_max_attempts:
        values.update(
            state="pending", not_before=release_time(c.settings.quiet_hours, now + backoff(attempts))
        )
    elif outcome == "uncertain":
        values.update(state="interrupted")
    else:
        values.update(state="failed")
    async with c.db.write() as s:
        await s.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == job.delivery_id, NotificationDelivery.state == "sending")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return str(values["state"])


async def release(c: Context, jobs: list[Job]) -> None:
    """Claimed but never started (the notifier is stopping): back to pending at once, unless
    another notifier has taken it since (its lease mark differs)."""
    async with c.db.write() as s:
        for job in jobs:
            await s.execute(
                update(NotificationDelivery)
                .where(
                    NotificationDelivery.id == job.delivery_id,
                    NotificationDelivery.state == "claimed",
                    NotificationDelivery.lease_until == job.lease_until,
                )
                .values(state="pending", lease_until=None)
                .execution_options(synchronize_session=False)
            )


async def recover(c: Context) -> tuple[int, int]:
    """Expired leases of notifiers that died: (claimed returned to pending, sending interrupted)."""
    now = c.clock.now()
    async with c.db.write() as s:
        back = await s.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.state == "claimed", NotificationDelivery.lease_until < now)
            .values(state="pending", lease_until=None)
            .execution_options(synchronize_session=False)
        )
        lost = await s.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.state == "sending", NotificationDelivery.lease_until < now)
            .values(state="interrupted", lease_until=None, last_error="notifier_stopped_during_call")
            .execution_options(synchronize_session=False)
        )
    pending, interrupted = rowcount(back), rowcount(lost)
    if pending or interrupted:
        log.warning(
            "recovered expired leases: %d back to pending, %d interrupted during their call",
            pending,
            interrupted,
        )
    return pending, interrupted


async def for_chat_user(c: Context, channel: str, user: str, limit: int = 50) -> list[dict[str, Any]]:
    """The desk's view of one conversation's notices: what, when, by what, and how it went."""
    async with c.db.read() as s:
        rows = (
            await s.execute(
                select(NotificationDelivery, NotificationEvent.kind, NotificationEvent.created_at)
                .join(NotificationEvent, NotificationEvent.id == NotificationDelivery.event_id)
                .join(
                    NotificationSubscription,
                    and_(
                        NotificationSubscription.id == NotificationDelivery.subscription_id,
                        NotificationSubscription.chat_channel == channel,
                        NotificationSubscription.chat_user == user,
                    ),
                )
                .order_by(NotificationDelivery.id.desc())
                .limit(limit)
            )
        ).all()
    return [
        {
            "id": d.id,
            "kind": kind,
            "event_at": at.astimezone(VN_TZ).isoformat(),
            "state": d.state,
            "via": d.via,
            "attempts": d.attempts,
            "not_before": d.not_before.astimezone(VN_TZ).isoformat(),
            "sent_at": d.sent_at.astimezone(VN_TZ).isoformat() if d.sent_at else None,
            "error": d.last_error,
        }
        for d, kind, at in rows
    ]
