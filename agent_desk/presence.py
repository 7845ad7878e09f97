"""Agent presence: sẵn sàng (available), bận (busy), vắng (away).

The status an agent picks is stored (table `desk_agent_presence`) and kept across logins. It only
counts while the agent has a live session: logged out, or a session gone idle
(`DESK_IDLE_TIMEOUT_S`) or too old, the agent is shown and treated as away, without any write, so a
closed browser can never keep someone "available". An agent who never picked a status is available;
a supervisor is busy (supervisors watch, they are not handed conversations unless they say so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agent_desk import db
from agent_desk.accounts import Agent
from agent_desk.config import Settings

STATUSES = ("available", "busy", "away")


def default_status(role: str) -> str:
    return "busy" if role == "supervisor" else "available"


@dataclass(frozen=True)
class Presence:
    agent_id: int
    username: str
    display_name: str
    role: str
    status: str  # effective: "away" without a live session
    chosen: str  # what the agent picked (or the default)
    online: bool
    open_count: int  # conversations the agent is handling now
    changed_at: float | None
    last_assigned_at: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "agent_id": self.agent_id,
            "username": self.username,
            "display_name": self.display_name,
            "status": self.status,
            "online": self.online,
            "open_count": self.open_count,
        }


def live_session(settings: Settings, now: float) -> sa.sql.ColumnElement:
    """EXISTS a live session of the agent row in the query (same rule as security._session_live)."""
    s = db.sessions
    return (
        sa.select(s.c.agent_id)
        .where(
            s.c.agent_id == db.agents.c.id,
            s.c.expires_at > now,
            s.c.created_at > now - settings.session_lifetime,
        )
        .exists()
    )


def _open_count() -> sa.sql.expression.ScalarSelect:
    h = db.handoffs
    return (
        sa.select(sa.func.count())
        .where(h.c.agent_id == db.agents.c.id, h.c.status == "active")
        .scalar_subquery()
    )


async def list_agents(engine: AsyncEngine, settings: Settings, now: float | None = None) -> list[Presence]:
    """Every enabled account with its effective status and load, by display name."""
    now = time.time() if now is None else now
    a, p = db.agents, db.presence
    query = (
        sa.select(
            a.c.id,
            a.c.username,
            a.c.display_name,
            a.c.role,
            p.c.status,
            p.c.changed_at,
            p.c.last_assigned_at,
            live_session(settings, now).label("online"),
            _open_count().label("open_count"),
        )
        .select_from(a.outerjoin(p, p.c.agent_id == a.c.id))
        # Trainers work on the NLU data, never on customers: not offered conversations.
        .where(a.c.active.is_(True), a.c.role != "trainer")
        .order_by(a.c.display_name, a.c.id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    result = []
    for r in rows:
        chosen = r.status or default_status(r.role)
        result.append(
            Presence(
                agent_id=r.id,
                username=r.username,
                display_name=r.display_name,
                role=r.role,
                status=chosen if r.online else "away",
                chosen=chosen,
                online=bool(r.online),
                open_count=int(r.open_count or 0),
                changed_at=r.changed_at,
                last_assigned_at=r.last_assigned_at,
            )
        )
    return result


async def get(engine: AsyncEngine, settings: Settings, agent_id: int) -> Presence | None:
    return next((p for p in await list_agents(engine, settings) if p.agent_id == agent_id), None)


async def chosen_status(engine: AsyncEngine, agent: Agent) -> str:
    """The status the agent picked (for the header: the agent is online while looking at it)."""
    async with engine.connect() as conn:
        status = await conn.scalar(sa.select(db.presence.c.status).where(db.presence.c.agent_id == agent.id))
    return str(status) if status else default_status(agent.role)


async def ensure_row(conn: AsyncConnection, agent_id: int, role: str) -> None:
    """Create the agent's row with the default status if missing. ON CONFLICT DO NOTHING: another
    desk process creating it at the same moment is not an error."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(
        dialect.insert(db.presence)
        .values(agent_id=agent_id, status=default_status(role), changed_at=None)
        .on_conflict_do_nothing()
    )


async def set_status(engine: AsyncEngine, agent: Agent, status: str, now: float | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(status)
    now = time.time() if now is None else now
    async with engine.begin() as conn:
        await ensure_row(conn, agent.id, agent.role)
        await conn.execute(
            db.presence.update()
            .where(db.presence.c.agent_id == agent.id)
            .values(status=status, changed_at=now)
        )
