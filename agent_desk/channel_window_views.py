"""Zalo's window on the conversation page, and "Gửi SMS" once it is over (agent_desk/channel_window.py)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from agent_desk import bot_failures
from agent_desk.channel_window import MAX_SMS, current_window, newest, window
from agent_desk.desk import Desk
from agent_desk.desk_texts import TEXTS
from agent_desk.handoffs import DeskError, Handoff, clean_text
from agent_desk.keys import DESK
from agent_desk.request_helpers import error_response, handoff_id_of, read_form, wants_json
from agent_desk.security import login_required
from agent_desk.signing_client import SigningError, SigningRefused
from common.rasa_client import RasaError

log = logging.getLogger(__name__)


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
    desk: Desk = request.app[DESK]
    agent = request["agent"]
    handoff_id = handoff_id_of(request)
    back = f"/conversations/{handoff_id}"
    try:
        form = await read_form(request)
        text = clean_text(form.get("text", ""), MAX_SMS)
        handoff = await desk.owned(handoff_id, agent)
        w = await current_window(desk, handoff)
        if w is None:
            raise DeskError(TEXTS.get("sms_no_window"), 400)
        if not w.closed:
            raise DeskError(TEXTS.get("sms_window_open"), 409)
        if not handoff.request_code:
            raise DeskError(TEXTS.get("sms_no_request_code"), 409)
        try:
            sent = await desk.signing.send_sms(
                handoff.request_code, text, agent.username, handoff.channel, handoff.sender_id
            )
        except SigningRefused as exc:
            status = 409 if exc.status < 500 else 502
            raise DeskError(TEXTS.get("sms_refused", reason=exc.message), status) from exc
        except SigningError as exc:
            raise DeskError(TEXTS.get("sms_failed", error=exc), 502) from exc
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
        await desk.add_note(handoff, agent, TEXTS.get("sms_sent_note", to=to, text=text))
    await desk.touch(handoff.id, agent)
    log.info("handoff %s: SMS sent by %s", handoff.id, agent.username)
    if wants_json(request):
        return web.json_response({"status": "sent", "to": to})
    raise web.HTTPSeeOther(back)


def setup_routes(app: web.Application) -> None:
    app.router.add_post(r"/conversations/{id:[0-9]+}/sms", send_sms)
