"""Auto-assignment (DESK_AUTO_ASSIGN=1): waiting conversations go to available agents, round robin.

Run by the sweep loop every DESK_SWEEP_INTERVAL seconds. The oldest waiting conversation goes to the
available agent (live session, status sẵn sàng) with the fewest open conversations, ties to the one
assigned longest ago; nobody gets more than DESK_MAX_CONVERSATIONS_PER_AGENT at once.

Each assignment is `Desk.claim` itself (the conditional UPDATE ... WHERE status='waiting', then the
Rasa pause and "agent joined" line), so an automatic and a manual claim, in this process or another
desk process, can never both win. A guard inside the claim's transaction first writes the agent's
presence row (a row lock on PostgreSQL, the database write lock on SQLite), then counts the agent's
open conversations: two desk processes assigning to the same agent at once are serialised there, so
the cap holds too.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent_desk import db, presence, transfer
from agent_desk.accounts import Agent
from agent_desk.desk import Desk
from agent_desk.handoffs import ClaimGuard, DeskError

log = logging.getLogger(__name__)


class AgentUnavailable(DeskError):
    """The agent chosen is no longer available or already has the most conversations allowed."""

    def __init__(self) -> None:
        super().__init__("Nhân viên không nhận thêm hội thoại.", 409)


def capacity_guard(agent: Agent, limit: int, now: float) -> ClaimGuard:
    async def guard(conn: AsyncConnection) -> None:
        await presence.ensure_row(conn, agent.id, agent.role)
        # The write comes first: it takes the lock that serialises concurrent assignments to this agent.
        locked = await conn.execute(
            db.presence.update()
            .where(db.presence.c.agent_id == agent.id, db.presence.c.status == "available")
            .values(last_assigned_at=now)
        )
        if locked.rowcount != 1:
            raise AgentUnavailable()
        h = db.handoffs
        count = await conn.scalar(
            sa.select(sa.func.count()).where(h.c.agent_id == agent.id, h.c.status == "active")
        )
        if (count or 0) >= limit:
            raise AgentUnavailable()

    return guard


async def next_agent(desk: Desk, skip: set[int], now: float) -> Agent | None:
    """Round robin: fewest open conversations first, then the one assigned longest ago."""
    limit = desk.settings.max_conversations_per_agent
    free = [
        p
        for p in await presence.list_agents(desk.engine, desk.settings, now)
        if p.status == "available" and p.open_count < limit and p.agent_id not in skip
    ]
    if not free:
        return None
    best = min(free, key=lambda p: (p.open_count, p.last_assigned_at or 0.0, p.agent_id))
    return Agent(best.agent_id, best.username, best.display_name, best.role)


async def assign_waiting(desk: Desk) -> int:
    """Give waiting conversations to available agents; returns how many were assigned."""
    if not desk.settings.auto_assign:
        return 0
    h = db.handoffs
    async with desk.engine.connect() as conn:
        waiting = (
            (
                await conn.execute(
                    sa.select(h.c.id).where(h.c.status == "waiting").order_by(h.c.queued_at, h.c.id)
                )
            )
            .scalars()
            .all()
        )
    assigned = 0
    for handoff_id in waiting:
        tried: set[int] = set()
        while True:
            now = time.time()
            agent = await next_agent(desk, tried, now)
            if agent is None:
                return assigned  # nobody can take more; the rest keep waiting
            tried.add(agent.id)
            try:
                handoff = await desk.claim(
                    handoff_id, agent, capacity_guard(agent, desk.settings.max_conversations_per_agent, now)
                )
            except AgentUnavailable:
                continue  # changed since it was read (status, or another desk gave them one): next agent
            except DeskError as exc:
                if exc.status >= 500:
                    # Rasa unreachable or the domain lacks the text: retried at the next sweep.
                    log.warning("auto-assignment paused: %s", exc.message)
                    return assigned
                break  # claimed by someone else meanwhile, or ended: next conversation
            await transfer.record(desk, handoff, "auto", None, agent, None, None)
            log.info("handoff %s auto-assigned to %s", handoff_id, agent.username)
            assigned += 1
            break
    return assigned


async def mark_idle_agents_away(desk: Desk, now: float | None = None) -> int:
    """With auto-assignment on, an available agent who let a conversation go idle (the sweep is about
    to put it back in the queue) becomes away: otherwise it would come straight back to them."""
    if not desk.settings.auto_assign:
        return 0
    now = time.time() if now is None else now
    h, a = db.handoffs, db.agents
    async with desk.engine.begin() as conn:
        idle = (
            await conn.execute(
                sa.select(a.c.id, a.c.role)
                .distinct()
                .select_from(h.join(a, h.c.agent_id == a.c.id))
                .where(h.c.status == "active", h.c.agent_activity_at < now - desk.settings.agent_idle_timeout)
            )
        ).all()
        changed: list[int] = []
        for row in idle:
            await presence.ensure_row(conn, row.id, row.role)
            result = await conn.execute(
                db.presence.update()
                .where(db.presence.c.agent_id == row.id, db.presence.c.status == "available")
                .values(status="away", changed_at=now)
            )
            if result.rowcount == 1:
                changed.append(row.id)
    for agent_id in changed:
        desk.hub.publish("presence", {"agent_id": agent_id, "status": "away"})
    if changed:
        log.info("%d idle agent(s) set away", len(changed))
    return len(changed)


async def sweep_pass(desk: Desk, now: float | None = None) -> None:
    """One pass of the desk's sweep: idle agents set away, idle conversations requeued and expired
    requests ended, then waiting conversations assigned. The first two use one instant: with a
    clock read each, a conversation that crossed the idle limit between them was requeued while its
    agent stayed available, and auto-assignment gave it straight back (seen on a loaded machine)."""
    now = time.time() if now is None else now
    # Before the sweep requeues their idle conversations: those agents stop being offered more.
    await mark_idle_agents_away(desk, now)
    await desk.sweep(now)
    await assign_waiting(desk)  # DESK_AUTO_ASSIGN=1 only
