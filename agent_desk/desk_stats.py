"""The supervisor's figures: the queue now and today's handled conversations per agent."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from agent_desk import db
from agent_desk.handoff_store import HandoffStore
from agent_desk.vn_time import VN_TZ


async def stats(store: HandoffStore, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    day_start = (
        datetime.fromtimestamp(now, VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    )
    h, a = db.handoffs, db.agents
    open_items = await store.open_handoffs()
    waiting = [now - x.queued_at for x in open_items if x.status == "waiting"]
    async with store.engine.connect() as conn:
        per_agent = (
            await conn.execute(
                sa.select(
                    a.c.id,
                    a.c.display_name,
                    a.c.username,
                    sa.func.sum(sa.case((h.c.status == "active", 1), else_=0)).label("active"),
                    sa.func.sum(
                        sa.case((sa.and_(h.c.status == "closed", h.c.closed_at >= day_start), 1), else_=0)
                    ).label("closed_today"),
                )
                .select_from(a.outerjoin(h, h.c.agent_id == a.c.id))
                .where(a.c.active.is_(True))
                .group_by(a.c.id, a.c.display_name, a.c.username)
                .order_by(a.c.display_name)
            )
        ).all()
        today = (
            await conn.execute(
                sa.select(h.c.status, sa.func.count().label("n"))
                .where(h.c.closed_at >= day_start)
                .group_by(h.c.status)
            )
        ).all()
        handled = await conn.scalar(
            sa.select(sa.func.avg(h.c.closed_at - h.c.claimed_at)).where(
                h.c.status == "closed", h.c.closed_at >= day_start
            )
        )
    by_status = {r.status: r.n for r in today}
    return {
        "queue_length": len(waiting),
        "longest_wait": max(waiting, default=0.0),
        "average_wait": sum(waiting) / len(waiting) if waiting else 0.0,
        "active": sum(1 for x in open_items if x.status == "active"),
        "closed_today": by_status.get("closed", 0),
        "timed_out_today": by_status.get("timed_out", 0),
        "cancelled_today": by_status.get("cancelled", 0),
        "average_handling_today": float(handled or 0),
        "agents": [
            {
                "name": r.display_name,
                "username": r.username,
                "active": int(r.active or 0),
                "closed_today": int(r.closed_today or 0),
            }
            for r in per_agent
        ],
        "open": open_items,
    }
