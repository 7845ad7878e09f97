"""Send Rasa replies to a Telegram chat with python-telegram-bot."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rasa.core.channels.channel import OutputChannel
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from connectors.common import outgoing
from connectors.common.failures import record_failure
from connectors.common.masking import mask_id
from connectors.common.ratelimit import RateLimiter
from connectors.common.text import split_text, utf16_len
from connectors.telegram.callbacks import CallbackPayloads
from connectors.telegram.config import TelegramSettings

logger = logging.getLogger(__name__)
CHANNEL = "telegram"
SENDER_PREFIX = "telegram:"
CAPTION_LIMIT = 1024
CONTINUATION = "…"  # Telegram needs text under a keyboard; used only for a reply of buttons alone
T = TypeVar("T")


def sender_id_for(chat_id: int) -> str:
    return f"{SENDER_PREFIX}{chat_id}"


def chat_id_of(sender_id: str) -> int:
    raw = sender_id[len(SENDER_PREFIX) :] if sender_id.startswith(SENDER_PREFIX) else sender_id
    return int(raw)


class TelegramSender:
    """The bot, its rate limits and its retry policy, shared by every output channel instance."""

    def __init__(
        self,
        settings: TelegramSettings,
        bot: Bot,
        callbacks: CallbackPayloads,
        retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
    ) -> None:
        self.settings = settings
        self.bot = bot
        self.callbacks = callbacks
        self.limiter = RateLimiter(
            settings.send_rate, settings.send_rate, settings.chat_rate, settings.chat_burst
        )
        self._retry_delays = retry_delays
        self._init_lock = asyncio.Lock()
        self._ready = False

    async def ensure_ready(self) -> None:
        if self._ready:
            return
        async with self._init_lock:
            if not self._ready:
                await self.bot.initialize()
                self._ready = True

    async def close(self) -> None:
        if self._ready:
            await self.bot.shutdown()
            self._ready = False

    async def call(self, chat_id: int | None, make: Callable[[], Awaitable[T]]) -> T:
        """One API call, paced, retried on flood control and network errors."""
        await self.ensure_ready()
        delays = list(self._retry_delays)
        flood_retries = 2
        while True:
            await self.limiter.acquire(str(chat_id) if chat_id is not None else None)
            try:
                return await make()
            except RetryAfter as exc:
                if flood_retries == 0:
                    raise
                flood_retries -= 1
                wait = exc.retry_after
                seconds = wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait)
                await asyncio.sleep(min(seconds, 30.0))
            except (BadRequest, Forbidden):
                raise
            except NetworkError:
                if not delays:
                    raise
                await asyncio.sleep(delays.pop(0))

    def keyboard(self, buttons: list[outgoing.Button]) -> InlineKeyboardMarkup | None:
        if not buttons:
            return None
        rows = [
            [
                InlineKeyboardButton(b.title[:64], url=b.url)
                if b.url
                else InlineKeyboardButton(
                    b.title[:64], callback_data=self.callbacks.encode(b.payload or b.title)
                )
            ]
            for b in buttons  # one per row: Vietnamese titles are long
        ]
        return InlineKeyboardMarkup(rows)


class TelegramOutput(OutputChannel):
    def __init__(self, sender: TelegramSender) -> None:
        self._s = sender

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        reply = outgoing.from_rasa(message)
        if reply.empty:
            return
        try:
            chat_id = chat_id_of(recipient_id)
        except ValueError:  # not a Telegram conversation (e.g. a push with the wrong output_channel)
            logger.warning("Telegram reply for a non-Telegram conversation %s dropped", mask_id(recipient_id))
            return
        bot = self._s.bot
        try:
            chunks = split_text(reply.text, self._s.settings.text_limit, utf16_len) if reply.text else []
            if not chunks and reply.buttons:
                chunks = [CONTINUATION]
            markup = self._s.keyboard(reply.buttons)
            for i, chunk in enumerate(chunks):
                keyboard = markup if i == len(chunks) - 1 else None
                await self._s.call(chat_id, self._text_call(chat_id, chunk, keyboard))
            for doc in reply.files:
                await self._send_document(chat_id, doc)
            if reply.image:
                image = reply.image
                await self._s.call(chat_id, lambda: bot.send_photo(chat_id, image))
        except TelegramError as exc:
            kept = {
                k: v for k, v in message.items() if k in ("text", "buttons", "custom", "attachment", "image")
            }
            reason = "blocked" if isinstance(exc, Forbidden) else "rejected"
            record_failure(CHANNEL, recipient_id, reason, kept, type(exc).__name__, str(exc)[:200])

    def _text_call(
        self, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None
    ) -> Callable[[], Awaitable[Message]]:
        bot = self._s.bot

        def make() -> Awaitable[Message]:
            escaped = html.escape(text, quote=False)
            return bot.send_message(chat_id, escaped, parse_mode=ParseMode.HTML, reply_markup=keyboard)

        return make

    async def _send_document(self, chat_id: int, doc: outgoing.Document) -> None:
        """The PDF as a file (Telegram fetches the URL) with the link in the caption; if Telegram
        cannot fetch it (e.g. a link not reachable from the internet), the link alone."""
        link = f'<a href="{html.escape(doc.url)}">{html.escape(doc.title, quote=False)}</a>'
        caption = link if len(doc.url) + len(doc.title) < CAPTION_LIMIT - 20 else html.escape(doc.title)[:900]
        bot = self._s.bot
        try:
            await self._s.call(
                chat_id,
                lambda: bot.send_document(chat_id, doc.url, caption=caption, parse_mode=ParseMode.HTML),
            )
        except BadRequest as exc:
            logger.info(
                "Telegram could not send a document by URL to %s (%s); sending the link",
                mask_id(chat_id),
                exc,
            )
            await self._s.call(chat_id, lambda: bot.send_message(chat_id, link, parse_mode=ParseMode.HTML))
