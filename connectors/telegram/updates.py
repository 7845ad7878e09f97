"""Classify Telegram updates into what the connector does with them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from common.request_code import normalize_request_code
from connectors.common.customer_files import telegram_file

MAX_TEXT = 4096
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
)
PRIVATE = "private"  # the only chat type passed to the bot (not group, supergroup or channel)

Kind = Literal["text", "callback", "contact", "unsupported", "group", "ignore"]


class BadUpdate(ValueError):
    """An update without the fields every update of its kind has."""


@dataclass(frozen=True)
class TelegramEvent:
    kind: Kind
    update_id: int
    chat_id: int = 0
    text: str = ""
    callback_query_id: str = ""
    content_type: str = ""
    phone: str | None = None  # kind "contact": the shared number, only when it is the sender's own
    file: dict[str, str] | None = None  # kind "unsupported": a photo's or document's file_id (customer_files)
    own_number: bool = False


def start_text(argument: str) -> str:
    """``/start`` opens the chat: a deep-link argument that is a request code pre-fills the lookup
    (the code becomes the customer's first message); otherwise the bot greets."""
    return normalize_request_code(argument) or "/greet"


def _command_text(text: str) -> str:
    command, _, rest = text.partition(" ")
    command = command.split("@", 1)[0]  # /help@CskhBot in groups
    if command == "/start":
        return start_text(rest)
    return f"{command} {rest}".strip()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _contact(uid: int, chat_id: int, message: dict[str, Any], contact: dict[str, Any]) -> TelegramEvent:
    """A shared contact. Telegram guarantees the number is the sender's own only when the contact's
    ``user_id`` is the sender's id (the "share my phone number" button); a contact of someone else
    (forwarded, picked from the address book) carries no number to the bot."""
    sender = _int(_dict(message.get("from")).get("id"))
    owner = _int(contact.get("user_id"))
    phone = contact.get("phone_number")
    phone = phone.strip() if isinstance(phone, str) else ""
    own = sender is not None and owner == sender and bool(phone)
    return TelegramEvent("contact", uid, chat_id, phone=phone if own else None, own_number=own)


def classify(update: Any) -> TelegramEvent:
    """Classify a raw update (the Bot API JSON). Parsed by hand rather than with PTB's
    ``Update.de_json``: that builds every nested object and was 1.5 ms per update, the largest
    cost of an acknowledgement. Raises BadUpdate when required fields are missing."""
    if not isinstance(update, dict) or _int(update.get("update_id")) is None:
        raise BadUpdate("update_id missing")
    uid = int(update["update_id"])
    query = update.get("callback_query")
    if isinstance(query, dict):
        origin = _dict(query.get("message"))
        chat_id = _int(_dict(origin.get("chat")).get("id")) or _int(_dict(query.get("from")).get("id"))
        query_id, data = query.get("id"), query.get("data")
        if chat_id is None or not isinstance(query_id, str):
            raise BadUpdate("callback query without chat or id")
        if "chat" in origin and _dict(origin["chat"]).get("type") != PRIVATE:
            return TelegramEvent("group", uid, chat_id)
        return TelegramEvent("callback", uid, chat_id, str(data or "")[:MAX_TEXT], query_id)
    message = update.get("message")
    if not isinstance(message, dict):  # edited messages, channel posts, member updates, ...
        return TelegramEvent("ignore", uid)
    chat = _dict(message.get("chat"))
    chat_id = _int(chat.get("id"))
    if chat_id is None:
        raise BadUpdate("message without chat id")
    if chat.get("type") != PRIVATE:  # customers' data is never discussed in front of others
        return TelegramEvent("group", uid, chat_id)
    contact = message.get("contact")
    if isinstance(contact, dict):
        return _contact(uid, chat_id, message, contact)
    text = message.get("text")
    if isinstance(text, str):
        text = text.strip()[:MAX_TEXT]
        if text.startswith("/"):
            text = _command_text(text)
        return TelegramEvent("text", uid, chat_id, text) if text else TelegramEvent("ignore", uid)
    for attr in UNSUPPORTED:
        if message.get(attr):
            file = telegram_file(attr, message)
            return TelegramEvent("unsupported", uid, chat_id, content_type=attr, file=file)
    return TelegramEvent("ignore", uid)
