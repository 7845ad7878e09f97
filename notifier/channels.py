"""Where a notice goes and what came of it.

- Telegram: `sendMessage` with the notice's buttons, at any time.
- Zalo: a customer-service message while the user's last message is inside the window (from the
  conversation in Rasa); else, or when Zalo says the window closed, a ZNS template to the
  registered phone; else SMS through the outbox.
- Any other chat (the web demo, REST): SMS through the outbox.
Outcomes: sent, retry (temporary: network, rate limits, 5xx) or failed (permanent, recorded).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from common.rasa_client import RasaClient, RasaError
from connectors.common.masking import mask_id
from connectors.common.ratelimit import RateLimiter
from connectors.common.senders import TELEGRAM_SENDER_PREFIX, ZALO_SENDER_PREFIX
from connectors.zalo.api import ZaloApi, ZaloSendError
from connectors.zalo.zns import ZnsApi, ZnsError
from signing_service.deliveries import Job
from signing_service.outbox import Message, Outbox

from .messages import Messages, Notice

log = logging.getLogger(__name__)
Result = Literal["sent", "retry", "failed", "uncertain"]


@dataclass(frozen=True)
class Outcome:
    result: Result
    via: str | None
    error: str | None = None


def _sender_suffix(sender: str, prefix: str) -> str:
    return sender[len(prefix) :] if sender.startswith(prefix) else sender


class Router:
    def __init__(
        self,
        messages: Messages,
        outbox: Outbox,
        telegram: Bot | None = None,
        zalo: ZaloApi | None = None,
        zns: ZnsApi | None = None,
        zns_templates: dict[str, str] | None = None,
        rasa: RasaClient | None = None,
        zalo_window_s: float = 48 * 3600,
        record_in_conversation: bool = True,
        telegram_limiter: RateLimiter | None = None,
    ) -> None:
        self.messages = messages
        self.outbox = outbox
        self.telegram = telegram
        self.zalo = zalo
        self.zns = zns
        self.zns_templates = zns_templates or {}
        self.rasa = rasa
        self.zalo_window_s = zalo_window_s
        self.record = record_in_conversation and rasa is not None
        # Telegram's limits (about 30 messages/s per bot, 1/s per chat) are the notifier's too.
        self.telegram_limiter = telegram_limiter

    async def deliver(self, job: Job) -> Outcome:
        notice = self.messages.render(job.kind, job.params)
        if job.chat_channel == "telegram" and self.telegram is not None:
            outcome = await self._telegram(job, notice)
        elif job.chat_channel == "zalo" and self.zalo is not None:
            outcome = await self._zalo(job, notice)
        else:
            outcome = await self._sms(job)
        if outcome.result == "sent" and outcome.via in ("telegram", "zalo"):
            await self._record(job, notice)
        return outcome

    async def _telegram(self, job: Job, notice: Notice) -> Outcome:
        assert self.telegram is not None
        raw = _sender_suffix(job.chat_user, TELEGRAM_SENDER_PREFIX)
        if not raw.lstrip("-").isdigit() or not raw.isascii():
            return Outcome("failed", "telegram", "bad_chat_id")
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton(b.title[:64], callback_data=b.payload)] for b in notice.buttons]
        )
        if self.telegram_limiter is not None:
            await self.telegram_limiter.acquire(raw)
        try:
            await self.telegram.send_message(int(raw), notice.text, reply_markup=keyboard)
        except RetryAfter:
            return Outcome("retry", "telegram", "flood_control")
        except Forbidden:  # the customer blocked the bot: nothing will get through
            return Outcome("failed", "telegram", "blocked")
        except BadRequest as exc:
            return Outcome("failed", "telegram", f"rejected: {str(exc)[:40]}")
        except TimedOut:  # sent, maybe delivered: not repeated (the desk shows it as interrupted)
            return Outcome("uncertain", "telegram", "timed_out")
        except NetworkError as exc:
            return Outcome("retry", "telegram", type(exc).__name__)
        except TelegramError as exc:
            return Outcome("retry", "telegram", type(exc).__name__)
        return Outcome("sent", "telegram")

    async def _in_window(self, job: Job) -> bool:
        """Unknown (Rasa unreachable) counts as inside: Zalo's own refusal sends us to ZNS then."""
        if self.rasa is None:
            return True
        try:
            last = await self.rasa.last_user_message_at(job.chat_user)
        except RasaError:
            return True
        return last is not None and time.time() - last < self.zalo_window_s

    async def _zalo(self, job: Job, notice: Notice) -> Outcome:
        assert self.zalo is not None
        if await self._in_window(job):
            user_id = _sender_suffix(job.chat_user, ZALO_SENDER_PREFIX)
            body: dict[str, Any] = {"text": notice.text}
            if notice.buttons:
                body["attachment"] = {
                    "type": "template",
                    "payload": {
                        "buttons": [
                            {"title": b.title[:100], "type": "oa.query.hide", "payload": b.payload}
                            for b in notice.buttons
                        ]
                    },
                }
            try:
                await self.zalo.send_message(user_id, body)
                return Outcome("sent", "zalo")
            except ZaloSendError as exc:
                if exc.kind in ("rate", "network", "token"):
                    return Outcome("retry", "zalo", f"{exc.kind} {exc.code or ''}".strip())
                if exc.kind not in ("window", "auth"):
                    return Outcome("failed", "zalo", f"refused {exc.code}")
                # Outside the window, or the OA needs an admin to authorise the app again (then
                # ZNS fails the same way and SMS carries the notice).
                log.info("Zalo %s for %s; trying ZNS", exc.kind, mask_id(user_id))
        return await self._zns(job)

    async def _zns(self, job: Job) -> Outcome:
        template = self.zns_templates.get(job.kind)
        if self.zns is None or template is None or not job.phone:
            return await self._sms(job)
        try:
            await self.zns.send_template(
                job.phone, template, job.params, tracking_id=f"cskh-{job.delivery_id}"
            )
        except ZnsError as exc:
            if exc.kind == "temporary":
                return Outcome("retry", "zns", f"temporary {exc.code or ''}".strip())
            log.info("ZNS refused notice %d (%s); falling back to SMS", job.delivery_id, exc.code)
            return await self._sms(job)
        return Outcome("sent", "zns")

    async def _sms(self, job: Job) -> Outcome:
        if not job.phone:
            return Outcome("failed", None, "no_channel")
        text = self.messages.plain(job.kind, job.params)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            await self.outbox.send(
                Message("sms", job.phone, "EVNCPC - Thông báo tiến độ yêu cầu", text, created)
            )
        except OSError as exc:
            return Outcome("retry", "sms", type(exc).__name__)
        return Outcome("sent", "sms")

    async def _record(self, job: Job, notice: Notice) -> None:
        """The notice in the customer's conversation, for the desk's transcript and the bot's context.
        The request travels in the buttons' payloads, not in a slot: a slot set now could switch
        the request under a form the customer is filling in."""
        if not self.record:
            return
        assert self.rasa is not None
        now = time.time()
        buttons = [{"title": b.title, "payload": b.payload} for b in notice.buttons]
        events = [
            {
                "event": "bot",
                "text": notice.text,
                "data": {"buttons": buttons},
                "metadata": {"notice": job.kind, "delivery_id": job.delivery_id},
                "timestamp": now,
            },
        ]
        try:
            await self.rasa.append_events(job.chat_user, events, push=False)
        except RasaError:
            log.warning(
                "notice %d sent but not written into the conversation (Rasa unreachable)", job.delivery_id
            )
