"""What a handoff is (one request for a human) and the checks every desk action shares.

State of a handoff:

    waiting --claim--> active --hand back--> closed
       |                 |
       |                 +--agent idle--> waiting (still paused in Rasa; a colleague can take it)
       +--nobody claimed in time--> timed_out (bot resumed, customer gets the hotline)
       +--customer withdrew (slot handoff_requested=false)--> cancelled
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent_desk import db
from agent_desk.desk_texts import CLOSE_TAGS, TEXTS

__all__ = [
    "CLOSE_TAGS",
    "CONTROL_RE",
    "MAX_NOTE",
    "MAX_REPLY",
    "ClaimGuard",
    "DeskError",
    "Handoff",
    "clean_text",
    "handoff_from_row",
    "select_handoffs",
]

MAX_REPLY = 2000
MAX_NOTE = 2000
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Checked inside a claim's transaction before its UPDATE; raises DeskError to refuse the claim.
ClaimGuard = Callable[[AsyncConnection], Awaitable[None]]


class DeskError(Exception):
    """A refused action; `message` is shown to the agent as is."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Handoff:
    id: int
    sender_id: str
    channel: str
    status: str
    request_code: str | None
    requested_at: float
    queued_at: float
    claimed_at: float | None
    agent_id: int | None
    agent_name: str | None
    agent_activity_at: float | None
    closed_at: float | None
    close_tag: str | None
    last_messages: list[dict[str, str]]
    requeue_count: int
    bot_error: str | None = None  # the bot failed on the customer's message (agent_desk/bot_failures.py)
    customer_last_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sender_id": self.sender_id,
            "channel": self.channel,
            "status": self.status,
            "request_code": self.request_code,
            "queued_at": self.queued_at,
            "claimed_at": self.claimed_at,
            "agent_id": self.agent_id,
            "agent_name": self.agent_name,
            "last_messages": self.last_messages,
            "requeue_count": self.requeue_count,
            "bot_error": self.bot_error,
            "customer_last_at": self.customer_last_at,  # desk.js: alert on the agent's other conversations
        }


def clean_text(text: str, limit: int) -> str:
    text = CONTROL_RE.sub("", text or "").strip()
    if not text:
        raise DeskError(TEXTS.get("empty_text"), 400)
    if len(text) > limit:
        raise DeskError(TEXTS.get("text_too_long", limit=limit), 400)
    return text


def select_handoffs() -> sa.sql.Select:
    h, a = db.handoffs, db.agents
    return sa.select(h, a.c.display_name.label("agent_name")).select_from(
        h.outerjoin(a, h.c.agent_id == a.c.id)
    )


def handoff_from_row(row: Any) -> Handoff:
    try:
        last = json.loads(row.last_messages or "[]")
    except ValueError:
        last = []
    return Handoff(
        id=row.id,
        sender_id=row.sender_id,
        channel=row.channel,
        status=row.status,
        request_code=row.request_code,
        requested_at=row.requested_at,
        queued_at=row.queued_at,
        claimed_at=row.claimed_at,
        agent_id=row.agent_id,
        agent_name=row.agent_name,
        agent_activity_at=row.agent_activity_at,
        closed_at=row.closed_at,
        close_tag=row.close_tag,
        last_messages=last,
        requeue_count=row.requeue_count or 0,
        bot_error=row.bot_error,
        customer_last_at=row.customer_last_at,
    )
