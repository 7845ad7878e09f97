"""Where a waiting customer stands: their place in the queue and how long they may still wait.

Asked by the bot when a customer in the queue writes "tôi đợi bao lâu nữa?" (bot/actions/queue_wait.py
through `GET /api/queue/position`). The estimate comes from what the desk has done lately, not from a
promise: with at least MIN_CLAIMS conversations taken from the queue in the last RECENT seconds, the
customer at place p can expect about p × (RECENT / claims) seconds, less what they have already waited
beyond their share (never below a minute); with fewer, the median wait of the recent claims; with none,
no figure (the bot says it cannot estimate). Agents available now are counted so the bot can say that
nobody is on duty instead of giving a figure nobody will meet.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db, presence
from agent_desk.config import Settings

RECENT = 3600.0  # seconds of history the estimate looks at
MIN_CLAIMS = 3  # claims in that hour needed to use the desk's pace
MIN_ESTIMATE = 60.0


@dataclass(frozen=True)
class QueuePlace:
    status: str  # "waiting", "active" (an agent has it) or "none" (not in the queue)
    position: int | None = None  # 1 = next to be taken
    waiting_total: int = 0
    waited_s: float = 0.0
    agents_available: int = 0
    expected_wait_s: float | None = None  # None: not enough history to say
    timeout_in_s: float | None = None  # when the queue gives up on them (utter_handoff_timeout)

    def as_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "position": self.position,
            "waiting_total": self.waiting_total,
            "waited_s": round(self.waited_s),
            "agents_available": self.agents_available,
            "expected_wait_s": None if self.expected_wait_s is None else round(self.expected_wait_s),
            "timeout_in_s": None if self.timeout_in_s is None else round(self.timeout_in_s),
        }


def estimate(position: int, waited_s: float, recent_waits: list[float], recent_claims: int) -> float | None:
    """Seconds still to wait at `position`, from the last hour's claims (see the module's docstring)."""
    if recent_claims >= MIN_CLAIMS:
        pace = RECENT / recent_claims  # seconds between two conversations taken
        return max(MIN_ESTIMATE, position * pace - waited_s)
    if recent_waits:
        return max(MIN_ESTIMATE, statistics.median(recent_waits) - waited_s)
    return None


async def _available_agents(engine: AsyncEngine, settings: Settings, now: float) -> int:
    agents = await presence.list_agents(engine, settings, now)
    return sum(
        1 for a in agents if a.status == "available" and a.open_count < settings.max_conversations_per_agent
    )


async def place_of(
    engine: AsyncEngine, settings: Settings, sender_id: str, now: float | None = None
) -> QueuePlace:
    now = time.time() if now is None else now
    h = db.handoffs
    async with engine.connect() as conn:
        mine = (
            await conn.execute(
                sa.select(h.c.status, h.c.queued_at)
                .where(h.c.sender_id == sender_id, h.c.status.in_(db.OPEN_STATUSES))
                .order_by(h.c.queued_at.desc())
                .limit(1)
            )
        ).first()
        if mine is None or mine.status != "waiting":
            return QueuePlace(status="none" if mine is None else "active")
        waiting = (
            (await conn.execute(sa.select(h.c.queued_at).where(h.c.status == "waiting"))).scalars().all()
        )
        recent = (
            await conn.execute(
                sa.select(h.c.queued_at, h.c.claimed_at).where(
                    h.c.claimed_at.is_not(None), h.c.claimed_at >= now - RECENT
                )
            )
        ).all()
    position = 1 + sum(1 for q in waiting if q < mine.queued_at)
    waited = max(0.0, now - mine.queued_at)
    waits = [max(0.0, r.claimed_at - r.queued_at) for r in recent]
    return QueuePlace(
        status="waiting",
        position=position,
        waiting_total=len(waiting),
        waited_s=waited,
        agents_available=await _available_agents(engine, settings, now),
        expected_wait_s=estimate(position, waited, waits, len(recent)),
        timeout_in_s=max(0.0, mine.queued_at + settings.queue_timeout - now),
    )
