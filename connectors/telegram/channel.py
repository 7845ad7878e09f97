"""Rasa input/output channel for a Telegram bot (webhook /webhooks/telegram/webhook)."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram.error import TelegramError

from common import metrics, request_id
from common.shared_contact import SHARE_CONTACT_TEXT, shared_contact
from connectors.common import canned, customer_files
from connectors.common.bot_failures import hand_to_bot
from connectors.common.masking import mask_id
from connectors.common.webhook import WebhookInput
from connectors.telegram import updates
from connectors.telegram.callbacks import CallbackPayloads
from connectors.telegram.config import TelegramSettings, make_bot
from connectors.telegram.output import CHANNEL, TelegramOutput, TelegramSender, sender_id_for

logger = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
MAX_BODY = 256 * 1024
DEDUPE_TTL = 24 * 3600  # Telegram keeps unacknowledged updates for 24 h


class TelegramInput(WebhookInput[TelegramSettings]):
    """Checks the secret token, acknowledges at once and runs the bot in the background."""

    channel = CHANNEL
    dedupe_ttl = DEDUPE_TTL
    required_env = "TELEGRAM_BOT_TOKEN"

    def __init__(self, settings: TelegramSettings | None, sender: TelegramSender | None = None) -> None:
        super().__init__(settings)
        self.sender = sender or (
            TelegramSender(settings, make_bot(settings), CallbackPayloads()) if settings else None
        )

    @classmethod
    def settings_from_env(cls) -> TelegramSettings | None:
        return TelegramSettings.from_env()

    def get_output_channel(self) -> OutputChannel | None:
        return TelegramOutput(self.sender) if self.sender else None

    async def close_client(self) -> None:
        if self.sender:
            await self.sender.close()

    async def handle_webhook(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        if self.settings is None or self.sender is None:
            logger.warning("Telegram webhook called but the channel is disabled (TELEGRAM_BOT_TOKEN unset)")
            return response.json({"error": "channel_disabled"}, status=503)
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.settings.secret_token.encode()):
            logger.warning("Telegram webhook with a missing or wrong secret token refused")
            return response.json({"error": "bad_secret_token"}, status=403)
        raw = request.body or b""
        if len(raw) > MAX_BODY:
            return response.json({"error": "body_too_large"}, status=413)
        try:
            event = updates.classify(json.loads(raw))
        except (ValueError, RecursionError):  # invalid JSON (or nested too deep), updates.BadUpdate
            return response.json({"error": "malformed_update"}, status=400)
        if event.kind == "ignore":
            return response.json({"status": "ignored"})
        sender = sender_id_for(event.chat_id)
        if event.kind == "group":
            # Never passed to the bot; the group is told once (per dedupe TTL) to write privately.
            logger.info("Telegram update from a group or channel %s not passed to the bot", mask_id(sender))
            if not self.recent.check_and_add(f"group:{event.chat_id}"):
                return response.json({"status": "ignored"})
            return self.accept(
                request,
                sender,
                str(event.update_id),
                "Telegram group update",
                lambda app: self._answer_group(event.chat_id, app),
            )
        with request_id.bound(request_id.accept(request.headers.get(request_id.HEADER))):
            return self.accept(  # the background task copies the bound id
                request,
                sender,
                str(event.update_id),
                "Telegram update",
                lambda app: self._process(event, sender, on_new_message, app),
            )

    async def _process(
        self,
        event: updates.TelegramEvent,
        sender: str,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        app: Any,
    ) -> None:
        assert self.sender is not None
        output = TelegramOutput(self.sender)
        metadata: dict[str, Any] = {
            "telegram": {"update_id": event.update_id, "kind": event.kind},
            # Bound by handle_webhook (this task copied it): Rasa hands it on to the action server.
            request_id.METADATA_KEY: request_id.current() or request_id.new_id(),
        }
        text: str | None = event.text
        if event.kind == "callback":
            await self._answer_callback(event)
            text = self.sender.callbacks.decode(event.text)
            if not text:
                logger.info("Telegram button of an expired payload pressed by %s", mask_id(sender))
                return
        elif event.kind == "contact":
            text = SHARE_CONTACT_TEXT
            metadata.update(shared_contact(event.phone, "telegram_contact", event.own_number))
            self.sender.remove_keyboard_later(event.chat_id)
        elif event.kind == "unsupported" and event.file and await customer_files.bot_paused(app, sender):
            # An agent has the conversation: the file goes into it (the paused bot does not answer).
            text = canned.FALLBACK_INTENT_TEXT
            metadata[customer_files.METADATA_KEY] = event.file
        elif event.kind == "unsupported":
            if await self.answered_unsupported(app, output, sender):
                return
            text = canned.FALLBACK_INTENT_TEXT
            metadata["unsupported_content"] = event.content_type
        message = UserMessage(
            text,
            output,
            sender,
            input_channel=CHANNEL,
            message_id=str(event.update_id),
            metadata=metadata,
        )
        with metrics.bot_turn(CHANNEL):
            await hand_to_bot(on_new_message, message, CHANNEL, text or "", app, self.turns)

    async def _answer_group(self, chat_id: int, app: Any) -> None:
        assert self.sender is not None
        bot = self.sender.bot
        text = canned.text(app, canned.PRIVATE_CHAT_ONLY_RESPONSE, CHANNEL, canned.PRIVATE_CHAT_ONLY_TEXT)
        try:
            await self.sender.call(chat_id, lambda: bot.send_message(chat_id, text))
        except TelegramError as exc:  # e.g. a channel the bot may not post in: nobody to follow up
            logger.info("Telegram group %s not answered: %s", mask_id(chat_id), type(exc).__name__)

    async def _answer_callback(self, event: updates.TelegramEvent) -> None:
        """Stop the client's spinner; a failure here must not lose the customer's choice."""
        assert self.sender is not None
        bot = self.sender.bot
        try:
            await self.sender.call(None, lambda: bot.answer_callback_query(event.callback_query_id))
        except TelegramError as exc:
            logger.info("answerCallbackQuery failed: %s", type(exc).__name__)
