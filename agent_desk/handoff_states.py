"""What agents and the sweeper do to a handoff: claim, reply, hand back, time out, requeue.

Each transition is one conditional UPDATE (agent_desk/handoff_store.py); the Rasa side effect runs
after the winning UPDATE and the row is put back if Rasa fails.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa

from agent_desk import channel_window, db
from agent_desk.accounts import Agent
from agent_desk.csat import Surveys
from agent_desk.desk_texts import CLOSE_TAGS, TEXTS
from agent_desk.handoff_events import bot_event, handback_events, joined_events
from agent_desk.handoff_store import HandoffStore
from agent_desk.handoffs import MAX_REPLY, ClaimGuard, DeskError, Handoff, clean_text
from agent_desk.responses import MissingResponse
from common.metrics import HANDOFF_WAIT
from common.rasa_client import RasaError

log = logging.getLogger(__name__)


async def tell_rasa_or_undo(
    store: HandoffStore,
    handoff: Handoff,
    events: list[dict[str, Any]],
    failure: str,
    undo_where: list[Any],
    undo_values: dict[str, Any],
) -> None:
    """Append a transition's events to the conversation in Rasa, after its UPDATE won; if Rasa fails,
    put the row back (`undo_where` guards that nothing else changed it since) and refuse with the
    desk text `failure`. Claims, hand-backs and transfers."""
    push = await channel_window.can_push(store, handoff)  # outside Zalo's window: recorded only
    try:
        await store.rasa.append_events(handoff.sender_id, events, push=push)
    except RasaError as exc:
        await store.transition(handoff.id, undo_where, undo_values)
        raise DeskError(TEXTS.get(failure, error=exc), 502) from exc


class HandoffStates:
    def __init__(self, store: HandoffStore, surveys: Surveys) -> None:
        self.store = store
        self.surveys = surveys

    async def claim(self, handoff_id: int, agent: Agent, guard: ClaimGuard | None = None) -> Handoff:
        """An agent takes a waiting conversation. Auto-assignment goes through here too, with a
        `guard` run in the claim's transaction before its UPDATE (it raises DeskError to refuse)."""
        store = self.store
        events = joined_events(store.responses, agent)
        now = time.time()
        async with store.engine.begin() as conn:
            if guard is not None:
                await guard(conn)
            result = await conn.execute(
                db.handoffs.update()
                .where(db.handoffs.c.id == handoff_id, db.handoffs.c.status == "waiting")
                .values(status="active", agent_id=agent.id, claimed_at=now, agent_activity_at=now)
            )
        won = result.rowcount == 1
        if not won:
            current = await store.get(handoff_id)
            if current is None:
                raise DeskError(TEXTS.get("not_found"), 404)
            if current.status == "active" and current.agent_id == agent.id:
                return current
            if current.status == "active":
                raise DeskError(TEXTS.get("taken_by_other", agent_name=current.agent_name))
            raise DeskError(TEXTS.get("no_longer_queued"))
        handoff = await store.get(handoff_id)
        assert handoff is not None
        await tell_rasa_or_undo(
            store,
            handoff,
            events,
            "claim_rasa_failed",
            [db.handoffs.c.status == "active", db.handoffs.c.agent_id == agent.id],
            {"status": "waiting", "agent_id": None, "claimed_at": None},
        )
        log.info("handoff %s claimed by %s", handoff_id, agent.username)
        HANDOFF_WAIT.observe(max(now - handoff.queued_at, 0.0))  # the queue-wait alert reads this
        await store.publish_queue()
        return handoff

    async def reply(self, handoff_id: int, agent: Agent, text: str) -> None:
        store = self.store
        text = clean_text(text, MAX_REPLY)
        handoff = await store.owned(handoff_id, agent)
        refusal = await channel_window.reply_refusal(store, handoff)  # Zalo's 48 h: SMS instead
        if refusal:
            raise DeskError(refusal, 409)
        try:
            await store.rasa.append_events(
                handoff.sender_id,
                [bot_event(text, agent=agent.username, agent_name=agent.display_name)],
            )
        except RasaError as exc:
            raise DeskError(TEXTS.get("reply_rasa_failed", error=exc), 502) from exc
        now = time.time()
        await store.transition(  # touch, and the first reply's time (reports: first response)
            handoff_id,
            [db.handoffs.c.status == "active", db.handoffs.c.agent_id == agent.id],
            {"agent_activity_at": now, "first_reply_at": sa.func.coalesce(db.handoffs.c.first_reply_at, now)},
        )

    async def hand_back(self, handoff_id: int, agent: Agent, tag: str) -> None:
        store = self.store
        if tag not in CLOSE_TAGS:
            raise DeskError(TEXTS.get("bad_close_tag"), 400)
        try:
            events = handback_events(store.responses, "utter_handoff_returned")
        except MissingResponse as exc:
            raise DeskError(TEXTS.get("handback_unavailable", error=exc), 503) from exc
        survey = self.surveys.ask_events(agent)  # satisfaction survey, before the final action_listen
        events[-1:-1] = survey
        asked_at = time.time()
        handoff = await store.owned(handoff_id, agent)
        won = await store.transition(
            handoff_id,
            [db.handoffs.c.status == "active", db.handoffs.c.agent_id == agent.id],
            {"status": "closed", "closed_at": time.time(), "close_tag": tag},
        )
        if not won:
            raise DeskError(TEXTS.get("state_changed"))
        await tell_rasa_or_undo(
            store,
            handoff,
            events,
            "handback_rasa_failed",
            [db.handoffs.c.status == "closed"],
            {"status": "active", "closed_at": None, "close_tag": None},
        )
        store._open.pop(handoff.sender_id, None)
        log.info("handoff %s handed back by %s (%s)", handoff_id, agent.username, tag)
        if survey:
            try:
                await self.surveys.asked(handoff_id, handoff.sender_id, agent.id, asked_at)
            except Exception:
                log.exception("handoff %s: satisfaction survey sent but not recorded", handoff_id)
        await store.publish_queue()

    async def sweep(self, now: float | None = None) -> dict[str, int]:
        """Time out unclaimed requests and return idle agents' conversations to the queue."""
        store = self.store
        settings = store.settings
        now = time.time() if now is None else now
        done = {"timed_out": 0, "requeued": 0}
        h = db.handoffs
        async with store.engine.connect() as conn:
            expired = (
                await conn.execute(
                    sa.select(h.c.id, h.c.sender_id).where(
                        h.c.status == "waiting", h.c.queued_at < now - settings.queue_timeout
                    )
                )
            ).all()
            idle = (
                await conn.execute(
                    sa.select(h.c.id).where(
                        h.c.status == "active", h.c.agent_activity_at < now - settings.agent_idle_timeout
                    )
                )
            ).all()
        for row in idle:
            if await store.transition(
                row.id,
                [h.c.status == "active", h.c.agent_activity_at < now - settings.agent_idle_timeout],
                {
                    "status": "waiting",
                    "agent_id": None,
                    "queued_at": now,
                    "requeue_count": h.c.requeue_count + 1,
                },
            ):
                done["requeued"] += 1
                log.info("handoff %s back to the queue: agent idle", row.id)
        for row in expired:
            if not await store.transition(
                row.id,
                [h.c.status == "waiting", h.c.queued_at < now - settings.queue_timeout],
                {"status": "timed_out", "closed_at": now, "close_tag": "queue_timeout"},
            ):
                continue
            try:
                await store.rasa.append_events(
                    row.sender_id, handback_events(store.responses, "utter_handoff_timeout")
                )
            except (RasaError, MissingResponse):
                log.warning("handoff %s: could not resume the bot; will retry", row.id)
                await store.transition(
                    row.id,
                    [h.c.status == "timed_out"],
                    {"status": "waiting", "closed_at": None, "close_tag": None},
                )
                continue
            store._open.pop(row.sender_id, None)
            done["timed_out"] += 1
            log.info("handoff %s timed out in the queue", row.id)
        try:
            await self.surveys.sweep(now)  # resume the bot where a survey comment never came
        except Exception:
            log.exception("satisfaction survey sweep failed")
        if done["timed_out"] or done["requeued"]:
            await store.publish_queue()
        return done
