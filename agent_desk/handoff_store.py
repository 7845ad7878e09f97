"""The handoff queue as the desk process keeps it: the table, what it remembers per conversation
from Rasa's events, and telling browsers (and other desk processes) when the queue changed.

Every transition is one conditional UPDATE (`... WHERE status = <expected>`), so two agents, two
browser tabs or the background sweeper can never both win; the loser gets a clear message.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db
from agent_desk.accounts import Agent
from agent_desk.config import Settings
from agent_desk.desk_texts import TEXTS
from agent_desk.handoffs import DeskError, Handoff, handoff_from_row, select_handoffs
from agent_desk.hub import Hub
from agent_desk.peers import Peers
from agent_desk.responses import DomainResponses
from agent_desk.signing_client import SigningClient
from common.rasa_client import RasaClient


class LRU(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class HandoffStore:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        rasa: RasaClient,
        signing: SigningClient,
        responses: DomainResponses,
        hub: Hub,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.rasa = rasa
        self.signing = signing
        self.responses = responses
        self.hub = hub
        self._open: dict[str, int] = {}  # sender_id -> open handoff id
        self._channels: LRU = LRU(20_000)
        self._codes: LRU = LRU(20_000)
        # Per-conversation version bumped on every broker event: the demo page's poll skips Rasa
        # when nothing happened in its conversation.
        self._boot = secrets.token_hex(4)
        self._versions: LRU = LRU(20_000)
        # Timestamp of the newest event already in a handoff's preview (read from the tracker when it
        # was queued): the same events arriving afterwards from the broker are not added twice.
        self._preview_ts: LRU = LRU(20_000)
        self.events_seen = 0
        self.peers: Peers | None = None  # other desk processes on the same PostgreSQL database

    # ------------------------------------------------------------------ reading
    async def load_open(self) -> None:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(db.handoffs.c.id, db.handoffs.c.sender_id).where(
                        db.handoffs.c.status.in_(db.OPEN_STATUSES)
                    )
                )
            ).all()
        self._open = {r.sender_id: r.id for r in rows}

    async def get(self, handoff_id: int) -> Handoff | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select_handoffs().where(db.handoffs.c.id == handoff_id))).first()
        return handoff_from_row(row) if row else None

    async def open_handoffs(self) -> list[Handoff]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select_handoffs()
                    .where(db.handoffs.c.status.in_(db.OPEN_STATUSES))
                    .order_by(db.handoffs.c.queued_at)
                )
            ).all()
        return [handoff_from_row(r) for r in rows]

    async def queue_snapshot(self) -> dict[str, Any]:
        items = await self.open_handoffs()
        return {
            "now": time.time(),
            "waiting": [h.as_json() for h in items if h.status == "waiting"],
            "active": [h.as_json() for h in items if h.status == "active"],
            "queue_timeout": self.settings.queue_timeout,
        }

    def version(self, sender_id: str) -> str:
        return f"{self._boot}-{self._versions.get(sender_id, 0)}"

    def saw_event(self, sender_id: str) -> None:
        self.events_seen += 1
        self._versions.put(sender_id, self._versions.get(sender_id, 0) + 1)

    # ------------------------------------------------------------------ writing
    async def transition(self, handoff_id: int, where: list[Any], values: dict[str, Any]) -> bool:
        """One conditional UPDATE: True when this call won it."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                db.handoffs.update().where(db.handoffs.c.id == handoff_id, *where).values(**values)
            )
        return result.rowcount == 1

    async def owned(self, handoff_id: int, agent: Agent) -> Handoff:
        """The handoff, if `agent` is working on it now; else DeskError saying why not."""
        handoff = await self.get(handoff_id)
        if handoff is None:
            raise DeskError(TEXTS.get("not_found"), 404)
        if handoff.status != "active" or handoff.agent_id != agent.id:
            if handoff.status == "waiting":
                raise DeskError(TEXTS.get("requeued_reclaim"))
            if handoff.status == "active":
                raise DeskError(TEXTS.get("owned_by_other", agent_name=handoff.agent_name), 403)
            raise DeskError(TEXTS.get("ended"))
        return handoff

    async def touch(self, handoff_id: int, agent: Agent) -> None:
        await self.transition(
            handoff_id,
            [db.handoffs.c.status == "active", db.handoffs.c.agent_id == agent.id],
            {"agent_activity_at": time.time()},
        )

    # ------------------------------------------------------------------ telling others
    async def publish_queue(self) -> None:
        if self.hub.subscribers:
            self.hub.publish("queue", await self.queue_snapshot())
        if self.peers is not None:  # the other desk processes' browsers (agent_desk/peers.py)
            await self.peers.notify()

    async def reload_from_peers(self) -> None:
        """Another desk process changed the queue: refresh what we keep and tell our browsers."""
        await self.load_open()
        if self.hub.subscribers:
            self.hub.publish("queue", await self.queue_snapshot())
