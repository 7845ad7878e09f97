"""Classify Telegram updates into what the connector does with them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from telegram import Update

MAX_TEXT = 4096
REQUEST_CODE = re.compile(r"^PC\d{2}[A-Z]{2}\d{7}$")
UNSUPPORTED = (
    "photo",
    "sticker",
    "document",
    "voice",
    "video",
    "video_note",
    "audio",
    "animation",
    "location",
    "venue",
    "contact",
)

Kind = Literal["text", "callback", "unsupported", "ignore"]


@dataclass(frozen=True)
class TelegramEvent:
    kind: Kind
    update_id: int
    chat_id: int = 0
    text: str = ""
    callback_query_id: str = ""
    content_type: str = ""


def start_text(argument: str) -> str:
    """``/start`` opens the chat: a deep-link argument that is a request code pre-fills the lookup
    (the code becomes the customer's first message); otherwise the bot greets."""
    code = argument.strip().upper()
    return code if REQUEST_CODE.match(code) else "/greet"


def _command_text(text: str) -> str:
    command, _, rest = text.partition(" ")
    command = command.split("@", 1)[0]  # /help@CskhBot in groups
    if command == "/start":
        return start_text(rest)
    return f"{command} {rest}".strip()


def classify(update: Update) -> TelegramEvent:
    uid = update.update_id
    query = update.callback_query
    if query is not None:
        chat = query.message.chat if query.message is not None else None
        chat_id = chat.id if chat is not None else query.from_user.id
        return TelegramEvent("callback", uid, chat_id, (query.data or "")[:MAX_TEXT], query.id)
    message = update.message
    if message is None:  # edited messages, channel posts, member updates, ...
        return TelegramEvent("ignore", uid)
    chat_id = message.chat.id
    if message.text:
        text = message.text.strip()[:MAX_TEXT]
        if text.startswith("/"):
            text = _command_text(text)
        return TelegramEvent("text", uid, chat_id, text) if text else TelegramEvent("ignore", uid)
    for attr in UNSUPPORTED:
        value: Any = getattr(message, attr, None)
        if value:
            return TelegramEvent("unsupported", uid, chat_id, content_type=attr)
    return TelegramEvent("ignore", uid)
