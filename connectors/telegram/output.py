"""Send Rasa replies to a Telegram chat with python-telegram-bot."""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, Union

from rasa.core.channels.channel import OutputChannel
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from common import metrics
from connectors.common import outgoing
from connectors.common.failures import record_failure
from connectors.common.files import FetchError, FileFetcher, pdf_filename
from connectors.common.masking import mask_id
from connectors.common.ratelimit import RateLimiter
from connectors.common.senders import TELEGRAM_SENDER_PREFIX
from connectors.common.text import split_text, utf16_len
from connectors.telegram.callbacks import CallbackPayloads
from connectors.telegram.config import TelegramSettings

logger = logging.getLogger(__name__)
CHANNEL = "telegram"
SENDER_PREFIX = TELEGRAM_SENDER_PREFIX
CAPTION_LIMIT = 1024
# Telegram needs text under a keyboard: the text of a reply of buttons alone, and of the inline
# buttons that follow a "share my phone number" keyboard.
CONTINUATION = "…"
PENDING_REMOVALS = 10_000  # chats whose "share my phone number" keyboard is still to be removed
_CHAT_ID = re.compile(r"^-?[0-9]{1,20}$")  # ASCII only: int() would also take "١٢٣" or "１２３"
T = TypeVar("T")
Markup = Union[InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove]


# A file an agent sends from the desk (agent_desk/attachments.py) is at a signed link on the desk
# (DESK_PUBLIC_FILES_URL), usually not reachable from Telegram's servers: the connector fetches it
# and uploads the bytes.
DESK_FILE_URL = re.compile(r"/files/[0-9a-f]{64}\?")
DESK_FILE_MAX = {"pdf": 5 * 1024 * 1024, "image": 1024 * 1024}


async def _desk_file(url: str, kind: str) -> bytes | None:
    """The bytes of a desk file link (a PDF or a JPEG/PNG), or None: then Telegram gets the URL."""
    if not DESK_FILE_URL.search(url):
        return None
    fetcher = FileFetcher(DESK_FILE_MAX[kind])
    try:
        return await fetcher.pdf(url) if kind == "pdf" else (await fetcher.image(url, DESK_FILE_MAX[kind]))[0]
    except FetchError as exc:
        logger.info("Telegram: desk file not fetched (%s); its URL is sent", exc.reason)
        return None
    finally:
        await fetcher.close()


def sender_id_for(chat_id: int) -> str:
    return f"{SENDER_PREFIX}{chat_id}"


def chat_id_of(sender_id: str) -> int:
    raw = sender_id[len(SENDER_PREFIX) :] if sender_id.startswith(SENDER_PREFIX) else sender_id
    if not _CHAT_ID.match(raw):
        raise ValueError(f"not a Telegram chat id: {raw[:40]!r}")
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
        self._removals: OrderedDict[int, None] = OrderedDict()

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

    @staticmethod
    def contact_keyboard(buttons: list[outgoing.Button]) -> ReplyKeyboardMarkup:
        """The "share my phone number" button. Telegram allows `request_contact` only on a reply
        keyboard (not inline); one-time, so the client hides it once it is used."""
        rows = [[KeyboardButton(b.title[:64], request_contact=True)] for b in buttons]
        return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)

    def remove_keyboard_later(self, chat_id: int) -> None:
        """The customer shared a contact: the next bot message removes the reply keyboard.

        In memory: the bot's answer to the contact goes out from this process, in the same turn."""
        self._removals[chat_id] = None
        self._removals.move_to_end(chat_id)
        while len(self._removals) > PENDING_REMOVALS:
            self._removals.popitem(last=False)

    def removal_due(self, chat_id: int) -> bool:
        return chat_id in self._removals

    def keyboard_removed(self, chat_id: int) -> None:
        self._removals.pop(chat_id, None)


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
            for chunk, keyboard in self._messages(chat_id, reply):
                await self._s.call(chat_id, self._text_call(chat_id, chunk, keyboard))
                if isinstance(keyboard, ReplyKeyboardRemove):
                    self._s.keyboard_removed(chat_id)
            for doc in reply.files:
                await self._send_document(chat_id, doc)
            if reply.image:
                image: str | bytes = await _desk_file(reply.image, "image") or reply.image
                await self._s.call(chat_id, lambda: bot.send_photo(chat_id, image))
        except TelegramError as exc:
            kept = {
                k: v for k, v in message.items() if k in ("text", "buttons", "custom", "attachment", "image")
            }
            reason = "blocked" if isinstance(exc, Forbidden) else "rejected"
            record_failure(CHANNEL, recipient_id, reason, kept, type(exc).__name__, str(exc)[:200])
            metrics.CHANNEL_SEND_ERRORS.labels(CHANNEL).inc()

    def _messages(self, chat_id: int, reply: outgoing.Reply) -> list[tuple[str, Markup | None]]:
        """The text messages of a reply and the keyboard each one carries.

        A message carries one keyboard. Buttons ride on the last part of the text; when the reply
        has a "share my phone number" button, that reply keyboard rides on the text and the other
        buttons follow, inline, in a "…" message. After a contact was shared, the first part without
        a keyboard removes the reply keyboard (if every part has one, a later message does).
        """
        contact = [b for b in reply.buttons if b.request_contact]
        inline = [b for b in reply.buttons if not b.request_contact]
        chunks = split_text(reply.text, self._s.settings.text_limit, utf16_len) if reply.text else []
        if not chunks and reply.buttons:
            chunks = [CONTINUATION]
        plan: list[tuple[str, Markup | None]] = [(chunk, None) for chunk in chunks]
        if contact:
            plan[-1] = (plan[-1][0], self._s.contact_keyboard(contact))
            if inline:
                plan.append((CONTINUATION, self._s.keyboard(inline)))
            self._s.keyboard_removed(chat_id)  # the new keyboard replaces the old one
        elif inline:
            plan[-1] = (plan[-1][0], self._s.keyboard(inline))
        if self._s.removal_due(chat_id):
            free = next((i for i, (_, markup) in enumerate(plan) if markup is None), None)
            if free is not None:
                plan[free] = (plan[free][0], ReplyKeyboardRemove())
        return plan

    def _text_call(
        self, chat_id: int, text: str, keyboard: Markup | None
    ) -> Callable[[], Awaitable[Message]]:
        bot = self._s.bot

        def make() -> Awaitable[Message]:
            escaped = html.escape(text, quote=False)
            return bot.send_message(chat_id, escaped, parse_mode=ParseMode.HTML, reply_markup=keyboard)

        return make

    async def _send_document(self, chat_id: int, doc: outgoing.Document) -> None:
        """The PDF as a file (Telegram fetches the URL) with the link in the caption; if Telegram
        cannot fetch it (e.g. a link not reachable from the internet), the link alone."""
        data = await _desk_file(doc.url, "pdf")
        if data is not None:  # a file an agent sent: uploaded, its link would not open for the customer
            title = doc.title[:900]
            name = pdf_filename(doc.title)
            await self._s.call(
                chat_id, lambda: self._s.bot.send_document(chat_id, data, caption=title, filename=name)
            )
            return
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
