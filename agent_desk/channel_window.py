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
ZNS carries only approved templates, so an agent's free text goes by SMS.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web

from agent_desk import bot_failures, db
from agent_desk.bot_failures import failures as failure_rows
from agent_desk.keys import DESK
from agent_desk.security import login_required
from agent_desk.signing_client import SigningError, SigningRefused
from common.rasa_client import RasaError

if TYPE_CHECKING:
    from agent_desk.config import Settings
    from agent_desk.desk import Desk, Handoff

log = logging.getLogger(__name__)
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


async def known_last_customer_at(desk: Desk, handoff: Handoff) -> float | None:
    """The customer's last message as the desk knows it (its own tables, no Rasa call)."""
    h = db.handoffs
    async with desk.engine.connect() as conn:
        recorded = await conn.scalar(sa.select(h.c.customer_last_at).where(h.c.id == handoff.id))
        failed = await conn.scalar(
            sa.select(sa.func.max(failure_rows.c.at)).where(failure_rows.c.sender_id == handoff.sender_id)
        )
    return newest(recorded, failed)


async def current_window(desk: Desk, handoff: Handoff, ask_rasa: bool = True) -> Window | None:
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
    return (
        f"Đã quá {w.hours} giờ kể từ tin nhắn cuối của khách nên Zalo không cho gửi tin nhắn tư vấn; "
        "tin nhắn chưa được gửi. Hãy dùng “Gửi SMS” tới số điện thoại đăng ký của yêu cầu."
    )


async def reply_refusal(desk: Desk, handoff: Handoff) -> str | None:
    """Why a plain chat reply may not be sent now (None: it may)."""
    w = await current_window(desk, handoff)
    return closed_message(w) if w is not None and w.closed else None


async def can_push(desk: Desk, handoff: Handoff) -> bool:
    """Whether the desk's automatic lines (agent joined, handed back) may go out on the channel;
    outside the window they are only written into the conversation."""
    w = await current_window(desk, handoff)
    return w is None or not w.closed


async def conversation_context(
    request: web.Request, handoff: Handoff, msgs: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the conversation page shows of this issue: the messages the bot failed on during this
    handoff, and the channel's window (from the transcript the page already read, no extra call)."""
    desk: Desk = request.app[DESK]
    failed = await bot_failures.of_handoff(desk, handoff.id)
    last_user = max((m["ts"] for m in msgs if m.get("kind") == "user"), default=None)
    last = newest(handoff.customer_last_at, last_user, *(f["at"] for f in failed))
    return {
        "failed_messages": failed,
        "channel_window": window(desk.settings, handoff.channel, last),
        "max_sms": MAX_SMS,
    }


# ---------------------------------------------------------------------- sending an SMS
@login_required()
async def send_sms(request: web.Request) -> web.StreamResponse:
    from agent_desk.desk import DeskError, clean_text
    from agent_desk.views import _form, _handoff_id, error_response, wants_json

    desk: Desk = request.app[DESK]
    agent = request["agent"]
    handoff_id = _handoff_id(request)
    back = f"/conversations/{handoff_id}"
    try:
        form = await _form(request)
        text = clean_text(form.get("text", ""), MAX_SMS)
        handoff = await desk._owned(handoff_id, agent)
        w = await current_window(desk, handoff)
        if w is None:
            raise DeskError("Kênh này không giới hạn thời gian nhắn tin: hãy trả lời trong khung chat.", 400)
        if not w.closed:
            raise DeskError("Khách vẫn nhận được tin nhắn Zalo: hãy trả lời trong khung chat.", 409)
        if not handoff.request_code:
            raise DeskError(
                "Khách chưa cung cấp mã yêu cầu nên không có số điện thoại đăng ký để gửi SMS. "
                "Hãy ghi chú và chuyển tổng đài gọi lại nếu có số khác.",
                409,
            )
        try:
            sent = await desk.signing.send_sms(
                handoff.request_code, text, agent.username, handoff.channel, handoff.sender_id
            )
        except SigningRefused as exc:
            raise DeskError(f"SMS chưa được gửi: {exc.message}", 409 if exc.status < 500 else 502) from exc
        except SigningError as exc:
            raise DeskError(f"SMS chưa được gửi: {exc}.", 502) from exc
    except DeskError as exc:
        return error_response(request, exc, back=back)
    to = str(sent.get("to") or "")
    event = {
        "event": "bot",
        "text": text,
        "data": {},
        "metadata": {"agent": agent.username, "agent_name": agent.display_name, "via": "sms", "sms_to": to},
    }
    try:  # the transcript's copy; the SMS itself already left
        await desk.rasa.append_events(handoff.sender_id, [event], push=False)
    except RasaError:
        log.warning("handoff %s: SMS sent but not written into the conversation", handoff.id)
        await desk.add_note(handoff, agent, f"[SMS đã gửi tới {to}] {text}")
    await desk.touch(handoff.id, agent)
    log.info("handoff %s: SMS sent by %s", handoff.id, agent.username)
    if wants_json(request):
        return web.json_response({"status": "sent", "to": to})
    raise web.HTTPSeeOther(back)


def setup_routes(app: web.Application) -> None:
    app.router.add_post(r"/conversations/{id:[0-9]+}/sms", send_sms)
