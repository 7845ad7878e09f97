"""The desk as its callers see it: one object for the handoff queue, its parts each in a module.

- agent_desk/handoff_store.py: the queue's table and per-conversation memory, publishing changes;
- agent_desk/handoff_ingest.py: Rasa's events → handoffs;
- agent_desk/handoff_states.py: claim, reply, hand back, and the sweeper's timeouts;
- agent_desk/notes.py, agent_desk/canned_replies.py: notes and canned replies;
- agent_desk/desk_stats.py: the supervisor's figures;
- agent_desk/csat.py: the satisfaction survey after a hand-back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import canned_replies, desk_stats, notes
from agent_desk.accounts import Agent
from agent_desk.config import Settings
from agent_desk.csat import Surveys
from agent_desk.handoff_ingest import HandoffIngest
from agent_desk.handoff_states import HandoffStates
from agent_desk.handoff_store import HandoffStore
from agent_desk.handoffs import CLOSE_TAGS, ClaimGuard, DeskError, Handoff
from agent_desk.hub import Hub
from agent_desk.responses import DomainResponses
from agent_desk.signing_client import SigningClient
from agent_desk.vn_time import VN_TZ
from common.rasa_client import RasaClient

# Older import paths (bench/, tests/browser/) read these from here.
__all__ = ["CLOSE_TAGS", "VN_TZ", "ClaimGuard", "Desk", "DeskError", "Handoff"]


class Desk(HandoffStore):
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        rasa: RasaClient,
        signing: SigningClient,
        responses: DomainResponses,
        hub: Hub,
    ) -> None:
        super().__init__(settings, engine, rasa, signing, responses, hub)
        self.csat = Surveys(self)  # satisfaction survey after a hand-back
        self._ingest = HandoffIngest(self, self.csat)
        self._states = HandoffStates(self, self.csat)

    async def ingest(self, event: dict[str, Any]) -> None:
        """Sink of the event broker: one Rasa event of one conversation."""
        await self._ingest.ingest(event)

    async def claim(self, handoff_id: int, agent: Agent, guard: ClaimGuard | None = None) -> Handoff:
        return await self._states.claim(handoff_id, agent, guard)

    async def reply(self, handoff_id: int, agent: Agent, text: str) -> None:
        await self._states.reply(handoff_id, agent, text)

    async def hand_back(self, handoff_id: int, agent: Agent, tag: str) -> None:
        await self._states.hand_back(handoff_id, agent, tag)

    async def sweep(self, now: float | None = None) -> dict[str, int]:
        return await self._states.sweep(now)

    async def add_note(self, handoff: Handoff, agent: Agent, text: str) -> None:
        await notes.add_note(self, handoff, agent, text)

    async def notes(self, sender_id: str) -> list[dict[str, Any]]:
        return await notes.notes(self, sender_id)

    async def canned(self) -> list[dict[str, Any]]:
        return await canned_replies.canned(self.engine)

    async def save_canned(self, agent: Agent, canned_id: int | None, title: str, text: str) -> None:
        await canned_replies.save_canned(self.engine, agent, canned_id, title, text)

    async def delete_canned(self, canned_id: int) -> None:
        await canned_replies.delete_canned(self.engine, canned_id)

    async def stats(self, now: float | None = None) -> dict[str, Any]:
        return await desk_stats.stats(self, now)
