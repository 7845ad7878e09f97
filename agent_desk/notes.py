"""Agents' notes on a conversation: written during a handoff, read on every later one."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from agent_desk import db, transcript
from agent_desk.accounts import Agent
from agent_desk.handoff_store import HandoffStore
from agent_desk.handoffs import MAX_NOTE, Handoff, clean_text


async def add_note(store: HandoffStore, handoff: Handoff, agent: Agent, text: str) -> None:
    text = clean_text(text, MAX_NOTE)
    async with store.engine.begin() as conn:
        await conn.execute(
            db.notes.insert().values(
                sender_id=handoff.sender_id,
                handoff_id=handoff.id,
                agent_id=agent.id,
                text=text,
                created_at=time.time(),
            )
        )
    await store.touch(handoff.id, agent)


async def notes(store: HandoffStore, sender_id: str) -> list[dict[str, Any]]:
    n, a = db.notes, db.agents
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(n.c.id, n.c.text, n.c.created_at, a.c.display_name)
                .select_from(n.join(a, n.c.agent_id == a.c.id))
                .where(n.c.sender_id == sender_id)
                .order_by(n.c.created_at)
            )
        ).all()
    # Agents type customers' phone numbers into notes too: shown masked, like the transcript.
    return [
        {
            "id": r.id,  # transfer notes get a label (agent_desk/transfer.py)
            "text": transcript.for_staff(r.text),
            "created_at": r.created_at,
            "agent_name": r.display_name,
        }
        for r in rows
    ]
