"""Channel windows: how long an agent may still write to a customer on their chat channel.

Zalo accepts customer-service messages from an Official Account only for a while after the user's
last message (`ZALO_WINDOW_HOURS`, 48 by default, the notifier's setting too); after it, Zalo refuses
them (-230/-232) and the connector can only record them in the channel failures file. So on a Zalo
conversation the desk shows the time left (counting down in the page), warns when less than
`DESK_WINDOW_WARN_MINUTES` remain, and once it is over:

- a plain reply is refused with a clear message (never sent into the failures file);
- the reply box becomes "Gửi SMS": a short text (at most `MAX_SMS` characters) to the phone registered
  with the conversation's request, sent by the signing service through its outbox
  (`POST /v1/requests/{code}/staff-sms`: staff only, audited, only to a conversation verified for
  the request) and written into the transcript (not pushed) as the agent's line marked SMS.

The customer's last message is the newest of: the handoff's `customer_last_at` (kept from Rasa's
events), a message the bot failed on (agent_desk/bot_failures.py; Rasa may not have it) and, before
a reply is refused, the conversation's tracker in Rasa. Telegram and the web chat have no window.
ZNS carries only approved templates, so an agent's free text goes by SMS. The page and the SMS route
are in agent_desk/channel_window_views.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from agent_desk import db
from agent_desk.bot_failures import failures as failure_rows
from agent_desk.config import Settings
from agent_desk.desk_texts import TEXTS
from agent_desk.handoff_store import HandoffStore
from agent_desk.handoffs import Handoff
from common.rasa_client import RasaError

WINDOW_CHANNELS = frozenset({"zalo"})
MAX_SMS = 300


@dataclass(frozen=True)
class Window:
    channel: str
    hours: int
    last_customer_at: float | None
    ends_at: float
    now: float
    warn_seconds: float

    @property
    def left(self) -> float:
        return max(0.0, self.ends_at - self.now)

    @property
    def closed(self) -> bool:
        return self.now >= self.ends_at

    @property
    def warning(self) -> bool:
        return not self.closed and self.left < self.warn_seconds


def window(
    settings: Settings, channel: str, last_customer_at: float | None, now: float | None = None
) -> Window | None:
    """The channel's messaging window after the customer's last message; None when it has none."""
    if channel not in WINDOW_CHANNELS:
        return None
    hours = settings.zalo_window_hours
    ends_at = (last_customer_at or 0.0) + hours * 3600
    return Window(
        channel,
        hours,
        last_customer_at,
        ends_at,
        time.time() if now is None else now,
        settings.window_warn_minutes * 60.0,
    )


def newest(*times: float | None) -> float | None:
    known = [t for t in times if t]
    return max(known) if known else None


async def known_last_customer_at(desk: HandoffStore, handoff: Handoff) -> float | None:
    """The customer's last message as the desk knows it (its own tables, no Rasa call)."""
    h = db.handoffs
    async with desk.engine.connect() as conn:
        recorded = await conn.scalar(sa.select(h.c.customer_last_at).where(h.c.id == handoff.id))
        failed = await conn.scalar(
            sa.select(sa.func.max(failure_rows.c.at)).where(failure_rows.c.sender_id == handoff.sender_id)
        )
    return newest(recorded, failed)


async def current_window(desk: HandoffStore, handoff: Handoff, ask_rasa: bool = True) -> Window | None:
    """The window now; when the desk's own record says it is over, Rasa's tracker is asked once
    (the desk may have missed a message), and its answer counts if newer."""
    if handoff.channel not in WINDOW_CHANNELS:
        return None
    last = await known_last_customer_at(desk, handoff)
    result = window(desk.settings, handoff.channel, last)
    if result is not None and result.closed and ask_rasa:
        try:
            from_rasa = await desk.rasa.last_user_message_at(handoff.sender_id)
        except RasaError:
            from_rasa = None
        if from_rasa and (last is None or from_rasa > last):
            result = window(desk.settings, handoff.channel, from_rasa)
    return result


def closed_message(w: Window) -> str:
    return TEXTS.get("window_closed", hours=w.hours)


async def reply_refusal(desk: HandoffStore, handoff: Handoff) -> str | None:
    """Why a plain chat reply may not be sent now (None: it may)."""
    w = await current_window(desk, handoff)
    return closed_message(w) if w is not None and w.closed else None


async def can_push(desk: HandoffStore, handoff: Handoff) -> bool:
    """Whether the desk's automatic lines (agent joined, handed back) may go out on the channel;
    outside the window they are only written into the conversation."""
    w = await current_window(desk, handoff)
    return w is None or not w.closed
