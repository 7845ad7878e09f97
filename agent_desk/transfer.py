"""Changing who handles a conversation: the owner passes it to a colleague or back to the queue, a
supervisor takes it over or gives it to someone; every change is logged in `desk_transfers`.

Exactly one owner at any time: a move is one conditional UPDATE on (id, status='active',
agent_id=<the owner just read>), so of two concurrent moves (the owner transferring while a
supervisor reassigns, two desk processes) one wins and the other is refused. A waiting conversation
given to someone goes through `Desk.claim`, the same conditional claim as the queue's button. The new
agent's name reaches the customer with the same "agent joined" line as a claim; if Rasa refuses it,
the move is undone. Back to the queue, the bot stays paused (as when an idle agent's conversation is
requeued) and the conversation keeps its notes.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from agent_desk import db, presence
from agent_desk.accounts import Agent
from agent_desk.desk import Desk
from agent_desk.desk_texts import TEXTS
from agent_desk.handoff_events import joined_events
from agent_desk.handoff_states import tell_rasa_or_undo
from agent_desk.handoffs import CONTROL_RE, DeskError, Handoff

MAX_TRANSFER_NOTE = 500
KINDS = ("auto", "transfer", "queue", "takeover", "reassign")


def transfer_note(text: str) -> str:
    text = CONTROL_RE.sub("", text or "").strip()
    if not text:
        raise DeskError(TEXTS.get("transfer_note_missing"), 400)
    if len(text) > MAX_TRANSFER_NOTE:
        raise DeskError(TEXTS.get("transfer_note_too_long", limit=MAX_TRANSFER_NOTE), 400)
    return text


async def _open(desk: Desk, handoff_id: int) -> Handoff:
    handoff = await desk.get(handoff_id)
    if handoff is None:
        raise DeskError(TEXTS.get("not_found"), 404)
    if handoff.status not in db.OPEN_STATUSES:
        raise DeskError(TEXTS.get("ended"))
    return handoff


async def target_agent(desk: Desk, agent_id: int) -> Agent:
    """Someone who can receive a conversation: an enabled account that is not away (busy is fine:
    a person decides, the cap of auto-assignment does not apply)."""
    found = await presence.get(desk.engine, desk.settings, agent_id)
    if found is None:
        raise DeskError(TEXTS.get("transfer_agent_not_found"), 400)
    if found.status == "away":
        raise DeskError(TEXTS.get("transfer_agent_away", agent_name=found.display_name))
    return Agent(found.agent_id, found.username, found.display_name, found.role)


async def _move(desk: Desk, handoff: Handoff, owner_id: int, target: Agent) -> None:
    events = joined_events(desk.responses, target)  # before the UPDATE: a missing domain text changes nothing
    h = db.handoffs
    moved = await desk.transition(
        handoff.id,
        [h.c.status == "active", h.c.agent_id == owner_id],
        # A fresh activity clock: the new owner is not idle-timed-out for the old owner's silence.
        {"agent_id": target.id, "agent_activity_at": time.time()},
    )
    if not moved:
        raise DeskError(TEXTS.get("transfer_owner_changed"))
    await tell_rasa_or_undo(
        desk,
        handoff,
        events,
        "transfer_rasa_failed",
        [h.c.status == "active", h.c.agent_id == target.id],
        {"agent_id": owner_id},
    )


async def _requeue(desk: Desk, handoff: Handoff, owner_id: int) -> None:
    h = db.handoffs
    requeued = await desk.transition(
        handoff.id,
        [h.c.status == "active", h.c.agent_id == owner_id],
        # Like an idle agent's conversation: a fresh queue clock, marked "chuyển lại" in the queue.
        {
            "status": "waiting",
            "agent_id": None,
            "queued_at": time.time(),
            "requeue_count": h.c.requeue_count + 1,
        },
    )
    if not requeued:
        raise DeskError(TEXTS.get("transfer_owner_changed"))


async def transfer(desk: Desk, handoff_id: int, actor: Agent, to_agent_id: int | None, note: str) -> str:
    """The owner (or a supervisor) gives the conversation to an agent, or to the queue when
    `to_agent_id` is None. Returns the kind logged: transfer, queue or reassign."""
    note = transfer_note(note)
    handoff = await _open(desk, handoff_id)
    target = await target_agent(desk, to_agent_id) if to_agent_id is not None else None
    owner = handoff.agent_id
    if handoff.status == "waiting" or owner is None:
        if not actor.is_supervisor:
            raise DeskError(TEXTS.get("transfer_from_queue"))
        if target is None:
            raise DeskError(TEXTS.get("transfer_already_queued"))
        await desk.claim(handoff.id, target)
        kind = "reassign"
    else:
        if owner != actor.id and not actor.is_supervisor:
            raise DeskError(TEXTS.get("owned_by_other", agent_name=handoff.agent_name), 403)
        if target is None:
            await _requeue(desk, handoff, owner)
            kind = "queue"
        else:
            if target.id == owner:
                raise DeskError(TEXTS.get("transfer_same_agent", agent_name=target.display_name))
            await _move(desk, handoff, owner, target)
            kind = "transfer" if owner == actor.id else "reassign"
        await desk.publish_queue()
    await record(desk, handoff, kind, owner, target, actor, note)
    return kind


async def take_over(desk: Desk, handoff_id: int, supervisor: Agent, note: str = "") -> None:
    """A supervisor becomes the owner of an open conversation (waiting: a claim)."""
    if not supervisor.is_supervisor:
        raise DeskError(TEXTS.get("supervisors_only"), 403)
    handoff = await _open(desk, handoff_id)
    text = transfer_note(note) if note.strip() else None
    owner = handoff.agent_id if handoff.status == "active" else None
    if owner == supervisor.id:
        return
    if owner is None:
        await desk.claim(handoff.id, supervisor)
    else:
        await _move(desk, handoff, owner, supervisor)
        await desk.publish_queue()
    await record(desk, handoff, "takeover", owner, supervisor, supervisor, text)


async def record(
    desk: Desk,
    handoff: Handoff,
    kind: str,
    from_agent_id: int | None,
    to: Agent | None,
    by: Agent | None,
    note: str | None,
) -> None:
    """Log the change (its note as an internal note of the conversation) and tell the browsers: the
    receiving agent gets a notice, pages showing this conversation reload."""
    now = time.time()
    async with desk.engine.begin() as conn:
        note_id = None
        if note and by is not None:
            inserted = await conn.execute(
                db.notes.insert().values(
                    sender_id=handoff.sender_id,
                    handoff_id=handoff.id,
                    agent_id=by.id,
                    text=note,
                    created_at=now,
                )
            )
            note_id = db.inserted_id(inserted)
        await conn.execute(
            db.transfers.insert().values(
                handoff_id=handoff.id,
                kind=kind,
                from_agent_id=from_agent_id,
                to_agent_id=to.id if to else None,
                by_agent_id=by.id if by else None,
                note_id=note_id,
                created_at=now,
            )
        )
    desk.hub.publish(
        "assigned",
        {
            "handoff_id": handoff.id,
            "kind": kind,
            "from_agent_id": from_agent_id,
            "to_agent_id": to.id if to else None,
            "to_name": to.display_name if to else None,
            "by_name": by.display_name if by else None,
            "note": note,
        },
    )


async def note_labels(desk: Desk, sender_id: str) -> dict[int, dict[str, Any]]:
    """For the notes written with a transfer: note id -> what happened (the template words it)."""
    t, h = db.transfers, db.handoffs
    to_agent, from_agent = db.agents.alias("to_agent"), db.agents.alias("from_agent")
    query = (
        sa.select(
            t.c.note_id,
            t.c.kind,
            to_agent.c.display_name.label("to_name"),
            from_agent.c.display_name.label("from_name"),
        )
        .select_from(
            t.join(h, t.c.handoff_id == h.c.id)
            .outerjoin(to_agent, t.c.to_agent_id == to_agent.c.id)
            .outerjoin(from_agent, t.c.from_agent_id == from_agent.c.id)
        )
        .where(h.c.sender_id == sender_id, t.c.note_id.is_not(None))
    )
    async with desk.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {r.note_id: {"kind": r.kind, "to_name": r.to_name, "from_name": r.from_name} for r in rows}
