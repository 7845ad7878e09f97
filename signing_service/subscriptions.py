"""Stopping notification subscriptions (no imports of the flows that call it: verification's
unlink and erasure use it, as do the notifications themselves)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import NotificationDelivery, NotificationSubscription


class ChatUserLike(Protocol):
    @property
    def channel(self) -> str: ...

    @property
    def user(self) -> str: ...


async def cancel_pending(s: AsyncSession, subscription_ids: list[int]) -> None:
    if subscription_ids:
        await s.execute(
            update(NotificationDelivery)
            .where(
                NotificationDelivery.subscription_id.in_(subscription_ids),
                # claimed too: a notifier holding it cannot start it then (its start needs "claimed")
                NotificationDelivery.state.in_(("pending", "claimed")),
            )
            .values(state="cancelled")
            .execution_options(synchronize_session=False)
        )


async def stop_for_chat_user(
    s: AsyncSession, request_id: int, who: ChatUserLike | None, now: datetime
) -> None:
    """On "hủy liên kết" (one chat user) or staff revoking every chat user (who None): the
    subscriptions stop, so notices do not resume if the person verifies again months later."""
    query = select(NotificationSubscription).where(
        NotificationSubscription.request_id == request_id, NotificationSubscription.stopped_at.is_(None)
    )
    if who is not None:
        query = query.where(
            NotificationSubscription.chat_channel == who.channel,
            NotificationSubscription.chat_user == who.user,
        )
    subs = (await s.execute(query)).scalars().all()
    for sub in subs:
        sub.stopped_at = now
    await cancel_pending(s, [sub.id for sub in subs])
